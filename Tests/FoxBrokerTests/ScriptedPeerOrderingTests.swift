import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// What the connection handler writes before and instead of a successful CONNACK.
@Suite struct ScriptedPeerOrderingTests {
    // Goal: CONNACK is the first packet the server sends, even when the client pipelines
    // PINGREQ right after CONNECT (MQTT 5.0 §3.2 [MQTT-3.2.0-1]; 3.1.1 §3.2 [MQTT-3.2.0-1]).
    @Test(arguments: [ProtocolVersion.v5, .v311])
    func connAckIsTheFirstPacket(version: ProtocolVersion) async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1, version: version)
        let script =
            ScriptedPeer.bytes(ScriptedPeerTests.connect("eager", version: version), version: version)
            + ScriptedPeer.bytes(.pingReq, version: version)
        try await peer.send(bytes: script)
        let first = try await peer.next()
        guard case .connAck(let connAck) = first else {
            Issue.record("first packet is \(String(describing: first)), not CONNACK")
            try await broker.shutdown()
            return
        }
        #expect(connAck.reasonCode == .success)
        #expect(try await peer.next() == .pingResp)
        await peer.close()
        try await broker.shutdown()
    }
}
