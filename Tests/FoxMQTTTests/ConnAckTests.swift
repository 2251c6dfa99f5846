import FoxMQTT
import NIOCore
import Testing

@Suite struct ConnAckTests {
    // Goal: 3.1.1 CONNACK with session present and return code 0.
    // MQTT 3.1.1 §3.2.2.2, §3.2.2.3.
    @Test func v311Accepted() throws {
        let bytes: [UInt8] = [
            0x20, 0x02, /* CONNACK, remaining length 2 */ 0x01, /* session present */ 0x00 /* accepted */,
        ]
        try expectRoundTrip(bytes, version: .v311, .connAck(ConnAck(sessionPresent: true, reasonCode: .success)))
    }

    // Goal: every 3.1.1 return code maps to its 5.0 reason code and back.
    // MQTT 3.1.1 §3.2.2.3, Table 3.1.
    @Test(arguments: [
        (UInt8(1), ReasonCode.unsupportedProtocolVersion), (2, .clientIdentifierNotValid), (3, .serverUnavailable),
        (4, .badUserNameOrPassword), (5, .notAuthorized),
    ])
    func v311ReturnCodes(returnCode: UInt8, reasonCode: ReasonCode) throws {
        let bytes: [UInt8] = [0x20, 0x02, /* CONNACK, remaining length 2 */ 0x00, returnCode]
        try expectRoundTrip(bytes, version: .v311, .connAck(ConnAck(sessionPresent: false, reasonCode: reasonCode)))
    }

    // Goal: 5.0 failures without a 3.1.1 return code are written as 0x03 Server unavailable.
    // MQTT 3.1.1 §3.2.2.3 has no other codes; 0x03 is the generic refusal.
    @Test(arguments: [ReasonCode.banned, .unspecifiedError, .serverBusy, .malformedPacket, .quotaExceeded])
    func v311OtherFailures(reasonCode: ReasonCode) {
        expectEncode(
            .connAck(ConnAck(sessionPresent: false, reasonCode: reasonCode)), version: .v311,
            [0x20, 0x02, /* CONNACK, remaining length 2 */ 0x00, 0x03 /* server unavailable */])
    }

    // Goal: reserved 3.1.1 return codes are malformed.
    // MQTT 3.1.1 §3.2.2.3: 6-255 are reserved.
    @Test func v311ReservedReturnCode() {
        expectDecodeError([0x20, 0x02, 0x00, 0x06], version: .v311, .malformedPacket, field: "CONNACK.returnCode")
    }

    // Goal: 5.0 CONNACK without properties.
    // MQTT 5.0 §3.2.2.
    @Test func v5Success() throws {
        let bytes: [UInt8] = [
            0x20, 0x03,  // CONNACK, remaining length 3
            0x01,  // session present
            0x00,  // success
            0x00,  // no properties
        ]
        try expectRoundTrip(bytes, version: .v5, .connAck(ConnAck(sessionPresent: true, reasonCode: .success)))
    }

    // Goal: 5.0 CONNACK with a failure code and properties.
    // MQTT 5.0 §3.2.2.2, §3.2.2.3.
    @Test func v5WithProperties() throws {
        let bytes: [UInt8] = [
            0x20, 0x0B,  // CONNACK, remaining length 11
            0x00,  // no session
            0x00,  // success
            0x08,  // property length 8
            0x12, 0x00, 0x02, 0x69, 0x64,  // assigned client identifier "id"
            0x21, 0x00, 0x0A,  // receive maximum 10
        ]
        var properties = Properties()
        properties.assignedClientIdentifier = "id"
        properties.receiveMaximum = 10
        try expectRoundTrip(
            bytes, version: .v5, .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: properties)))
        let refused: [UInt8] = [
            0x20, 0x03, /* CONNACK, 3 */ 0x00, 0x87, /* not authorized */ 0x00 /* no properties */,
        ]
        try expectRoundTrip(refused, version: .v5, .connAck(ConnAck(sessionPresent: false, reasonCode: .notAuthorized)))
    }

    // Goal: reserved acknowledge flag bits are malformed.
    // MQTT 5.0 §3.2.2.1 [MQTT-3.2.2-1].
    @Test func reservedAcknowledgeFlags() {
        expectDecodeError(
            [0x20, 0x03, 0x02, 0x00, 0x00], version: .v5, .malformedPacket, field: "CONNACK.acknowledgeFlags")
    }

    // Goal: 3.1.1 CONNACK carries no properties: a third byte is left over.
    // MQTT 3.1.1 §3.2: remaining length 2.
    @Test func v311ExtraByte() {
        expectDecodeError(
            [0x20, 0x03, 0x00, 0x00, 0x00], version: .v311, .malformedPacket, field: "CONNACK.remainingLength")
    }

    // Goal: reserved fixed header flags of CONNACK are malformed.
    // MQTT 5.0 §2.1.3: CONNACK flags are 0000.
    @Test func reservedHeaderFlags() {
        expectDecodeError([0x21, 0x02, 0x00, 0x00], version: .v311, .malformedPacket, field: "CONNACK.flags")
    }
}
