/// UNSUBACK (MQTT 5.0 §3.11). In 3.1.1 the packet has no payload: the reason codes are not
/// written and decode as empty.
public struct UnsubAck: Hashable, Sendable {
    public var packetIdentifier: UInt16
    public var reasonCodes: [ReasonCode]
    public var properties: Properties

    public init(packetIdentifier: UInt16, reasonCodes: [ReasonCode], properties: Properties = Properties()) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}
