/// The bounds the broker core enforces on what clients can grow. The edge (connections) has its
/// own bounds in `ConnectionLimits`.
public struct BrokerLimits: Sendable, Hashable {
    /// Outbound QoS 1/2 messages unacknowledged per session, whatever the client's receive
    /// maximum says.
    public var inflightCountMax: Int = 1024
    /// Messages queued per session beyond the in-flight window (online or offline).
    public var queuedMessageCountMax: Int = 10_000
    /// Subscriptions one session may hold.
    public var subscriptionCountMax: Int = 1000
    /// Levels of a topic name or filter.
    public var topicLevelCountMax: Int = 128
    /// Sessions (online and offline) the broker keeps.
    public var sessionCountMax: Int = 1_000_000
    /// Retained messages kept; a new retained topic beyond it is refused with 0x97.
    public var retainedMessageCountMax: Int = 1_000_000
    /// Bytes of retained messages kept (topic plus payload); beyond it a retained PUBLISH
    /// that adds bytes is refused with 0x97.
    public var retainedBytesMax: Int = 1 << 30

    public init() {}

    public func checkInvariants() {
        precondition(inflightCountMax >= 1 && inflightCountMax <= Int(UInt16.max))
        precondition(queuedMessageCountMax >= 0)
        precondition(subscriptionCountMax >= 1)
        precondition(topicLevelCountMax >= 1)
        precondition(retainedMessageCountMax >= 0 && retainedBytesMax >= 0)
    }
}
