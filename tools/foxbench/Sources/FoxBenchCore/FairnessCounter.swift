/// Counts fairness inversions in one subscriber's delivery order: a message delivered after a
/// message of another publisher that was sent more than `thresholdNanos` later (the later one
/// overtook it). Publishers share the process's clock, so their send times compare. The
/// threshold leaves out what no broker can order "fairly" (messages sent nearly together).
public struct FairnessCounter: Sendable {
    public let thresholdNanos: UInt64
    public private(set) var inversions: UInt64 = 0
    /// The latest send time delivered so far, and its publisher.
    private var latest: (time: UInt64, publisher: UInt32)?

    public init(thresholdNanos: UInt64) { self.thresholdNanos = thresholdNanos }

    public mutating func record(sentAt time: UInt64, publisher: UInt32) {
        if let latest, latest.publisher != publisher, time &+ thresholdNanos < latest.time {
            inversions += 1
        }
        if latest.map({ time > $0.time }) ?? true { latest = (time, publisher) }
    }
}
