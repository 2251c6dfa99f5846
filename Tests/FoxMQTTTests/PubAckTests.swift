import FoxMQTT
import NIOCore
import Testing

@Suite struct PubAckTests {
    // Goal: 3.1.1 PUBACK is the packet identifier only.
    // MQTT 3.1.1 §3.4.
    @Test func v311() throws {
        let bytes: [UInt8] = [0x40, 0x02, /* PUBACK, remaining length 2 */ 0x12, 0x34 /* packet identifier 0x1234 */]
        try expectRoundTrip(bytes, version: .v311, .pubAck(PubAck(packetIdentifier: 0x1234)))
    }

    // Goal: 5.0 Success without properties uses the short form; the long forms decode the same.
    // MQTT 5.0 §3.4.2.1: remaining length 2 means Success; below 4 no property length.
    @Test func v5ShortForms() throws {
        let expected = Packet.pubAck(PubAck(packetIdentifier: 1))
        try expectRoundTrip([0x40, 0x02, /* PUBACK, 2 */ 0x00, 0x01 /* id 1 */], version: .v5, expected)
        try expectDecode(
            [0x40, 0x03, /* PUBACK, 3 */ 0x00, 0x01, /* id 1 */ 0x00 /* success */], version: .v5, expected)
        try expectDecode(
            [0x40, 0x04, /* PUBACK, 4 */ 0x00, 0x01, /* id 1 */ 0x00, /* success */ 0x00 /* no properties */],
            version: .v5,
            expected)
    }

    // Goal: a failure reason code without properties is written without property length.
    // MQTT 5.0 §3.4.2.1, §3.4.2.2.
    @Test func v5ReasonCodeOnly() throws {
        let bytes: [UInt8] = [0x40, 0x03, /* PUBACK, 3 */ 0x00, 0x02, /* id 2 */ 0x10 /* no matching subscribers */]
        try expectRoundTrip(
            bytes, version: .v5, .pubAck(PubAck(packetIdentifier: 2, reasonCode: .noMatchingSubscribers)))
    }

    // Goal: reason code with a reason string and a user property.
    // MQTT 5.0 §3.4.2.2.2-3.
    @Test func v5WithProperties() throws {
        let bytes: [UInt8] = [
            0x40, 0x0F,  // PUBACK, remaining length 15
            0x00, 0x03,  // packet identifier 3
            0x87,  // not authorized
            0x0B,  // property length 11
            0x1F, 0x00, 0x02, 0x6E, 0x6F,  // reason string "no"
            0x26, 0x00, 0x01, 0x6B, 0x00, 0x00,  // user property "k" = ""
        ]
        var properties = Properties()
        properties.reasonString = "no"
        properties.userProperties = [UserProperty("k", "")]
        try expectRoundTrip(
            bytes, version: .v5,
            .pubAck(PubAck(packetIdentifier: 3, reasonCode: .notAuthorized, properties: properties)))
    }

    // Goal: packet identifier 0 is a protocol error in both versions.
    // MQTT 5.0 §2.2.1 [MQTT-2.2.1-3].
    @Test func packetIdentifierZero() {
        expectDecodeError([0x40, 0x02, 0x00, 0x00], version: .v311, .protocolError, field: "PUBACK.packetIdentifier")
        expectDecodeError([0x40, 0x02, 0x00, 0x00], version: .v5, .protocolError, field: "PUBACK.packetIdentifier")
    }

    // Goal: 3.1.1 PUBACK has exactly two bytes; a short body or an extra byte is malformed.
    // MQTT 3.1.1 §3.4.1: remaining length 2.
    @Test func v311Lengths() {
        expectDecodeError(
            [0x40, 0x03, 0x00, 0x01, 0x00], version: .v311, .malformedPacket, field: "PUBACK.remainingLength")
        expectDecodeError([0x40, 0x01, 0x00], version: .v311, .malformedPacket, field: "PUBACK.packetIdentifier")
    }

    // Goal: reserved fixed header flags of PUBACK are malformed.
    // MQTT 5.0 §2.1.3.
    @Test func reservedFlags() {
        expectDecodeError([0x42, 0x02, 0x00, 0x01], version: .v5, .malformedPacket, field: "PUBACK.flags")
    }

    // Goal: PUBACK allows only Reason String and User Property.
    // MQTT 5.0 §2.2.2.2, §3.4.2.2.
    @Test func propertyOutsideContext() {
        expectDecodeError(
            [0x40, 0x06, 0x00, 0x01, 0x00, 0x02, 0x01, 0x01], version: .v5, .malformedPacket, field: "properties.0x01")
    }
}
