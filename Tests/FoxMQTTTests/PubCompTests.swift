import FoxMQTT
import NIOCore
import Testing

@Suite struct PubCompTests {
    // Goal: 3.1.1 PUBCOMP is the packet identifier only.
    // MQTT 3.1.1 §3.7.
    @Test func v311() throws {
        let bytes: [UInt8] = [0x70, 0x02, /* PUBCOMP, remaining length 2 */ 0x00, 0x2A /* packet identifier 42 */]
        try expectRoundTrip(bytes, version: .v311, .pubComp(PubComp(packetIdentifier: 42)))
    }

    // Goal: 5.0 short form for Success, reason code only, and reason code with properties.
    // MQTT 5.0 §3.7.2.1: remaining length 2 means Success; below 4 no property length.
    @Test func v5Forms() throws {
        try expectRoundTrip(
            [0x70, 0x02, /* PUBCOMP, 2 */ 0x00, 0x2A /* id 42 */], version: .v5, .pubComp(PubComp(packetIdentifier: 42))
        )
        try expectRoundTrip(
            [0x70, 0x03, /* PUBCOMP, 3 */ 0x00, 0x2A, /* id 42 */ 0x92 /* packet identifier not found */], version: .v5,
            .pubComp(PubComp(packetIdentifier: 42, reasonCode: .packetIdentifierNotFound)))
        var properties = Properties()
        properties.reasonString = "r"
        try expectRoundTrip(
            [
                0x70, 0x08,  // PUBCOMP, remaining length 8
                0x00, 0x2A,  // packet identifier 42
                0x00,  // success
                0x04, 0x1F, 0x00, 0x01, 0x72,  // properties: reason string "r"
            ], version: .v5, .pubComp(PubComp(packetIdentifier: 42, properties: properties)))
        try expectDecode(
            [0x70, 0x04, /* PUBCOMP, 4 */ 0x00, 0x2A, /* id 42 */ 0x00, /* success */ 0x00 /* no properties */],
            version: .v5, .pubComp(PubComp(packetIdentifier: 42)))
    }

    // Goal: packet identifier 0 is a protocol error.
    // MQTT 5.0 §2.2.1 [MQTT-2.2.1-3].
    @Test func packetIdentifierZero() {
        expectDecodeError([0x70, 0x02, 0x00, 0x00], version: .v5, .protocolError, field: "PUBCOMP.packetIdentifier")
        expectDecodeError([0x70, 0x02, 0x00, 0x00], version: .v311, .protocolError, field: "PUBCOMP.packetIdentifier")
    }

    // Goal: any other fixed header flags are malformed.
    // MQTT 5.0 §2.1.3: PUBCOMP flags are fixed.
    @Test func reservedFlags() {
        expectDecodeError([0x70 ^ 0x02, 0x02, 0x00, 0x01], version: .v311, .malformedPacket, field: "PUBCOMP.flags")
        expectDecodeError([0x70 | 0x01, 0x02, 0x00, 0x01], version: .v5, .malformedPacket, field: "PUBCOMP.flags")
    }

    // Goal: a property of another packet is malformed; a repeated reason string a protocol error.
    // MQTT 5.0 §2.2.2.2, §3.7.2.2.
    @Test func properties() {
        expectDecodeError(
            [0x70, 0x06, 0x00, 0x01, 0x00, 0x02, 0x25, 0x01], version: .v5, .malformedPacket, field: "properties.0x25")
        expectDecodeError(
            [0x70, 0x0C, 0x00, 0x01, 0x00, 0x08, 0x1F, 0x00, 0x01, 0x61, 0x1F, 0x00, 0x01, 0x62], version: .v5,
            .protocolError, field: "properties.0x1F")
    }

    // Goal: 3.1.1 PUBCOMP has exactly two bytes.
    // MQTT 3.1.1 §3.7.1: remaining length 2.
    @Test func v311ExtraByte() {
        expectDecodeError(
            [0x70, 0x03, 0x00, 0x01, 0x00], version: .v311, .malformedPacket, field: "PUBCOMP.remainingLength")
    }
}
