import FoxMQTT
import NIOCore
import Testing

@Suite struct UnsubscribeTests {
    // Goal: 3.1.1 UNSUBSCRIBE with two filters.
    // MQTT 3.1.1 §3.10.
    @Test func v311() throws {
        let bytes: [UInt8] = [
            0xA2, 0x0A,  // UNSUBSCRIBE (flags 0010), remaining length 10
            0x00, 0x05,  // packet identifier 5
            0x00, 0x01, 0x61,  // "a"
            0x00, 0x03, 0x62, 0x2F, 0x23,  // "b/#"
        ]
        try expectRoundTrip(
            bytes, version: .v311, .unsubscribe(Unsubscribe(packetIdentifier: 5, topicFilters: ["a", "b/#"])))
    }

    // Goal: 5.0 UNSUBSCRIBE with a user property.
    // MQTT 5.0 §3.10.2.1: only user properties.
    @Test func v5() throws {
        let bytes: [UInt8] = [
            0xA2, 0x0D,  // UNSUBSCRIBE, remaining length 13
            0x00, 0x05,  // packet identifier 5
            0x07, 0x26, 0x00, 0x01, 0x6B, 0x00, 0x01, 0x76,  // user property "k" = "v"
            0x00, 0x01, 0x61,  // "a"
        ]
        var properties = Properties()
        properties.userProperties = [UserProperty("k", "v")]
        try expectRoundTrip(
            bytes, version: .v5,
            .unsubscribe(Unsubscribe(packetIdentifier: 5, topicFilters: ["a"], properties: properties)))
    }

    // Goal: no filters: protocol error in 5.0, malformed in 3.1.1.
    // MQTT 5.0 §3.10.3 [MQTT-3.10.3-2]; MQTT 3.1.1 §3.10.3.
    @Test func noFilters() {
        expectDecodeError(
            [0xA2, 0x03, 0x00, 0x01, 0x00], version: .v5, .protocolError, field: "UNSUBSCRIBE.topicFilter")
        expectDecodeError([0xA2, 0x02, 0x00, 0x01], version: .v311, .malformedPacket, field: "UNSUBSCRIBE.topicFilter")
    }

    // Goal: flags must be 0010; packet identifier 0 is a protocol error; empty filter malformed.
    // MQTT 5.0 §3.10.1 [MQTT-3.10.1-1], §2.2.1, §4.7.3.
    @Test func otherRules() {
        expectDecodeError(
            [0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61], version: .v311, .malformedPacket, field: "UNSUBSCRIBE.flags")
        expectDecodeError(
            [0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 0x61], version: .v311, .protocolError,
            field: "UNSUBSCRIBE.packetIdentifier")
        expectDecodeError(
            [0xA2, 0x04, 0x00, 0x01, 0x00, 0x00], version: .v311, .malformedPacket, field: "UNSUBSCRIBE.topicFilter")
    }

    // Goal: UNSUBSCRIBE allows only user properties.
    // MQTT 5.0 §2.2.2.2.
    @Test func propertyOutsideContext() {
        expectDecodeError(
            [0xA2, 0x08, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, 0x61], version: .v5, .malformedPacket,
            field: "properties.0x0B")
    }
}
