import FoxBrokerCore
import FoxStore
import NIOCore

// Read API for foxdump: what the store holds, page by page, and a full verification. Every read
// runs in its own short read transaction (never one over the whole log), so it is safe on a
// read-only environment while the node writes.

/// One row of a state table, as stored.
public struct StoredRow: Sendable {
    public var key: [UInt8]
    public var value: ByteBuffer
}

/// The state tables (rows of the last checkpoint).
public enum StateTable: String, CaseIterable, Sendable {
    case sessions
    case retained
    case cursors
}

/// One log entry as read: the key, its index (nil when the key is not 8 bytes) and the record
/// or why it does not decode (CRC, format; the hash chain is checked by `verify` only).
public struct LogEntry: Sendable {
    public var key: [UInt8]
    public var index: UInt64?
    public var record: Result<LogRecord, RecordDecodeError>
}

/// The base of the log after trims: the first index kept and the chain hash before it.
public struct LogBase: Sendable, Equatable {
    public var firstIndex: UInt64
    public var previousChain: [UInt8]
}

/// What `NodeStore.summary()` reports: the environment and the meta rows.
public struct StoreSummary: Sendable {
    public struct TableCount: Sendable {
        public var table: String
        public var entries: Int
    }

    public var directory: String
    public var dataFile: String
    public var formatVersion: UInt32
    public var incarnation: UInt32?
    public var restored: Bool
    /// The meta row of the last checkpoint; nil before the first one (or when it does not decode:
    /// see `checkpointError`).
    public var checkpoint: StateMeta?
    public var checkpointError: String?
    /// Nil while nothing was trimmed (the log starts at index 1 after the genesis chain).
    public var logBase: LogBase?
    public var logBaseError: String?
    public var firstLogIndex: UInt64?
    public var lastLogIndex: UInt64?
    public var tables: [TableCount]
    public var environment: LMDBInfo
    public var freePages: Int?
    public var staleReadersCleared: Int
}

/// One problem `verify` found: the table, the keys concerned and what is wrong.
public struct VerifyProblem: Sendable, CustomStringConvertible {
    public var table: String
    public var keys: String
    public var detail: String

    public init(table: String, keys: String, detail: String) {
        self.table = table
        self.keys = keys
        self.detail = detail
    }

    public var description: String { "table \(table), \(keys): \(detail)" }
}

/// What `NodeStore.verify` checked and found.
public struct VerifyReport: Sendable {
    /// How the rows were compared with the log.
    public enum RowsCheck: Sendable, Equatable {
        /// The log from index 1 to the checkpoint, replayed on an empty state, gives the rows'
        /// state digest.
        case matchesLog(digest: String)
        /// Not comparable (log trimmed, no checkpoint, damage elsewhere): why.
        case skipped(String)
    }

    public var dataFile: String
    /// Problems in key order per check; at most `problemCountMax`, the rest counted.
    public var problems: [VerifyProblem] = []
    public var problemsNotListed = 0
    /// Remarks that are not damage (e.g. the node trimmed the log while it was read).
    public var notes: [String] = []
    public var checkpointIndex: UInt64 = 0
    public var checkpointTimeMillis: UInt64?
    public var logBase: LogBase?
    public var logRecordCount = 0
    public var firstLogIndex: UInt64?
    public var lastLogIndex: UInt64?
    public var sessionRowCount = 0
    public var retainedRowCount = 0
    public var cursorRowCount = 0
    public var metaRowCount = 0
    public var rowsCheck: RowsCheck = .skipped("not run")
    /// The records replayed on the loaded rows (recovery's replay), and the digest of the state
    /// recovery would reach; nil when recovery would fail.
    public var replayedCount = 0
    public var recoveredIndex: UInt64?
    public var recoveredDigest: String?

    public static let problemCountMax = 200

    public var isOK: Bool { problems.isEmpty && problemsNotListed == 0 }

    mutating func add(_ table: String, _ keys: String, _ detail: String) {
        if problems.count < Self.problemCountMax {
            problems.append(VerifyProblem(table: table, keys: keys, detail: detail))
        } else {
            problemsNotListed += 1
        }
    }
}

extension NodeStore {
    /// LMDB's default largest key (`MDB_MAXKEYSIZE`): longer or empty keys cannot be stored, and
    /// a lookup with one is refused here instead of reaching LMDB.
    static let keySizeMaxBytes = 511

    func table(_ table: StateTable) -> LMDBTable {
        switch table {
        case .sessions: sessions
        case .retained: retained
        case .cursors: cursors
        }
    }

    func readError(_ error: any Error) -> NodeStoreError {
        if let error = error as? NodeStoreError { return error }
        if let error = error as? StoreError { return .store(error) }
        return .store(.io(operation: "read", path: dataFile, code: 0, message: "\(error)"))
    }

    func read<Result>(_ body: (borrowing LMDBReadTransaction) throws -> Result) throws(NodeStoreError) -> Result {
        do {
            return try environment.read(body)
        } catch {
            throw readError(error)
        }
    }

    // MARK: Summary

