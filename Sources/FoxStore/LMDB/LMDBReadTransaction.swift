import CLMDB

/// A read transaction: a consistent snapshot of the store for the duration of
/// `LMDBEnvironment.read`'s body.
///
/// It is `~Copyable` and lent to the body, so it cannot outlive the call: read transactions stay
/// short (a long one pins every page freed after it began and makes `data.mdb` grow).
public struct LMDBReadTransaction: ~Copyable {
    let core: LMDBTransactionCore

    init(core: LMDBTransactionCore) {
        self.core = core
    }

    /// A copy of the value stored under `key`, or nil.
    public func get(_ table: LMDBTable, key: some Collection<UInt8>) throws(StoreError) -> [UInt8]? {
        try core.get(table, key: key)
    }

    /// Calls `body` with the value stored under `key` without copying it, or returns nil. The
    /// buffer points into the map and is valid only during the call.
    public func withValue<Result>(
        _ table: LMDBTable, key: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result? {
        try core.withValue(table, key: key, body)
    }

    /// Calls `body` with each entry in key order, from the first key ≥ `startKey` (or the first
    /// key), until it returns false. The buffers point into the map and are valid only during
    /// the call.
    public func forEach(
        _ table: LMDBTable, from startKey: [UInt8]? = nil,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try core.forEach(table, from: startKey, body)
    }

    /// The entry with the smallest key, copied.
    public func first(_ table: LMDBTable) throws(StoreError) -> (key: [UInt8], value: [UInt8])? {
        try core.edge(table, MDB_FIRST)
    }

    /// The entry with the greatest key, copied.
    public func last(_ table: LMDBTable) throws(StoreError) -> (key: [UInt8], value: [UInt8])? {
        try core.edge(table, MDB_LAST)
    }

    /// The number of entries (kept by LMDB, no scan).
    public func count(_ table: LMDBTable) throws(StoreError) -> Int {
        try core.count(table)
    }

    /// Entries and the bytes of the pages that hold them (kept by LMDB, no scan).
    public func statistics(_ table: LMDBTable) throws(StoreError) -> LMDBTableStatistics {
        try core.statistics(table)
    }
}
