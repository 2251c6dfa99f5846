import FoxMQTT
import NIOCore
import Testing

@Suite struct UnsubAckTests {
    // Goal: 3.1.1 UNSUBACK is the packet identifier only; reason codes are not written.
    // MQTT 3.1.1 §3.11.
    @Test func v311() throws {
        let bytes: [UInt8] = [0xB0, 0x02, /* UNSUBACK, remaining length 2 */ 0x00, 0x07 /* id 7 */]
        try expectRoundTrip(bytes, version: .v311, .unsubAck(UnsubAck(packetIdentifier: 7, reasonCodes: [])))
        expectEncode(
            .unsubAck(UnsubAck(packetIdentifier: 7, reasonCodes: [.success, .noSubscriptionExisted])), version: .v311,
            bytes)
    }

    // Goal: 5.0 UNSUBACK with properties and one reason code per filter.
    // MQTT 5.0 §3.11.2, §3.11.3.
    @Test func v5() throws {
        let bytes: [UInt8] = [
            0xB0, 0x05,  // UNSUBACK, remaining length 5
            0x00, 0x07,  // packet identifier 7
            0x00,  // no properties
            0x00, 0x11,  // success, no subscription existed
        ]
        try expectRoundTrip(
            bytes, version: .v5,
            .unsubAck(UnsubAck(packetIdentifier: 7, reasonCodes: [.success, .noSubscriptionExisted])))
    }

    // Goal: 5.0 UNSUBACK without reason codes is malformed; 3.1.1 with a payload too.
    // MQTT 5.0 §3.11.3; MQTT 3.1.1 §3.11.3 (no payload).
    @Test func lengths() {
        expectDecodeError([0xB0, 0x03, 0x00, 0x07, 0x00], version: .v5, .malformedPacket, field: "UNSUBACK.reasonCode")
        expectDecodeError(
            [0xB0, 0x03, 0x00, 0x07, 0x00], version: .v311, .malformedPacket, field: "UNSUBACK.remainingLength")
    }
}
