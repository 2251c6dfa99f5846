/// A packet the decoder refuses. It carries the reason code the specification names for the
/// violation (Malformed Packet 0x81, Protocol Error 0x82, Packet Too Large 0x95, Topic Name
/// Invalid 0x90, Unsupported Protocol Version 0x84, ...) and the field that failed, so that one
/// place (the connection) can turn it into a CONNACK or DISCONNECT for 5.0 or a close for 3.1.1.
public struct MQTTDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reasonCode: ReasonCode
    /// The field that failed, e.g. "PUBLISH.topicName" or "properties.0x23".
    public var field: String
    public var detail: String
    /// For an unsupported CONNECT: the protocol level it asked for (3 for "MQIsdp"), so the
    /// refusal can be written in a form that client reads (3.1.1 §3.1.2.2: return code 0x01).
    public var protocolLevel: UInt8?

    public init(_ reasonCode: ReasonCode, field: String, _ detail: String) {
        self.reasonCode = reasonCode
        self.field = field
        self.detail = detail
    }

    public static func malformed(_ field: String, _ detail: String) -> MQTTDecodeError {
        MQTTDecodeError(.malformedPacket, field: field, detail)
    }

    public static func protocolError(_ field: String, _ detail: String) -> MQTTDecodeError {
        MQTTDecodeError(.protocolError, field: field, detail)
    }

    public var description: String { "\(field): \(detail) (reason \(reasonCode))" }
}
