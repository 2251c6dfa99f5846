import FoxMQTT
import NIOCore
import Testing

@Suite struct SubAckTests {
    // Goal: 3.1.1 SUBACK with granted QoS and a failure.
    // MQTT 3.1.1 §3.9.3: 0x00-0x02 granted, 0x80 failure.
    @Test func v311() throws {
        let bytes: [UInt8] = [
            0x90, 0x05,  // SUBACK, remaining length 5
            0x00, 0x0A,  // packet identifier 10
            0x01, 0x80, 0x02,  // QoS 1, failure, QoS 2
        ]
        try expectRoundTrip(
            bytes, version: .v311,
            .subAck(SubAck(packetIdentifier: 10, reasonCodes: [.grantedQoS1, .unspecifiedError, .grantedQoS2])))
    }

    // Goal: in 3.1.1 every 5.0 failure code is written as 0x80.
    // MQTT 3.1.1 §3.9.3.
    @Test func v311FailuresAs0x80() {
        expectEncode(
            .subAck(SubAck(packetIdentifier: 1, reasonCodes: [.topicFilterInvalid, .notAuthorized, .grantedQoS0])),
            version: .v311, [0x90, 0x05, /* SUBACK, 5 */ 0x00, 0x01, /* id 1 */ 0x80, 0x80, 0x00])
    }

    // Goal: reserved 3.1.1 return codes are malformed.
    // MQTT 3.1.1 §3.9.3: other values are reserved.
    @Test func v311Reserved() {
        expectDecodeError([0x90, 0x03, 0x00, 0x01, 0x03], version: .v311, .malformedPacket, field: "SUBACK.returnCode")
        expectDecodeError([0x90, 0x03, 0x00, 0x01, 0x8F], version: .v311, .malformedPacket, field: "SUBACK.returnCode")
    }

    // Goal: 5.0 SUBACK with a reason string and 5.0 codes.
    // MQTT 5.0 §3.9.2, §3.9.3.
    @Test func v5() throws {
        let bytes: [UInt8] = [
            0x90, 0x0A,  // SUBACK, remaining length 10
            0x00, 0x02,  // packet identifier 2
            0x05, 0x1F, 0x00, 0x02, 0x6E, 0x6F,  // properties: reason string "no"
            0x00, 0x8F,  // granted QoS 0, topic filter invalid
        ]
        var properties = Properties()
        properties.reasonString = "no"
        try expectRoundTrip(
            bytes, version: .v5,
            .subAck(
                SubAck(packetIdentifier: 2, reasonCodes: [.grantedQoS0, .topicFilterInvalid], properties: properties)))
    }

    // Goal: a SUBACK without reason codes is malformed.
    // MQTT 5.0 §3.9.3: one reason code per topic filter.
    @Test func noReasonCodes() {
        expectDecodeError([0x90, 0x03, 0x00, 0x01, 0x00], version: .v5, .malformedPacket, field: "SUBACK.reasonCode")
        expectDecodeError([0x90, 0x02, 0x00, 0x01], version: .v311, .malformedPacket, field: "SUBACK.reasonCode")
    }
}
