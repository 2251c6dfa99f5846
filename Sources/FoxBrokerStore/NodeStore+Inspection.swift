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
            for (name, table) in [
                ("log", log), ("sessions", sessions), ("retained", retained), ("cursors", cursors), ("meta", meta),
            ] {
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

    /// The state as it is now: the rows of the last checkpoint with the log after it replayed
    /// (what recovery does; read only), as rows in key order per table, and the index reached.
    /// Limits recorded in the checkpoint apply; before the first checkpoint, `defaultLimits`.
    public func currentRows(defaultLimits: BrokerLimits = BrokerLimits(), progress: (String) -> Void = { _ in })
        throws(NodeStoreError) -> (index: UInt64, checkpointIndex: UInt64, rows: [StateTable: [StoredRow]])
    {
        let recovered = try recover(defaultLimits: defaultLimits, progress: progress)
        let all = recovered.state.allRows()
        func stored(_ rows: [StateRow]) -> [StoredRow] {
            rows.compactMap { row in row.value.map { StoredRow(key: row.key, value: $0) } }
        }
        return (
            recovered.lastIndex, recovered.checkpointIndex,
            [.sessions: stored(all.sessions), .retained: stored(all.retained), .cursors: stored(all.cursors)]
        )
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

// MARK: - Verify

extension NodeStore {
    /// Checks everything the store holds, without changing it, and reports each problem with its
    /// table and keys instead of stopping at the first:
    ///
    /// - the meta rows decode (format, incarnation, checkpoint state, log base);
    /// - every row of sessions, retained and cursors decodes, the rows load into a state, and
    ///   each re-encodes to the bytes stored (the encoding is canonical);
    /// - every log record decodes (CRC-32C, format), the indices are contiguous from the log base,
    ///   the hash chain holds from the base's chain (or genesis), and every event decodes;
    /// - the checkpoint's applied index lies in the log or right below its first record;
    /// - recovery works: the records after the checkpoint replay on the loaded rows, and, while
    ///   the log still starts at index 1, replaying it up to the checkpoint on an empty state
    ///   gives the same state digest as the rows.
    ///
    /// Reads in chunks, each in its own short read transaction: safe while the node runs. The
    /// rows are read in pages whose transactions all see the same checkpoint (the meta `state`
    /// row is the witness; a page that sees a newer one starts the rows over, and after three
    /// tries they are read in one transaction). The log is read up to the last record present
    /// when its scan starts; records the node trims meanwhile are noted, not reported.
    public func verify(progress: (String) -> Void = { _ in }) -> VerifyReport {
        var report = VerifyReport(dataFile: dataFile)
        verifyMeta(&report)
        let loaded = verifyRows(&report, progress: progress)
        verifyLog(&report, loaded: loaded, progress: progress)
        return report
    }

    private func verifyMeta(_ report: inout VerifyReport) {
        var entries: [(key: [UInt8], value: [UInt8])] = []
        do {
            try environment.read { transaction in
                try transaction.forEach(self.meta) { key, value in
                    entries.append((Array(key), Array(value)))
                    return true
                }
            }
        } catch {
            report.add("meta", "all keys", "\(readError(error))")
            return
        }
        report.metaRowCount = entries.count
        var sawFormat = false
        for (key, value) in entries {
            switch key {
            case MetaKey.format:
                sawFormat = true
                if Self.integer(value, as: UInt32.self) != Self.formatVersion {
                    report.add("meta", "key format", "\(hex(value)) is not format \(Self.formatVersion)")
                }
            case MetaKey.incarnation:
                if value.count != 4 { report.add("meta", "key incarnation", "\(value.count) bytes, not 4") }
            case MetaKey.state:
                do {
                    _ = try StateMeta.decode(ByteBuffer(bytes: value))
                } catch {
                    report.add("meta", "key state", "\(error)")
                }
            case MetaKey.logBase:
                if value.count != 40 {
                    report.add("meta", "key logBase", "\(value.count) bytes, not 40")
                } else if Self.integer(Array(value[0..<8]), as: UInt64.self) == 0 {
                    report.add("meta", "key logBase", "first index 0 (indices start at 1)")
                }
            case MetaKey.restored:
                break
            default:
                report.notes.append("meta holds a key this foxdump does not know: \(printableKey(key))")
            }
        }
        if !sawFormat { report.add("meta", "key format", "the format marker is missing") }
    }

    /// The rows of one checkpoint, decoded and loaded; nil pieces when they could not be.
    struct LoadedRows {
        var meta: StateMeta?
        var state: BrokerState?
        var digest: String?
    }

    private func verifyRows(_ report: inout VerifyReport, progress: (String) -> Void) -> LoadedRows {
        var tables: [StateTable: [StoredRow]] = [:]
        var damagedTables: Set<StateTable> = []
        var witness: [UInt8]?
        var consistent = false
        let pageSize = 4096
        attempts: for _ in 0..<3 {
            tables = [:]
            damagedTables = []
            witness = nil
            var first = true
            for table in StateTable.allCases {
                var rows: [StoredRow] = []
                var start: [UInt8]?
                pages: while true {
                    let limit = pageSize + (start == nil ? 0 : 1)
                    var page: [StoredRow] = []
                    var stateBytes: [UInt8]?
                    do {
                        try environment.read { transaction in
                            stateBytes = try transaction.get(self.meta, key: MetaKey.state)
                            try transaction.forEach(self.table(table), from: start) { key, value in
                                page.append(StoredRow(key: Array(key), value: ByteBuffer(bytes: value)))
                                return page.count < limit
                            }
                        }
                    } catch {
                        let from = start.map { "keys from \(printableKey($0))" } ?? "all keys"
                        report.add(table.rawValue, from, "\(readError(error))")
                        damagedTables.insert(table)
                        break pages
                    }
                    if first {
                        witness = stateBytes
                        first = false
                    } else if stateBytes != witness {
                        continue attempts
                    }
                    if let start, page.first?.key == start { page.removeFirst() }
                    guard let last = page.last else { break pages }
                    rows.append(contentsOf: page)
                    start = last.key
                }
                tables[table] = rows
            }
            consistent = true
            break
        }
        if !consistent {
            // Checkpoints kept landing between the pages: one transaction for all of it.
            report.notes.append(
                "the node wrote checkpoints while the rows were read in pages: read them in one transaction")
            tables = [:]
            do {
                try environment.read { transaction in
                    witness = try transaction.get(self.meta, key: MetaKey.state)
                    for table in StateTable.allCases {
                        var rows: [StoredRow] = []
                        try transaction.forEach(self.table(table)) { key, value in
                            rows.append(StoredRow(key: Array(key), value: ByteBuffer(bytes: value)))
                            return true
                        }
                        tables[table] = rows
                    }
                }
            } catch {
                report.add("sessions, retained, cursors", "all keys", "\(readError(error))")
                return LoadedRows()
            }
        }
        let sessionRows = tables[.sessions] ?? []
        let retainedRows = tables[.retained] ?? []
        let cursorRows = tables[.cursors] ?? []
        report.sessionRowCount = sessionRows.count
        report.retainedRowCount = retainedRows.count
        report.cursorRowCount = cursorRows.count
        progress(
            "read \(sessionRows.count) session, \(retainedRows.count) retained and \(cursorRows.count) cursor rows")

        var rowsDecode = damagedTables.isEmpty
        // Each row decoded as recovery would; a failure is named by table and key.
        let decoders: [(String, [StoredRow], (StoredRow) throws -> Void)] = [
            ("sessions", sessionRows, { _ = try SessionSummary.decode(key: $0.key, value: $0.value) }),
            ("retained", retainedRows, { _ = try RetainedRow.decode(key: $0.key, value: $0.value) }),
            ("cursors", cursorRows, { _ = try CursorSummary.decode(key: $0.key, value: $0.value) }),
        ]
        for (table, rows, decode) in decoders {
            for row in rows {
                do {
                    try decode(row)
                } catch {
                    report.add(table, "key \(printableKey(row.key))", "\(error)")
                    rowsDecode = false
                }
            }
        }

        var loaded = LoadedRows()
        if let witness {
            do {
                loaded.meta = try StateMeta.decode(ByteBuffer(bytes: witness))
            } catch {
                if !report.problems.contains(where: { $0.table == "meta" && $0.keys == "key state" }) {
                    report.add("meta", "key state", "\(error)")
                }
                return loaded
            }
        } else {
            if !(sessionRows.isEmpty && retainedRows.isEmpty && cursorRows.isEmpty) {
                report.add(
                    "sessions, retained, cursors", "all keys",
                    "rows without a checkpoint: the meta state row is missing")
                return loaded
            }
            // No checkpoint yet: recovery replays the whole log on an empty state.
            loaded.meta = StateMeta(appliedIndex: 0, nowMillis: 0, limits: BrokerLimits())
        }
        guard rowsDecode, let meta = loaded.meta else { return loaded }
        report.checkpointIndex = meta.appliedIndex
        report.checkpointTimeMillis = witness == nil ? nil : meta.nowMillis
        func pairs(_ rows: [StoredRow]) -> [(key: [UInt8], value: ByteBuffer)] { rows.map { ($0.key, $0.value) } }
        let state: BrokerState
        do {
            state = try BrokerState.load(
                meta: meta, sessions: pairs(sessionRows), retained: pairs(retainedRows), cursors: pairs(cursorRows))
        } catch {
            report.add(error.table, "key \(error.key.debugDescription)", "does not load: \(error.error)")
            return loaded
        }
        // The encoding is canonical: the loaded state writes every row back byte for byte.
        let rewritten = state.allRows()
        for (table, stored, written) in [
            ("sessions", sessionRows, rewritten.sessions), ("retained", retainedRows, rewritten.retained),
            ("cursors", cursorRows, rewritten.cursors),
        ] {
            var storedByKey: [[UInt8]: ByteBuffer] = [:]
            for row in stored { storedByKey[row.key] = row.value }
            var writtenKeys: Set<[UInt8]> = []
            for row in written {
                writtenKeys.insert(row.key)
                if storedByKey[row.key] != row.value {
                    report.add(
                        table, "key \(printableKey(row.key))",
                        storedByKey[row.key] == nil
                            ? "the loaded state holds it but no row is stored"
                            : "the stored row differs from its re-encoding after load")
                }
            }
            for row in stored where !writtenKeys.contains(row.key) {
                report.add(table, "key \(printableKey(row.key))", "stored, but the loaded state does not keep it")
            }
        }
        loaded.state = state
        loaded.digest = state.stateDigestHex(appliedIndex: meta.appliedIndex)
        return loaded
    }

    private func verifyLog(_ report: inout VerifyReport, loaded: LoadedRows, progress: (String) -> Void) {
        // Where the log starts and ends, as the scan begins.
        var base = LogBase(firstIndex: 1, previousChain: LogRecord.genesisChain)
        var trimmed = false
        var endIndex: UInt64?
        do {
            try environment.read { transaction in
                if try transaction.get(self.meta, key: MetaKey.logBase) != nil {
                    trimmed = true
                    if let found = try? self.logBase(transaction) {
                        base = LogBase(firstIndex: found.firstIndex, previousChain: found.previousChain)
                    }
                }
                endIndex = try transaction.last(log).flatMap { LogRecord.index(ofKey: $0.key) }
            }
        } catch {
            report.add("log", "all keys", "\(readError(error))")
            return
        }
        report.logBase = trimmed ? base : nil
        let checkpoint = report.checkpointIndex

        // The replays: the rows' state on with the records after the checkpoint (what recovery
        // does), and, while the log starts at 1, an empty state up to the checkpoint.
        var tail = loaded.state
        var tailStop: String?
        if tail == nil { tailStop = "the rows do not load" }
        var fromGenesis: BrokerState?
        var genesisStop: String?
        var configureIndex: UInt64?
        if let loadedMeta = loaded.meta, loaded.digest != nil, checkpoint > 0 {
            if trimmed || base.firstIndex != 1 {
                genesisStop = "the log was trimmed below index \(base.firstIndex)"
            } else {
                fromGenesis = BrokerState(limits: loadedMeta.limits)
            }
        } else if checkpoint == 0 && loaded.state != nil {
            genesisStop = "no checkpoint yet: recovery replays the whole log"
        } else {
            genesisStop = "the rows do not load"
        }
        if checkpoint + 1 < base.firstIndex {
            report.add(
                "log", "indices \(checkpoint + 1)...\(base.firstIndex - 1)",
                "records the checkpoint at \(checkpoint) needs were trimmed")
            tail = nil
            tailStop = "records after the checkpoint were trimmed"
        }
        func stopTail(_ index: UInt64, _ why: String) {
            if tail != nil {
                tail = nil
                tailStop = "\(why) at index \(index)"
            }
        }
        func stopGenesis(_ why: String) {
            if fromGenesis != nil {
                fromGenesis = nil
                genesisStop = why
            }
        }
        /// A record at `index` cannot be used: what that means for the replays.
        func unusable(_ index: UInt64, _ why: String) {
            if index < checkpoint {
                stopGenesis("\(why) at index \(index), before the checkpoint")
            } else if index == checkpoint {
                stopGenesis("\(why) at index \(index), the checkpoint's")
                // Recovery reads the checkpoint's record for the chain it continues.
                if checkpoint >= base.firstIndex { stopTail(index, why) }
            } else {
                stopTail(index, why)
            }
        }

        var expected = base.firstIndex
        var chain: [UInt8]? = base.previousChain
        var startKey: [UInt8]?
        var lastIndex: UInt64?
        var firstIndex: UInt64?
        var sawCheckpointRecord = false
        var actions: [BrokerAction] = []
        var lastProgress = 0
        let chunk = 4096
        scan: while true {
            var entries: [(key: [UInt8], value: ByteBuffer)] = []
            var currentBase: LogBase?
            do {
                try environment.read { transaction in
                    if startKey != nil, try transaction.get(self.meta, key: MetaKey.logBase) != nil,
                        let found = try? self.logBase(transaction)
                    {
                        currentBase = LogBase(firstIndex: found.firstIndex, previousChain: found.previousChain)
                    }
                    try transaction.forEach(log, from: startKey) { key, value in
                        entries.append((Array(key), ByteBuffer(bytes: value)))
                        return entries.count < chunk
                    }
                }
            } catch {
                let from = startKey.flatMap { LogRecord.index(ofKey: $0) }.map { "indices from \($0)" } ?? "all keys"
                report.add("log", from, "\(readError(error))")
                unusable(startKey.flatMap { LogRecord.index(ofKey: $0) } ?? expected, "unreadable log")
                break scan
            }
            if let currentBase, currentBase.firstIndex > expected {
                report.notes.append(
                    "the node trimmed the log below index \(currentBase.firstIndex) while it was read: records \(expected)...\(currentBase.firstIndex - 1) were not checked"
                )
                if expected <= checkpoint { stopGenesis("the node trimmed the log while it was read") }
                if currentBase.firstIndex > checkpoint + 1 && tail != nil {
                    tail = nil
                    tailStop = "the node trimmed records after the checkpoint while they were read"
                }
                expected = currentBase.firstIndex
                chain = currentBase.previousChain
            }
            if let start = startKey, entries.first?.key == start { entries.removeFirst() }
            guard let lastKey = entries.last?.key else { break scan }
            startKey = lastKey
            for (key, value) in entries {
                guard let index = LogRecord.index(ofKey: key) else {
                    report.add("log", "key \(hex(key))", "the key is \(key.count) bytes, not an 8-byte index")
                    continue
                }
                if let endIndex, index > endIndex { break scan }
                if index < expected {
                    if index < base.firstIndex && lastIndex == nil {
                        report.add(
                            "log", "index \(index)", "record below the log base \(base.firstIndex) (meta logBase)")
                    } else {
                        report.add(
                            "log", "index \(index)",
                            "key out of order after index \(expected - 1): the page holding it is damaged")
                    }
                    continue
                }
                if firstIndex == nil { firstIndex = index }
                lastIndex = index
                if index > expected {
                    report.add("log", "indices \(expected)...\(index - 1)", "records missing from the log")
                    if expected <= checkpoint {
                        stopGenesis("records missing before the checkpoint")
                        if checkpoint < index && checkpoint >= base.firstIndex {
                            stopTail(checkpoint, "the checkpoint's record is missing")
                        }
                    }
                    if index - 1 > checkpoint { stopTail(max(expected, checkpoint + 1), "records missing") }
                    chain = nil
                    expected = index
                }
                expected = index + 1
                let record: LogRecord
                do {
                    record = try LogRecord.decode(key: key, value: value, previousChain: chain)
                } catch {
                    if chain != nil, let unchained = try? LogRecord.decode(key: key, value: value, previousChain: nil) {
                        report.add(
                            "log", "index \(index)", "hash chain broken: the record does not follow the one before it")
                        unusable(index, "hash chain broken")
                        record = unchained
                    } else {
                        report.add("log", "index \(index)", "\(error)")
                        unusable(index, "damaged record")
                        chain = nil
                        continue
                    }
                }
                chain = record.chain
                let event: BrokerEvent
                do {
                    event = try record.decodeEvent()
                } catch {
                    report.add("log", "index \(index)", "\(error)")
                    unusable(index, "undecodable event")
                    continue
                }
                report.logRecordCount += 1
                if index <= checkpoint {
                    if index == checkpoint { sawCheckpointRecord = true }
                    if let state = fromGenesis {
                        if case .configure = event, index > 1, configureIndex == nil { configureIndex = index }
                        actions.removeAll(keepingCapacity: true)
                        state.apply(event, atMillis: record.timeMillis, into: &actions)
                        if index == checkpoint { compareWithRows(&report, state, loaded, configureIndex) }
                    }
                } else if let state = tail {
                    actions.removeAll(keepingCapacity: true)
                    state.apply(event, atMillis: record.timeMillis, into: &actions)
                    report.replayedCount += 1
                    report.recoveredIndex = index
                }
            }
            if report.logRecordCount - lastProgress >= 100_000 {
                lastProgress = report.logRecordCount
                progress("checked \(report.logRecordCount) log records (index \(lastIndex ?? 0))")
            }
        }
        report.firstLogIndex = firstIndex
        report.lastLogIndex = lastIndex

        // The checkpoint lies in the log, or right below its first record (trimmed up to it).
        if checkpoint > 0 && checkpoint + 1 != base.firstIndex && !sawCheckpointRecord {
            if let lastIndex, checkpoint > lastIndex {
                report.add(
                    "log", "indices \(lastIndex + 1)...\(checkpoint)",
                    "the log ends at \(lastIndex), before the checkpoint's applied index \(checkpoint): the rows are ahead of the log"
                )
            } else if lastIndex == nil {
                report.add(
                    "log", "index \(checkpoint)",
                    "the log is empty but the checkpoint is at \(checkpoint) and the log base at \(base.firstIndex)")
            }
            stopTail(checkpoint, "the checkpoint's record is not in the log")
        }
        if case .skipped("not run") = report.rowsCheck {
            report.rowsCheck = .skipped(genesisStop ?? "the log ended before the checkpoint")
        }
        if let tail {
            let index = report.recoveredIndex ?? checkpoint
            report.recoveredIndex = index
            report.recoveredDigest = tail.stateDigestHex(appliedIndex: index)
        } else {
            report.recoveredIndex = nil
            if let tailStop { report.notes.append("recovery would fail: \(tailStop)") }
        }
    }

    private func compareWithRows(
        _ report: inout VerifyReport, _ replayed: BrokerState, _ loaded: LoadedRows, _ configureIndex: UInt64?
    ) {
        guard let rowsDigest = loaded.digest else { return }
        let checkpoint = report.checkpointIndex
        let logDigest = replayed.stateDigestHex(appliedIndex: checkpoint)
        if logDigest == rowsDigest {
            report.rowsCheck = .matchesLog(digest: rowsDigest)
        } else if let configureIndex {
            report.rowsCheck = .skipped(
                "inconclusive: the limits changed at index \(configureIndex) and the ones before are not recorded")
        } else {
            report.rowsCheck = .skipped("the rows differ from the log")
            report.add(
                "sessions, retained, cursors", "checkpoint at index \(checkpoint)",
                "the rows' state (digest \(rowsDigest.prefix(16))…) is not the one the log replays to from index 1 (\(logDigest.prefix(16))…)"
            )
        }
    }
}

func printableKey(_ key: [UInt8]) -> String {
    if let text = String(validating: key, as: UTF8.self),
        text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
    {
        return text.debugDescription
    }
    return "0x" + hex(key)
}
