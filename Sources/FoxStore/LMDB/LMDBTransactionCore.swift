import CLMDB

/// What read and write transactions share: the `MDB_txn`, and lookups and cursor walks over it.
///
/// Byte buffers handed out point into the map and are valid only until the transaction ends
/// (in a write transaction: until its next change), which is why the public API hands them to
/// closures and copies everything it returns.
struct LMDBTransactionCore {
    let pointer: OpaquePointer
    /// `…/data.mdb`, for error messages.
    let dataPath: String
    let environmentSerial: UInt64
    let keySizeMaxBytes: Int

    func checkTable(_ table: LMDBTable) {
        precondition(
            table.environmentSerial == environmentSerial,
            "table '\(table.name)' was opened by another LMDB environment")
    }

    func checkKey(_ key: UnsafeRawBufferPointer) {
        // LMDB refuses empty and oversized keys with MDB_BAD_VALSIZE; both are bugs in a key
        // codec, not operating errors, so they stop the program with a clear message.
        precondition(
            key.count > 0 && key.count <= keySizeMaxBytes,
            "LMDB key of \(key.count) bytes (must be 1...\(keySizeMaxBytes))")
    }

    /// The value stored under `key`, pointing into the map; nil if there is none.
    func lookup(_ table: LMDBTable, key: UnsafeRawBufferPointer) throws(StoreError) -> UnsafeRawBufferPointer? {
        checkTable(table)
        checkKey(key)
        var keyValue = MDB_val(key)
        var value = MDB_val()
        let code = mdb_get(pointer, table.handle, &keyValue, &value)
        if code == MDB_NOTFOUND { return nil }
        if code != 0 { throw StoreError(lmdbCode: code, operation: "get", path: dataPath, table: table.name) }
        return value.bytes
    }

    /// A copy of the value under `key`, or nil.
    func get(_ table: LMDBTable, key: some Collection<UInt8>) throws(StoreError) -> [UInt8]? {
        try withContiguousBytes(key) { keyBytes throws(StoreError) in try lookup(table, key: keyBytes) }.map {
            Array($0)
        }
    }

    /// `body` applied to the value under `key` in place, or nil.
    func withValue<Result>(
        _ table: LMDBTable, key: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) throws -> Result? {
        let value = try withContiguousBytes(key) { keyBytes throws(StoreError) in try lookup(table, key: keyBytes) }
        guard let value else { return nil }
        return try body(value)
    }

    /// Calls `body` with each entry from the first key ≥ `startKey` (or the first key) in key
    /// order, until it returns false.
    func forEach(
        _ table: LMDBTable, from startKey: [UInt8]?,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let cursor = try openCursor(table)
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var value = MDB_val()
        var code: Int32
        if let startKey {
            code = startKey.withUnsafeBytes { startBytes in
                checkKey(startBytes)
                key = MDB_val(startBytes)
                return mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE)
            }
        } else {
            code = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
        }
        while code == 0 {
            guard try body(key.bytes, value.bytes) else { return }
            code = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
        }
        if code != MDB_NOTFOUND {
            throw StoreError(lmdbCode: code, operation: "cursor walk", path: dataPath, table: table.name)
        }
    }

    /// The first (`MDB_FIRST`) or last (`MDB_LAST`) entry, copied.
    func edge(_ table: LMDBTable, _ operation: MDB_cursor_op) throws(StoreError) -> (key: [UInt8], value: [UInt8])? {
        let cursor = try openCursor(table)
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var value = MDB_val()
        let code = mdb_cursor_get(cursor, &key, &value, operation)
        if code == MDB_NOTFOUND { return nil }
        if code != 0 { throw StoreError(lmdbCode: code, operation: "cursor get", path: dataPath, table: table.name) }
        return (Array(key.bytes), Array(value.bytes))
    }

    func count(_ table: LMDBTable) throws(StoreError) -> Int {
        checkTable(table)
        var statistics = MDB_stat()
        let code = mdb_stat(pointer, table.handle, &statistics)
        if code != 0 { throw StoreError(lmdbCode: code, operation: "stat", path: dataPath, table: table.name) }
        return Int(statistics.ms_entries)
    }

    func statistics(_ table: LMDBTable) throws(StoreError) -> LMDBTableStatistics {
        checkTable(table)
        var statistics = MDB_stat()
        let code = mdb_stat(pointer, table.handle, &statistics)
        if code != 0 { throw StoreError(lmdbCode: code, operation: "stat", path: dataPath, table: table.name) }
        let pages = statistics.ms_branch_pages + statistics.ms_leaf_pages + statistics.ms_overflow_pages
        return LMDBTableStatistics(entries: Int(statistics.ms_entries), bytes: pages * Int(statistics.ms_psize))
    }

    /// `mdb_dbi_open`; the caller serializes it (one such transaction per process at a time).
    func openTableHandle(_ name: String, create: Bool) -> (code: Int32, handle: UInt32, error: StoreError) {
        var handle: MDB_dbi = 0
        let code = mdb_dbi_open(pointer, name, create ? UInt32(MDB_CREATE) : 0, &handle)
        let error =
            code == MDB_NOTFOUND
            ? StoreError.tableMissing(path: dataPath, table: name)
            : StoreError(lmdbCode: code, operation: "open table", path: dataPath, table: name)
        return (code, handle, error)
    }

    func openCursor(_ table: LMDBTable) throws(StoreError) -> OpaquePointer {
        checkTable(table)
        var cursor: OpaquePointer?
        let code = mdb_cursor_open(pointer, table.handle, &cursor)
        guard code == 0, let cursor else {
            throw StoreError(lmdbCode: code, operation: "cursor open", path: dataPath, table: table.name)
        }
        return cursor
    }
}

extension MDB_val {
    /// A value that points at `buffer` (LMDB only reads through it for keys and put values).
    init(_ buffer: UnsafeRawBufferPointer) {
        self.init(mv_size: buffer.count, mv_data: UnsafeMutableRawPointer(mutating: buffer.baseAddress))
    }

    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mv_data, count: mv_size)
    }
}

/// Runs `body` over the bytes of `bytes` without copying when they are contiguous (arrays,
/// slices, `Data`, buffer pointers), else over a copy.
@inline(__always)
func withContiguousBytes<Bytes: Collection<UInt8>, Result, Failure: Error>(
    _ bytes: Bytes, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
) throws(Failure) -> Result {
    // withContiguousStorageIfAvailable rethrows untyped; carry the typed error out in a Result.
    let outcome = bytes.withContiguousStorageIfAvailable { buffer in
        Swift.Result { () throws(Failure) -> Result in try body(UnsafeRawBufferPointer(buffer)) }
    }
    if let outcome { return try outcome.get() }
    return try Array(bytes).withUnsafeBytes { buffer in
        Swift.Result { () throws(Failure) -> Result in try body(buffer) }
    }.get()
}
