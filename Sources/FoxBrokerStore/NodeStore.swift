import FoxBrokerCore
import FoxStore
import NIOCore

/// What the durable orderer needs of a store: one transaction per batch, and log trimming.
public protocol OrderedLogStore: AnyObject, Sendable {
    /// Writes the batch's records (and the checkpoint's rows, if any) in one transaction, synced
    /// when the store syncs. `StoreError.full` when the disk or the map has no room.
    func write(records: [(index: UInt64, value: ByteBuffer)], checkpoint: StateCheckpoint?) throws(StoreError)
    /// Deletes log records below `index`, at most `limit`.
    func trimLog(below index: UInt64, limit: Int) throws(StoreError) -> Int
    /// Deletes log records below `index` whose time is before `cutoffMillis`, at most `limit`.
    func trimLog(below index: UInt64, olderThanMillis cutoffMillis: UInt64, limit: Int) throws(StoreError) -> Int
    /// The file to name in messages.
    var dataFile: String { get }
    /// How long the last write's commit (where the syncs happen) took; nil when unknown.
    var lastCommitNanoseconds: UInt64? { get }
}

extension OrderedLogStore {
    public var lastCommitNanoseconds: UInt64? { nil }
}

/// A node's LMDB environment and what lives in it:
///
/// | table | key | value |
/// |---|---|---|
/// | `log` | index (u64, big-endian) | `LogRecord`: time, event, chain hash, CRC |
/// | `sessions`, `retained`, `cursors` | see `StateRowFormat` | rows of the last checkpoint |
/// | `meta` | name | `format`, `incarnation`, `state` (applied index, clock, limits), `logBase`, `restored` |
///
/// The rows and the `state` meta row are written in the same transaction as the log records up
/// to the index they reflect, so the rows never run ahead of or behind the log: recovery loads
/// them and replays the records after `state.appliedIndex`. The consensus storage of a cluster
/// goes into the same environment, so that a commit record and the state it produces share a
/// transaction.
public final class NodeStore: OrderedLogStore, @unchecked Sendable {
    /// The layout this build writes and reads.
    public static let formatVersion: UInt32 = 1

    public let directory: String
    public let environment: LMDBEnvironment
    let log: LMDBTable
    let sessions: LMDBTable
    let retained: LMDBTable
    let cursors: LMDBTable
    let meta: LMDBTable
    /// The consensus tables of a cluster node (section 9 of the consensus design): blocks by
    /// ref, commit records by index, and the core's meta and snapshot. Empty on a single node.
    let consensusBlocks: LMDBTable
    let consensusCommits: LMDBTable
    let consensusState: LMDBTable
    /// `DATA/node.lock`, held while the store is open for writing; nil when read-only.
    private let lock: NodeStoreLock?

    enum MetaKey {
        static let format = Array("format".utf8)
        static let incarnation = Array("incarnation".utf8)
        static let state = Array("state".utf8)
        static let logBase = Array("logBase".utf8)
        static let restored = Array("restored".utf8)
    }

    public var dataFile: String { directory + "/data.mdb" }

    public var lastCommitNanoseconds: UInt64? { environment.lastCommitNanoseconds }

    /// Opens (or, unless read-only, creates) the store in `directory`. A newer format or a
    /// directory that holds something else is refused with a message naming it.
    public init(directory: String, options: LMDBOptions) throws(NodeStoreError) {
        self.directory = directory
        lock = options.readOnly ? nil : try NodeStoreLock(directory: directory)
        do {
            environment = try LMDBEnvironment(directory: directory, options: options)
            log = try environment.openTable("log")
            sessions = try environment.openTable("sessions")
            retained = try environment.openTable("retained")
            cursors = try environment.openTable("cursors")
            meta = try environment.openTable("meta")
            consensusBlocks = try environment.openTable("consensus_blocks")
            consensusCommits = try environment.openTable("consensus_commits")
            consensusState = try environment.openTable("consensus_state")
        } catch {
            throw .store(error)
        }
        try checkFormat(writable: !options.readOnly)
    }

    /// Closes the environment and releases the directory lock (both also happen when the store
    /// goes away). Using the store afterwards is a programming error.
    public func close() {
        environment.close()
        lock?.release()
    }

