/// AUTH (MQTT 5.0 §3.15), for extended authentication. 5.0 only.
public struct Auth: Hashable, Sendable {
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(reasonCode: ReasonCode = .success, properties: Properties = Properties()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}
