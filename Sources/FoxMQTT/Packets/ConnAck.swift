/// CONNACK (MQTT 5.0 §3.2). In 3.1.1 the reason code is written as the matching return code
/// (0x00 accepted, 0x01 unacceptable protocol version, 0x02 identifier rejected, 0x03 server
/// unavailable, 0x04 bad user name or password, 0x05 not authorized).
public struct ConnAck: Hashable, Sendable {
    public var sessionPresent: Bool
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(sessionPresent: Bool, reasonCode: ReasonCode, properties: Properties = Properties()) {
        self.sessionPresent = sessionPresent
        self.reasonCode = reasonCode
        self.properties = properties
    }
}
