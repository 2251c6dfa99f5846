import FoxMQTT
import NIOCore
import Testing

@Suite struct DisconnectTests {
    // Goal: 3.1.1 DISCONNECT has no body; any reason code is dropped when encoding.
    // MQTT 3.1.1 §3.14.
    @Test func v311() throws {
        try expectRoundTrip(
            [0xE0, 0x00 /* DISCONNECT, remaining length 0 */], version: .v311, .disconnect(Disconnect()))
        expectEncode(.disconnect(Disconnect(reasonCode: .serverShuttingDown)), version: .v311, [0xE0, 0x00])
        expectDecodeError([0xE0, 0x01, 0x00], version: .v311, .malformedPacket, field: "DISCONNECT.remainingLength")
    }

    // Goal: 5.0 forms: length 0 is normal, reason code only, reason code with properties.
    // MQTT 5.0 §3.14.2.1, §3.14.2.2.1: below 2 there is no property length.
    @Test func v5Forms() throws {
        try expectRoundTrip([0xE0, 0x00], version: .v5, .disconnect(Disconnect()))
        try expectRoundTrip(
            [0xE0, 0x01, /* DISCONNECT, 1 */ 0x8E /* session taken over */], version: .v5,
            .disconnect(Disconnect(reasonCode: .sessionTakenOver)))
        try expectDecode([0xE0, 0x02, 0x00, 0x00], version: .v5, .disconnect(Disconnect()))
        var properties = Properties()
        properties.sessionExpiryIntervalSeconds = 0
        properties.serverReference = "s"
        try expectRoundTrip(
            [
                0xE0, 0x0B,  // DISCONNECT, remaining length 11
                0x9C,  // use another server
                0x09,  // property length 9
                0x11, 0x00, 0x00, 0x00, 0x00,  // session expiry interval 0
                0x1C, 0x00, 0x01, 0x73,  // server reference "s"
            ], version: .v5, .disconnect(Disconnect(reasonCode: .useAnotherServer, properties: properties)))
    }

    // Goal: DISCONNECT allows session expiry, server reference, reason string, user property.
    // MQTT 5.0 §2.2.2.2, §3.14.2.2.
    @Test func propertyOutsideContext() {
        expectDecodeError(
            [0xE0, 0x05, 0x00, 0x03, 0x21, 0x00, 0x01], version: .v5, .malformedPacket, field: "properties.0x21")
    }
}
