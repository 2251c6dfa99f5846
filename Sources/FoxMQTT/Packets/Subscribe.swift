/// SUBSCRIBE (MQTT 5.0 §3.8).
public struct Subscribe: Hashable, Sendable {
    public var packetIdentifier: UInt16
    public var subscriptions: [TopicSubscription]
    /// May carry one subscription identifier and user properties.
    public var properties: Properties

    public init(
        packetIdentifier: UInt16, subscriptions: [TopicSubscription],
        properties: Properties = Properties()
    ) {
        self.packetIdentifier = packetIdentifier
        self.subscriptions = subscriptions
        self.properties = properties
    }
}

/// One topic filter of a SUBSCRIBE with its options (§3.8.3.1).
public struct TopicSubscription: Hashable, Sendable {
    public var topicFilter: String
    public var options: SubscriptionOptions

    public init(topicFilter: String, options: SubscriptionOptions) {
        self.topicFilter = topicFilter
        self.options = options
    }
}

/// Subscription options byte (§3.8.3.1). In 3.1.1 only the QoS is on the wire.
public struct SubscriptionOptions: Hashable, Sendable {
    public var qos: QoS
    public var noLocal: Bool
    public var retainAsPublished: Bool
    public var retainHandling: RetainHandling

    public init(
        qos: QoS, noLocal: Bool = false, retainAsPublished: Bool = false,
        retainHandling: RetainHandling = .sendOnSubscribe
    ) {
        self.qos = qos
        self.noLocal = noLocal
        self.retainAsPublished = retainAsPublished
        self.retainHandling = retainHandling
    }
}

/// Retain Handling (§3.8.3.1): when retained messages are sent for a new subscription.
public enum RetainHandling: UInt8, Hashable, Sendable {
    case sendOnSubscribe = 0
    case sendOnNewSubscribe = 1
    case doNotSend = 2
}
