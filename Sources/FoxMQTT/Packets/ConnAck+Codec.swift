import NIOCore

/// CONNACK on the wire (MQTT 5.0 §3.2, 3.1.1 §3.2): acknowledge flags, reason code (3.1.1:
/// return code), [properties].
extension ConnAck: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> ConnAck
    {
        let acknowledgeFlags = try body.readMQTTByte("CONNACK.acknowledgeFlags")
        // §3.2.2.1 [MQTT-3.2.2-1]: bits 7-1 are reserved.
        guard acknowledgeFlags & 0xFE == 0 else {
            throw .malformed("CONNACK.acknowledgeFlags", "reserved bits are set")
        }
        let code = try body.readMQTTByte("CONNACK.reasonCode")
        switch version {
        case .v311:
            guard let reasonCode = ConnAck.reasonCode(forReturnCode: code) else {
                throw .malformed("CONNACK.returnCode", "return code \(code) is reserved")
            }
            return ConnAck(sessionPresent: acknowledgeFlags == 1, reasonCode: reasonCode)
        case .v5:
            let properties = try Properties.read(from: &body, context: .connAck)
            return ConnAck(
                sessionPresent: acknowledgeFlags == 1, reasonCode: ReasonCode(rawValue: code), properties: properties)
        }
    }

    /// The 3.1.1 return codes (3.1.1 §3.2.2.3) as 5.0 reason codes.
    static func reasonCode(forReturnCode code: UInt8) -> ReasonCode? {
        switch code {
        case 0: .success
        case 1: .unsupportedProtocolVersion
        case 2: .clientIdentifierNotValid
        case 3: .serverUnavailable
        case 4: .badUserNameOrPassword
        case 5: .notAuthorized
        default: nil
        }
    }

    /// The 3.1.1 return code for a reason code; a failure without its own return code is
    /// written as 0x03 Server unavailable.
    public static func returnCode(for reasonCode: ReasonCode) -> UInt8 {
        switch reasonCode {
        case .success: 0
        case .unsupportedProtocolVersion: 1
        case .clientIdentifierNotValid: 2
        case .badUserNameOrPassword: 4
        case .notAuthorized: 5
        default: 3
        }
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        version == .v5 ? 2 + properties.encodedLength : 2
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        buffer.writeInteger(UInt8(sessionPresent ? 1 : 0))
        switch version {
        case .v311:
            buffer.writeInteger(ConnAck.returnCode(for: reasonCode))
        case .v5:
            buffer.writeInteger(reasonCode.rawValue)
            properties.write(to: &buffer, contentLength: properties.contentLength)
        }
    }
}
