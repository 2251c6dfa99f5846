import FoxMQTT
import NIOCore
import Testing

@Suite struct PingTests {
    // Goal: PINGREQ and PINGRESP are a fixed header only, in both versions.
    // MQTT 5.0 §3.12, §3.13.
    @Test(arguments: [ProtocolVersion.v311, .v5])
    func roundTrip(version: ProtocolVersion) throws {
        try expectRoundTrip([0xC0, 0x00 /* PINGREQ, remaining length 0 */], version: version, .pingReq)
        try expectRoundTrip([0xD0, 0x00 /* PINGRESP, remaining length 0 */], version: version, .pingResp)
    }

    // Goal: a body or reserved flags are malformed.
    // MQTT 5.0 §2.1.3, §3.12.
    @Test func rules() {
        expectDecodeError([0xC0, 0x01, 0x00], version: .v5, .malformedPacket, field: "PINGREQ.remainingLength")
        expectDecodeError([0xD1, 0x00], version: .v311, .malformedPacket, field: "PINGRESP.flags")
    }
}
