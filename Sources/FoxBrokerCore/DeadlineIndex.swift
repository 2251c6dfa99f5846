import HeapModule

/// What falls due on the ordered clock, by deadline: delayed wills, session expiry and the
/// expiry of retained messages. A tick pops only what is due (O(due · log n)), instead of
/// scanning every detached session, and `nextDeadlineMillis` tells the edge when a tick is
/// worth ordering at all.
///
/// Entries are never removed when a deadline changes (a client came back, a retained message
/// was replaced): the tick checks each popped entry against the state and skips stale ones.
/// The index is rebuilt from the state when stale entries outnumber live ones, so it stays
/// bounded by the state it indexes.
struct DeadlineIndex {
    enum Kind: UInt8, Comparable {
        case will = 0
        case sessionEnd = 1
        case retainedExpiry = 2

        static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Ordered by deadline, then key bytes, then kind: a total order, so the pop order does not
    /// depend on the order of insertion (the same on every node and after a restart).
    struct Entry: Comparable {
        var deadlineMillis: UInt64
        var key: ExactString
        var kind: Kind

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            if lhs.deadlineMillis != rhs.deadlineMillis { return lhs.deadlineMillis < rhs.deadlineMillis }
            if lhs.key != rhs.key { return lhs.key < rhs.key }
            return lhs.kind < rhs.kind
        }
    }

    private var heap = Heap<Entry>()

    var count: Int { heap.count }
    var nextDeadlineMillis: UInt64? { heap.min?.deadlineMillis }

    mutating func add(_ kind: Kind, key: ExactString, deadlineMillis: UInt64) {
        heap.insert(Entry(deadlineMillis: deadlineMillis, key: key, kind: kind))
    }

    /// Removes and returns the earliest entry if it is due at `nowMillis`.
    mutating func popDue(atMillis nowMillis: UInt64) -> Entry? {
        guard let first = heap.min, first.deadlineMillis <= nowMillis else { return nil }
        return heap.removeMin()
    }

    mutating func removeAll() { heap = Heap() }
}
