/// UNSUBSCRIBE (MQTT 5.0 §3.10).
public struct Unsubscribe: Hashable, Sendable {
    public var packetIdentifier: UInt16
    public var topicFilters: [String]
    public var properties: Properties

    public init(packetIdentifier: UInt16, topicFilters: [String], properties: Properties = Properties()) {
        self.packetIdentifier = packetIdentifier
        self.topicFilters = topicFilters
        self.properties = properties
    }
}
