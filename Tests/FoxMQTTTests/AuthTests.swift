import FoxMQTT
import NIOCore
import Testing

@Suite struct AuthTests {
    // Goal: AUTH forms: length 0 is Success; reason code with method and data.
    // MQTT 5.0 §3.15.2.1, §3.15.2.2.
    @Test func v5Forms() throws {
        try expectRoundTrip([0xF0, 0x00 /* AUTH, remaining length 0 */], version: .v5, .auth(Auth()))
        var properties = Properties()
        properties.authenticationMethod = "M"
        properties.authenticationData = [0x01]
        try expectRoundTrip(
            [
                0xF0, 0x0A,  // AUTH, remaining length 10
                0x18,  // continue authentication
                0x08,  // property length 8
                0x15, 0x00, 0x01, 0x4D,  // authentication method "M"
                0x16, 0x00, 0x01, 0x01,  // authentication data [1]
            ], version: .v5, .auth(Auth(reasonCode: .continueAuthentication, properties: properties)))
        // A reason code without property length is accepted.
        try expectDecode([0xF0, 0x01, 0x19], version: .v5, .auth(Auth(reasonCode: .reAuthenticate)))
    }

    // Goal: AUTH does not exist in 3.1.1.
    // MQTT 3.1.1 §2.2.1: type 15 is reserved.
    @Test func v311Malformed() {
        expectDecodeError([0xF0, 0x00], version: .v311, .malformedPacket, field: "AUTH")
    }

    // Goal: reserved flags and foreign properties are malformed; data without method is a
    // protocol error. MQTT 5.0 §3.15.1, §2.2.2.2, §3.15.2.2.4.
    @Test func rules() {
        expectDecodeError([0xF1, 0x00], version: .v5, .malformedPacket, field: "AUTH.flags")
        expectDecodeError(
            [0xF0, 0x04, 0x18, 0x02, 0x01, 0x01], version: .v5, .malformedPacket, field: "properties.0x01")
        expectDecodeError(
            [0xF0, 0x06, 0x18, 0x04, 0x16, 0x00, 0x01, 0x01], version: .v5, .protocolError, field: "properties.0x16")
    }
}
