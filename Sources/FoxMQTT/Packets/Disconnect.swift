/// DISCONNECT (MQTT 5.0 §3.14). In 3.1.1 it has no variable header; only a client sends it.
public struct Disconnect: Hashable, Sendable {
    public var reasonCode: ReasonCode
    public var properties: Properties

    public init(reasonCode: ReasonCode = .normalDisconnection, properties: Properties = Properties()) {
        self.reasonCode = reasonCode
        self.properties = properties
    }
}