    /// The environment's figures and the meta rows; a meta row that does not decode is reported
    /// in the summary, not thrown.
    public func summary() throws(NodeStoreError) -> StoreSummary {
        let environmentInfo = environment.info
        let freePages = try? environment.freePages()
        return try read { transaction in
            let format = try transaction.get(meta, key: MetaKey.format).flatMap { Self.integer($0, as: UInt32.self) }
            let incarnation = try transaction.get(meta, key: MetaKey.incarnation).flatMap {
                Self.integer($0, as: UInt32.self)
            }
            var checkpoint: StateMeta?
            var checkpointError: String?
            if let bytes = try transaction.get(meta, key: MetaKey.state) {
                do {
                    checkpoint = try StateMeta.decode(ByteBuffer(bytes: bytes))
                } catch {
                    checkpointError = "\(error)"
                }
            }
            var logBase: LogBase?
            var logBaseError: String?
            if try transaction.get(meta, key: MetaKey.logBase) != nil {
                do {
                    let base = try self.logBase(transaction)
                    logBase = LogBase(firstIndex: base.firstIndex, previousChain: base.previousChain)
                } catch {
                    logBaseError = "\(error)"
                }
            }
            let first = try transaction.first(log).flatMap { LogRecord.index(ofKey: $0.key) }
            let last = try transaction.last(log).flatMap { LogRecord.index(ofKey: $0.key) }
            var tables: [StoreSummary.TableCount] = []
            for (name, table) in [("log", log), ("sessions", sessions), ("retained", retained), ("cursors", cursors), ("meta", meta)] {
                tables.append(StoreSummary.TableCount(table: name, entries: try transaction.count(table)))
            }
            return StoreSummary(
                directory: directory, dataFile: dataFile, formatVersion: format ?? 0, incarnation: incarnation,
                restored: try transaction.get(meta, key: MetaKey.restored) != nil, checkpoint: checkpoint,
                checkpointError: checkpointError, logBase: logBase, logBaseError: logBaseError, firstLogIndex: first,
                lastLogIndex: last, tables: tables, environment: environmentInfo, freePages: freePages,
                staleReadersCleared: environment.staleReadersCleared)
        }
    }

    // MARK: Log

    /// Up to `limit` log entries from index `from` on, in index order, in one short read
    /// transaction. Damaged records are returned as such (see `LogEntry`), not thrown.
    public func logEntries(from index: UInt64, limit: Int) throws(NodeStoreError) -> [LogEntry] {
        guard limit > 0 else { return [] }
        return try read { transaction in
            var entries: [LogEntry] = []
            try transaction.forEach(log, from: LogRecord.key(index)) { key, value in
                let keyBytes = Array(key)
                let record = Result { () throws(RecordDecodeError) -> LogRecord in
                    try LogRecord.decode(key: keyBytes, value: ByteBuffer(bytes: value), previousChain: nil)
                }
                entries.append(LogEntry(key: keyBytes, index: LogRecord.index(ofKey: keyBytes), record: record))
                return entries.count < limit
            }
            return entries
        }
    }

    /// Up to `limit` log records from index `from` on; the first one that does not decode is
    /// thrown as `.corrupt` with its index.
    public func logRecords(from index: UInt64, limit: Int) throws(NodeStoreError) -> [LogRecord] {
        var records: [LogRecord] = []
        for entry in try logEntries(from: index, limit: limit) {
            switch entry.record {
            case .success(let record): records.append(record)
            case .failure(let error):
                throw .corrupt(
                    file: dataFile, table: "log", keys: entry.index.map { "index \($0)" } ?? "key \(hex(entry.key))",
                    detail: "\(error)")
            }
        }
        return records
    }

    // MARK: Rows

    /// Up to `limit` rows of `table` in key order from the first key ≥ `startKey` (nil: the
    /// first key), in one short read transaction. Page on with the last key returned (skip it).
    public func rows(_ table: StateTable, from startKey: [UInt8]? = nil, limit: Int) throws(NodeStoreError)
        -> [StoredRow]
    {
        guard limit > 0 else { return [] }
        if let startKey, startKey.isEmpty || startKey.count > Self.keySizeMaxBytes { return [] }
        return try read { transaction in
            var rows: [StoredRow] = []
            try transaction.forEach(self.table(table), from: startKey) { key, value in
                rows.append(StoredRow(key: Array(key), value: ByteBuffer(bytes: value)))
                return rows.count < limit
            }
            return rows
        }
    }

    /// The row of `table` under `key`, or nil.
    public func row(_ table: StateTable, key: [UInt8]) throws(NodeStoreError) -> StoredRow? {
        guard !key.isEmpty, key.count <= Self.keySizeMaxBytes else { return nil }
        return try read { transaction in
            try transaction.get(self.table(table), key: key).map { StoredRow(key: key, value: ByteBuffer(bytes: $0)) }
        }
    }

    public func sessionRows(from startKey: [UInt8]? = nil, limit: Int) throws(NodeStoreError) -> [StoredRow] {
        try rows(.sessions, from: startKey, limit: limit)
    }

    public func retainedRows(from startKey: [UInt8]? = nil, limit: Int) throws(NodeStoreError) -> [StoredRow] {
        try rows(.retained, from: startKey, limit: limit)
    }

    /// Every row of `table`, page by page (a read transaction per page), in key order.
    public func forEachRow(
        _ table: StateTable, pageSize: Int = 1024, _ body: (StoredRow) throws -> Void
    ) throws {
        var start: [UInt8]?
        while true {
            var page = try rows(table, from: start, limit: pageSize + (start == nil ? 0 : 1))
            if let start, page.first?.key == start { page.removeFirst() }
            guard let last = page.last else { return }
            for row in page { try body(row) }
            start = last.key
        }
    }
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}
