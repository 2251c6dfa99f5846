import FoxMQTT
import NIOCore

/// An application message as the broker keeps it: after ordering, before delivery. The
/// expiry is an absolute deadline on the ordered clock, so every node computes the same
/// remaining interval for the same delivery.
public struct ApplicationMessage: Sendable {
    public var topicName: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    /// Properties passed through to subscribers (payload format, content type, response topic,
    /// correlation data, user properties). Topic alias and subscription identifiers are per
    /// delivery and never stored here.
    public var properties: Properties
    /// Milliseconds on the ordered clock after which the message is dropped, if it expires.
    public var expiryDeadlineMillis: UInt64?
    /// The client that published it (for No Local); nil for messages the broker makes.
    public var originClientIdentifier: ExactString?

    public init(
        topicName: String, payload: ByteBuffer, qos: QoS, retain: Bool, properties: Properties,
        expiryDeadlineMillis: UInt64?, originClientIdentifier: ExactString?
    ) {
        self.topicName = topicName
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.expiryDeadlineMillis = expiryDeadlineMillis
        self.originClientIdentifier = originClientIdentifier
    }

    /// Builds the message of a client's PUBLISH, ordered at `nowMillis`.
    init(publish: Publish, origin: ExactString?, nowMillis: UInt64) {
        var properties = publish.properties
        properties.topicAlias = nil
        properties.subscriptionIdentifiers = []
        let expiry = properties.messageExpiryIntervalSeconds.map { nowMillis.millisAdding(seconds: $0) }
        self.init(
            topicName: publish.topicName, payload: publish.payload, qos: publish.qos,
            retain: publish.retain, properties: properties, expiryDeadlineMillis: expiry,
            originClientIdentifier: origin)
    }

    /// Expired once its interval has passed (§3.3.2.3.3): an interval of 0 still goes out to
    /// connected subscribers at the time it is ordered, and is dropped from queues after.
    func isExpired(atMillis nowMillis: UInt64) -> Bool {
        guard let deadline = expiryDeadlineMillis else { return false }
        return deadline < nowMillis
    }

    /// The PUBLISH for one delivery: QoS and retain as the subscription decides, the remaining
    /// expiry interval rounded up (MQTT 5.0 §3.3.2.3.3), and the subscription identifiers.
    func publish(
        qos: QoS, retain: Bool, packetIdentifier: UInt16?, subscriptionIdentifiers: [UInt32],
        nowMillis: UInt64, dup: Bool = false
    ) -> Publish {
        var properties = self.properties
        if let deadline = expiryDeadlineMillis {
            let remainingMillis = deadline > nowMillis ? deadline - nowMillis : 0
            // Rounded up, without `+ 999`: a deadline may be "never" (`UInt64.max`).
            properties.messageExpiryIntervalSeconds = UInt32(
                clamping: remainingMillis / 1000 + (remainingMillis % 1000 == 0 ? 0 : 1))
        }
        properties.subscriptionIdentifiers = subscriptionIdentifiers
        return Publish(
            topicName: topicName, payload: payload, qos: qos, retain: retain, dup: dup,
            packetIdentifier: packetIdentifier, properties: properties)
    }
}
