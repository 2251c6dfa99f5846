import CLMDB

/// The write transaction of `LMDBEnvironment.write`: everything done in the body commits
/// together, or nothing does.
///
/// It is `~Copyable` and lent `inout` to the body, so it cannot escape the call. Reads see the
/// transaction's own changes. Buffers handed to closures point into the map and are valid only
/// during the call (a change may move pages).
public struct LMDBWriteTransaction: ~Copyable {
    let core: LMDBTransactionCore
    /// Set when an operation hit `MDB_MAP_FULL`: LMDB has then poisoned the transaction, so
    /// `write` aborts it, grows the map and reruns the body, even if the body swallowed the
    /// error.
    var mapFull = false

    init(core: LMDBTransactionCore) {
        self.core = core
    }

    /// Stores `value` under `key`, replacing any value there.
    ///
    /// - Parameter append: the key is greater than every key in the table (`MDB_APPEND`): LMDB
    ///   then compares with the last key only and fills pages completely, the fast path for a
    ///   log with increasing big-endian keys. A key out of order throws
    ///   `StoreError.appendOutOfOrder`.
    public mutating func put(
        _ table: LMDBTable, key: some Collection<UInt8>, value: some Collection<UInt8>, append: Bool = false
    ) throws(StoreError) {
        core.checkTable(table)
        let flags: UInt32 = append ? UInt32(MDB_APPEND) : 0
        let code = withContiguousBytes(key) { keyBytes in
            withContiguousBytes(value) { valueBytes in
                core.checkKey(keyBytes)
                var keyValue = MDB_val(keyBytes)
                var valueValue = MDB_val(valueBytes)
                return mdb_put(core.pointer, table.handle, &keyValue, &valueValue, flags)
            }
        }
        try check(code, operation: "put", table: table)
    }

    /// Stores a value of `valueSizeBytes` under `key` that `fill` writes in place into the map
    /// (`MDB_RESERVE`), which saves encoding into a buffer and copying it.
    public mutating func put(
        _ table: LMDBTable, key: some Collection<UInt8>, valueSizeBytes: Int, append: Bool = false,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(StoreError) {
        core.checkTable(table)
        precondition(valueSizeBytes >= 0, "negative value size \(valueSizeBytes)")
        let flags = UInt32(MDB_RESERVE) | (append ? UInt32(MDB_APPEND) : 0)
        var reserved = MDB_val(mv_size: valueSizeBytes, mv_data: nil)
        let code = withContiguousBytes(key) { keyBytes in
            core.checkKey(keyBytes)
            var keyValue = MDB_val(keyBytes)
            return mdb_put(core.pointer, table.handle, &keyValue, &reserved, flags)
        }
        try check(code, operation: "put", table: table)
        fill(UnsafeMutableRawBufferPointer(start: reserved.mv_data, count: reserved.mv_size))
    }

    /// Removes `key`; false if it was not there.
    @discardableResult
    public mutating func delete(_ table: LMDBTable, key: some Collection<UInt8>) throws(StoreError) -> Bool {
        core.checkTable(table)
        let code = withContiguousBytes(key) { keyBytes in
            core.checkKey(keyBytes)
            var keyValue = MDB_val(keyBytes)
            return mdb_del(core.pointer, table.handle, &keyValue, nil)
        }
        if code == MDB_NOTFOUND { return false }
        try check(code, operation: "delete", table: table)
        return true
    }

    /// Empties the table (`mdb_drop(…, 0)`); the table itself stays.
    public mutating func deleteAll(_ table: LMDBTable) throws(StoreError) {
        core.checkTable(table)
        try check(mdb_drop(core.pointer, table.handle, 0), operation: "delete all", table: table)
    }

    /// Deletes the smallest keys, those below `bound`, at most `limit` of them, and returns how
    /// many it deleted.
    ///
    /// The limit keeps trims bounded: one huge delete makes one huge transaction and floods the
    /// freelist at once, which later overflow-page allocations must scan (erigon#1213). Trim a
    /// log in batches, one per write transaction.
    public mutating func deleteRange(
        _ table: LMDBTable, below bound: some Collection<UInt8>, limit: Int
    ) throws(StoreError) -> Int {
        precondition(limit >= 0, "negative delete limit \(limit)")
        if limit == 0 { return 0 }
        let cursor = try core.openCursor(table)
        defer { mdb_cursor_close(cursor) }
        var deleted = 0
        var code: Int32 = 0
        withContiguousBytes(bound) { boundBytes in
            core.checkKey(boundBytes)
            var boundValue = MDB_val(boundBytes)
            var key = MDB_val()
            var value = MDB_val()
            while deleted < limit {
                // From the first key each time: a fresh descent is cheap at the left edge, and
                // it avoids relying on where a cursor stands after mdb_cursor_del.
                code = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
                if code != 0 { break }
                if mdb_cmp(core.pointer, table.handle, &key, &boundValue) >= 0 { break }
                code = mdb_cursor_del(cursor, 0)
                if code != 0 { break }
                deleted += 1
            }
        }
        if code != 0 && code != MDB_NOTFOUND {
            try check(code, operation: "delete range", table: table)
        }
        return deleted
    }

    /// A copy of the value stored under `key` (this transaction's changes included), or nil.
    public func get(_ table: LMDBTable, key: some Collection<UInt8>) throws(StoreError) -> [UInt8]? {
        try core.get(table, key: key)
    }

    /// Calls `body` with the value under `key` without copying it, or returns nil.
    public func withValue<Result>(
        _ table: LMDBTable, key: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result? {
        try core.withValue(table, key: key, body)
    }

    /// As `LMDBReadTransaction.forEach`, over this transaction's view.
    public func forEach(
        _ table: LMDBTable, from startKey: [UInt8]? = nil,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try core.forEach(table, from: startKey, body)
    }

    public func first(_ table: LMDBTable) throws(StoreError) -> (key: [UInt8], value: [UInt8])? {
        try core.edge(table, MDB_FIRST)
    }

    public func last(_ table: LMDBTable) throws(StoreError) -> (key: [UInt8], value: [UInt8])? {
        try core.edge(table, MDB_LAST)
    }

    public func count(_ table: LMDBTable) throws(StoreError) -> Int {
        try core.count(table)
    }

    /// Opens or creates a table inside this transaction (for `LMDBEnvironment.openTable`).
    mutating func openTableHandle(_ name: String, create: Bool) throws(StoreError) -> UInt32 {
        let opened = core.openTableHandle(name, create: create)
        if opened.code == MDB_MAP_FULL { mapFull = true }
        if opened.code != 0 { throw opened.error }
        return opened.handle
    }

    private mutating func check(_ code: Int32, operation: String, table: LMDBTable) throws(StoreError) {
        if code == 0 { return }
        if code == MDB_MAP_FULL { mapFull = true }
        if code == MDB_KEYEXIST { throw StoreError.appendOutOfOrder(path: core.dataPath, table: table.name) }
        throw StoreError(lmdbCode: code, operation: operation, path: core.dataPath, table: table.name)
    }
}
