import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// A refused 3.1.1 client is answered in 3.1.1.
@Suite struct ScriptedPeer311RefusalTests {
    // Goal: a refused 3.1.1 CONNECT gets a 3.1.1 CONNACK: two bytes, return code 4 for bad
    // credentials, 2 for an empty identifier with Clean Session 0, 5 when anonymous login is
    // off (3.1.1 §3.2.2.3; 5.0 §3.1.2.2: answer in the client's version).
    @Test func refused311ConnAckIsEncodedAs311() async throws {
        var anonymousOff = ConnectionLimits()
        anonymousOff.allowAnonymousLogin = false
        let broker = ScriptedBroker(limits: anonymousOff)
        let cases: [(Packet, [UInt8])] = [
            (ScriptedPeerTests.connect("x", version: .v311, password: "wrong"), [0x20, 0x02, 0x00, 0x04]),
            (ScriptedPeerTests.connect("", version: .v311, cleanStart: false), [0x20, 0x02, 0x00, 0x02]),
            (ScriptedPeerTests.connect("y", version: .v311, username: nil), [0x20, 0x02, 0x00, 0x05]),
        ]
        for (index, (connect, expected)) in cases.enumerated() {
            let peer = try await broker.peer(UInt64(index + 1), version: .v311)
            try await peer.send(connect)
            let bytes = try await peer.nextFrameBytes()
            #expect(bytes == expected, "case \(index)")
            #expect(try await peer.waitUntilClosed())
        }
        try await broker.shutdown()
    }
}
