/// The sessions by client identifier, remembering which ones changed since the last
/// checkpoint: the store rewrites only those rows (O(changed sessions), not O(sessions)).
///
/// Every change of a session in the broker core goes through the subscript's `_modify` (or
/// `removeValue`), so none can be missed; reads through `get` mark nothing. `_modify` yields the
/// stored value in place, so a change does not copy the session's queues (copy-on-write).
struct SessionTable {
    private var storage: [ExactString: Session] = [:]
    /// Client identifiers of sessions changed, added or removed since `takeChanged`.
    private(set) var changed: Set<ExactString> = []

    var count: Int { storage.count }

    subscript(clientIdentifier: ExactString) -> Session? {
        get { storage[clientIdentifier] }
        _modify {
            changed.insert(clientIdentifier)
            yield &storage[clientIdentifier]
        }
    }

    @discardableResult
    mutating func removeValue(forKey clientIdentifier: ExactString) -> Session? {
        changed.insert(clientIdentifier)
        return storage.removeValue(forKey: clientIdentifier)
    }

    /// The changed client identifiers, sorted (no hash order leaves here), and a fresh start.
    mutating func takeChanged() -> [ExactString] {
        defer { changed.removeAll(keepingCapacity: true) }
        return changed.sorted()
    }

    /// Every client identifier, sorted.
    var sortedKeys: [ExactString] { storage.keys.sorted() }

    var values: Dictionary<ExactString, Session>.Values { storage.values }
}

/// Iteration in hash order, for checks that visit every session and order nothing (invariant
/// checks, counts). Anything ordered, hashed or sent uses `sortedKeys`.
extension SessionTable: Sequence {
    func makeIterator() -> Dictionary<ExactString, Session>.Iterator { storage.makeIterator() }
}
