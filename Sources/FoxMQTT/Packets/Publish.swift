import NIOCore

/// PUBLISH (MQTT 5.0 §3.3). The payload is a slice of the read buffer: it is passed along,
/// never copied, on its way to subscribers.
public struct Publish: Hashable, Sendable {
    /// May be empty in 5.0 when `properties.topicAlias` names the topic.
    public var topicName: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    public var dup: Bool
    /// Present exactly when `qos > .atMostOnce`; never 0.
    public var packetIdentifier: UInt16?
    public var properties: Properties

    public init(
        topicName: String, payload: ByteBuffer, qos: QoS = .atMostOnce, retain: Bool = false,
        dup: Bool = false, packetIdentifier: UInt16? = nil, properties: Properties = Properties()
    ) {
        self.topicName = topicName
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetIdentifier = packetIdentifier
        self.properties = properties
    }
}