    private func checkFormat(writable: Bool) throws(NodeStoreError) {
        let found: [UInt8]?
        do {
            found = try environment.read { transaction in try transaction.get(meta, key: MetaKey.format) }
        } catch {
            throw storeError(error, "read")
        }
        if let found {
            guard found.count == 4 else {
                throw .corrupt(file: dataFile, table: "meta", keys: "format", detail: "\(found.count) bytes, not 4")
            }
            let version = found.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard version <= Self.formatVersion else {
                throw .formatTooNew(file: dataFile, found: Int(version), supported: Int(Self.formatVersion))
            }
            guard version == Self.formatVersion else {
                throw .corrupt(file: dataFile, table: "meta", keys: "format", detail: "unknown format \(version)")
            }
            return
        }
        guard writable else {
            throw .notAStore(file: dataFile, detail: "no format marker: not a foxmq store, or never written")
        }
        do {
            try environment.write { transaction in
                guard try transaction.first(log) == nil, try transaction.get(meta, key: MetaKey.state) == nil else {
                    throw NodeStoreError.corrupt(
                        file: dataFile, table: "meta", keys: "format",
                        detail: "the format marker is missing but the store holds data")
                }
                try transaction.put(meta, key: MetaKey.format, value: Self.bigEndian(Self.formatVersion))
            }
        } catch let error as NodeStoreError {
            throw error
        } catch {
            throw storeError(error, "write")
        }
    }

    /// An error of the environment as this store's error; anything else (a thrown body) as an
    /// I/O error of the operation, naming the file.
    func storeError(_ error: any Error, _ operation: String) -> NodeStoreError {
        if let error = error as? NodeStoreError { return error }
        return .store(error as? StoreError ?? .io(operation: operation, path: dataFile, code: 0, message: "\(error)"))
    }

    public static func bigEndian<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    public static func integer<Value: FixedWidthInteger>(_ bytes: [UInt8], as: Value.Type) -> Value? {
        guard bytes.count == MemoryLayout<Value>.size else { return nil }
        return bytes.reduce(Value(0)) { $0 << 8 | Value($1) }
    }

    // MARK: Incarnation

    /// Bumps the durable incarnation counter and returns the new value: connection identifiers
    /// of this run are never those of an earlier one.
    /// `atLeast` lifts it (a cluster node passes the clock's seconds, so that a wiped store
    /// never reuses an incarnation its earlier life used).
    public func nextIncarnation(atLeast floor: UInt32 = 0) throws(NodeStoreError) -> UInt32 {
        do {
            return try environment.write { transaction in
                let current = try transaction.get(meta, key: MetaKey.incarnation).flatMap {
                    Self.integer($0, as: UInt32.self)
                }
                let next = max((current ?? 0) &+ 1, floor)
                try transaction.put(meta, key: MetaKey.incarnation, value: Self.bigEndian(next))
                return next
            }
        } catch {
            throw storeError(error, "write")
        }
    }

    /// Whether the store was made by `snapshot restore` (a cluster node then joins in amnesia
    /// mode); cleared by the caller once it no longer matters.
    public func isRestored() throws(NodeStoreError) -> Bool {
        do {
            return try environment.read { transaction in try transaction.get(meta, key: MetaKey.restored) != nil }
        } catch {
            throw storeError(error, "read")
        }
    }

    public func markRestored(_ restored: Bool) throws(NodeStoreError) {
        do {
            try environment.write { transaction in
                if restored {
                    try transaction.put(meta, key: MetaKey.restored, value: [1])
                } else {
                    try transaction.delete(meta, key: MetaKey.restored)
                }
            }
        } catch {
            throw storeError(error, "write")
        }
    }

    /// The ordered log's records and the bytes of their pages, for the metrics.
    public func logStatistics() throws(NodeStoreError) -> LMDBTableStatistics {
        do {
            return try environment.read { transaction in try transaction.statistics(log) }
        } catch {
            throw storeError(error, "read")
        }
    }

    // MARK: Writing

    /// Writes one batch in one transaction (one sync): the log records, and the checkpoint's
    /// rows and meta row when the batch carries one. Re-runnable: a full map reruns it.
    public func write(records: [(index: UInt64, value: ByteBuffer)], checkpoint: StateCheckpoint?) throws(StoreError) {
        try write { transaction throws in
            try self.put(records: records, checkpoint: checkpoint, &transaction)
        }
    }

