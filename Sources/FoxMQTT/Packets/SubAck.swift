/// SUBACK (MQTT 5.0 §3.9). One reason code per topic filter of the SUBSCRIBE, in order. In 3.1.1
/// any failure code is written as 0x80.
public struct SubAck: Hashable, Sendable {
    public var packetIdentifier: UInt16
    public var reasonCodes: [ReasonCode]
    public var properties: Properties

    public init(packetIdentifier: UInt16, reasonCodes: [ReasonCode], properties: Properties = Properties()) {
        self.packetIdentifier = packetIdentifier
        self.reasonCodes = reasonCodes
        self.properties = properties
    }
}
