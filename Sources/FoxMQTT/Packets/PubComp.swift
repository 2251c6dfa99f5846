/// PUBCOMP (MQTT 5.0 §3.7). In 3.1.1 only the packet identifier is on the wire; in 5.0 the
/// reason code and properties are omitted when they are Success and empty (§3.7.2.1).
public struct PubComp: Hashable, Sendable {
    public var packetIdentifier: UInt16
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(
        packetIdentifier: UInt16, reasonCode: ReasonCode = .success,
        properties: Properties = Properties()
    ) {
        self.packetIdentifier = packetIdentifier
        self.reasonCode = reasonCode
        self.properties = properties
    }
}