    /// One write transaction, errors as `StoreError` naming the data file.
    func write(_ body: (inout LMDBWriteTransaction) throws -> Void) throws(StoreError) {
        do {
            try environment.write { transaction in try body(&transaction) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .io(operation: "write", path: dataFile, code: 0, message: "\(error)")
        }
    }

    /// Puts log records and a checkpoint's rows and meta row.
    func put(
        records: [(index: UInt64, value: ByteBuffer)], checkpoint: StateCheckpoint?,
        _ transaction: inout LMDBWriteTransaction
    ) throws {
        for record in records {
            try transaction.put(
                log, key: LogRecord.key(record.index), value: record.value.readableBytesView, append: true)
        }
        if let checkpoint {
            for row in checkpoint.sessions { try Self.put(row, in: sessions, &transaction) }
            for row in checkpoint.retained { try Self.put(row, in: retained, &transaction) }
            try transaction.deleteAll(cursors)
            for row in checkpoint.cursors { try Self.put(row, in: cursors, &transaction) }
            try transaction.put(meta, key: MetaKey.state, value: checkpoint.meta.readableBytesView)
        }
    }

    private static func put(_ row: StateRow, in table: LMDBTable, _ transaction: inout LMDBWriteTransaction) throws {
        if let value = row.value {
            try transaction.put(table, key: row.key, value: value.readableBytesView)
        } else {
            try transaction.delete(table, key: row.key)
        }
    }

    /// Deletes log records below `index` (never past what recovery needs: the caller passes at
    /// most the last checkpoint's applied index + 1), at most `limit` per call, and records the
    /// new base of the chain. Returns how many it deleted.
    public func trimLog(below index: UInt64, olderThanMillis cutoffMillis: UInt64, limit: Int) throws(StoreError)
        -> Int
    {
        // The records below the cutoff time, counted from the first in a short read; then the
        // same bounded trim by index.
        let bound: UInt64
        do {
            bound = try environment.read { transaction in
                var bound: UInt64 = 0
                var counted = 0
                try transaction.forEach(log) { key, value in
                    guard let recordIndex = LogRecord.index(ofKey: key), recordIndex < index, counted < limit,
                        value.count >= 9
                    else { return false }
                    // The time follows the format byte (see LogRecord).
                    let timeMillis = value[1..<9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                    guard timeMillis < cutoffMillis else { return false }
                    bound = recordIndex + 1
                    counted += 1
                    return true
                }
                return bound
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .corrupt(path: dataFile, table: "log", detail: "\(error)")
        }
        guard bound > 0 else { return 0 }
        return try trimLog(below: bound, limit: limit)
    }

    public func trimLog(below index: UInt64, limit: Int) throws(StoreError) -> Int {
        do {
            // May use the map's reserve for deletes: trimming is what frees space when full.
            return try environment.write(freeingSpace: true) { transaction in
                guard let first = try transaction.first(log), let firstIndex = LogRecord.index(ofKey: first.key),
                    firstIndex < index
                else { return 0 }
                let bound = min(index, firstIndex + UInt64(limit))
                // The chain hash of the record just below the new first one, kept as the base.
                guard let below = try transaction.get(log, key: LogRecord.key(bound - 1)) else { return 0 }
                let record = try LogRecord.decode(
                    key: LogRecord.key(bound - 1), value: ByteBuffer(bytes: below), previousChain: nil)
                let deleted = try transaction.deleteRange(log, below: LogRecord.key(bound), limit: limit)
                try transaction.put(meta, key: MetaKey.logBase, value: Self.bigEndian(bound) + record.chain)
                return deleted
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .corrupt(path: dataFile, table: "log", detail: "\(error)")
        }
    }
}

/// Why a node store cannot be opened, recovered or verified. Every message names the file,
/// and for damaged data the table and the keys.
public enum NodeStoreError: Error, CustomStringConvertible {
    case store(StoreError)
    case notAStore(file: String, detail: String)
    case formatTooNew(file: String, found: Int, supported: Int)
    case corrupt(file: String, table: String, keys: String, detail: String)
    /// Another writer holds the directory's `node.lock` (`NodeStoreLock`); `file` is the
    /// directory, `detail` names the holder.
    case inUse(file: String, detail: String)

    public var description: String {
        switch self {
        case .store(let error):
            return "\(error)"
        case .notAStore(let file, let detail):
            return "\(file): not a foxmq store: \(detail)"
        case .formatTooNew(let file, let found, let supported):
            return
                "\(file): store format \(found) was written by a newer foxmq (this one reads format \(supported)); upgrade foxmq or restore a snapshot of format \(supported)"
        case .corrupt(let file, let table, let keys, let detail):
            return
                "\(file): damaged data in table \(table), \(keys): \(detail). Nothing was started; inspect it with `foxdump verify`, restore a snapshot, or move the data directory away to start empty"
        case .inUse(let file, let detail):
            return "\(file): \(detail)"
        }
    }
}
