/// Loss, duplicate and order accounting for the messages one subscriber receives from one
/// publisher. Sequence numbers are expected to arrive 0, 1, 2, ...; memory is proportional to
/// the number of holes, not to the number of messages.
///
/// - a sequence number above the next expected one opens a hole (the skipped numbers);
/// - one that falls into a hole fills it and is an order violation (it came after a later one);
/// - one already seen is a duplicate (and not an order violation);
/// - what was never seen by the end is lost: `expected - unique`.
public struct SequenceTracker: Sendable, Hashable {
    /// Every arrival, duplicates included.
    public private(set) var received: UInt64 = 0
    public private(set) var duplicates: UInt64 = 0
    public private(set) var orderViolations: UInt64 = 0
    /// One past the highest sequence number seen.
    public private(set) var next: UInt64 = 0
    /// Sequence numbers below `next` not seen yet: sorted, disjoint, non-empty ranges.
    public private(set) var holes: [Range<UInt64>] = []

    public init() {}

    /// Distinct sequence numbers received.
    public var unique: UInt64 { received - duplicates }

    public func lost(expected: UInt64) -> UInt64 { expected > unique ? expected - unique : 0 }

    @inline(__always)
    public mutating func record(_ sequence: UInt64) {
        received += 1
        if sequence == next {
            next += 1
        } else if sequence > next {
            holes.append(next..<sequence)
            next = sequence + 1
        } else {
            recordLate(sequence)
        }
    }

    private mutating func recordLate(_ sequence: UInt64) {
        // The last hole starting at or below `sequence`.
        var low = 0
        var high = holes.count
        while low < high {
            let mid = (low + high) / 2
            if holes[mid].lowerBound <= sequence { low = mid + 1 } else { high = mid }
        }
        let index = low - 1
        guard index >= 0, holes[index].contains(sequence) else {
            duplicates += 1
            return
        }
        orderViolations += 1
        let hole = holes[index]
        let before = hole.lowerBound..<sequence
        let after = (sequence + 1)..<hole.upperBound
        switch (before.isEmpty, after.isEmpty) {
        case (true, true): holes.remove(at: index)
        case (false, true): holes[index] = before
        case (true, false): holes[index] = after
        case (false, false):
            holes[index] = before
            holes.insert(after, at: index + 1)
        }
    }
}

/// The sum of many trackers, for the report.
public struct DeliveryCounts: Sendable, Hashable, Codable {
    public var expected: UInt64 = 0
    public var received: UInt64 = 0
    public var unique: UInt64 = 0
    public var lost: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var orderViolations: UInt64 = 0

    public init() {}

    public mutating func add(_ tracker: SequenceTracker, expected: UInt64) {
        self.expected += expected
        received += tracker.received
        unique += tracker.unique
        lost += tracker.lost(expected: expected)
        duplicates += tracker.duplicates
        orderViolations += tracker.orderViolations
    }

    enum CodingKeys: String, CodingKey {
        case expected, received, unique, lost, duplicates
        case orderViolations = "order_violations"
    }
}
