import FoxBrokerCore
import FoxStore
import NIOCore

/// What recovery found: the state at the end of the log and where the log continues.
public struct RecoveredState {
    public var state: BrokerState
    /// The index of the last record (0 for an empty log); the next event gets `lastIndex + 1`.
    public var lastIndex: UInt64
    /// The chain hash of the last record, which the next record continues.
    public var lastChain: [UInt8]
    /// The applied index of the rows that were loaded.
    public var checkpointIndex: UInt64
    public var sessionRowCount: Int
    public var retainedRowCount: Int
    public var replayedCount: Int

    /// An empty state at the start of an empty log.
    public static func fresh(limits: BrokerLimits) -> RecoveredState {
        RecoveredState(
            state: BrokerState(limits: limits), lastIndex: 0, lastChain: LogRecord.genesisChain, checkpointIndex: 0,
            sessionRowCount: 0, retainedRowCount: 0, replayedCount: 0)
    }
}

extension NodeStore {
    /// The first index kept in the log and the chain hash before it.
    func logBase(_ transaction: borrowing LMDBReadTransaction) throws -> (firstIndex: UInt64, previousChain: [UInt8]) {
        guard let base = try transaction.get(meta, key: MetaKey.logBase) else { return (1, LogRecord.genesisChain) }
        guard base.count == 40, let index = Self.integer(Array(base[0..<8]), as: UInt64.self) else {
            throw NodeStoreError.corrupt(
                file: dataFile, table: "meta", keys: "logBase", detail: "\(base.count) bytes, not 40")
        }
        return (index, Array(base[8...]))
    }

    /// Loads the rows of the last checkpoint and replays the log after it with the actions
    /// discarded: the state as it was after the last durable record. Every record replayed is
    /// checked (CRC, hash chain, contiguous index) and every row decoded; the first damage
    /// found stops recovery with the table and keys, never skipped.
    ///
    /// `progress` is called with a line now and then on long recoveries.
    public func recover(defaultLimits: BrokerLimits, progress: (String) -> Void) throws(NodeStoreError)
        -> RecoveredState
    {
        do {
            return try recoverOrThrow(defaultLimits: defaultLimits, progress: progress)
        } catch let error as NodeStoreError {
            throw error
        } catch let error as StoreError {
            throw .store(error)
        } catch let error as StateLoadError {
            throw .corrupt(
                file: dataFile, table: error.table, keys: "key \(error.key.debugDescription)", detail: "\(error.error)")
        } catch {
            throw .corrupt(file: dataFile, table: "?", keys: "?", detail: "\(error)")
        }
    }

    private func recoverOrThrow(defaultLimits: BrokerLimits, progress: (String) -> Void) throws -> RecoveredState {
        // Rows and the base of the log, in one read transaction: a consistent checkpoint.
        let (state, checkpointIndex, base, sessionCount, retainedCount) = try environment.read {
            transaction throws -> (BrokerState, UInt64, (firstIndex: UInt64, previousChain: [UInt8]), Int, Int) in
            let meta: StateMeta
            if let bytes = try transaction.get(self.meta, key: MetaKey.state) {
                do {
                    meta = try StateMeta.decode(ByteBuffer(bytes: bytes))
                } catch {
                    throw NodeStoreError.corrupt(file: dataFile, table: "meta", keys: "state", detail: "\(error)")
                }
            } else {
                meta = StateMeta(appliedIndex: 0, nowMillis: 0, limits: defaultLimits)
            }
            let base = try logBase(transaction)
            let sessionRows = try rows(sessions, transaction)
            let retainedRows = try rows(retained, transaction)
            let cursorRows = try rows(cursors, transaction)
            let state = try BrokerState.load(
                meta: meta, sessions: sessionRows, retained: retainedRows, cursors: cursorRows)
            return (state, meta.appliedIndex, base, sessionRows.count, retainedRows.count)
        }
        progress(
            "loaded \(sessionCount) sessions and \(retainedCount) retained messages at log index \(checkpointIndex)")

        // The chain hash the first replayed record must continue.
        var previousChain: [UInt8]
        if checkpointIndex + 1 == base.firstIndex || (checkpointIndex == 0 && base.firstIndex == 1) {
            previousChain = base.previousChain
        } else {
            guard checkpointIndex >= base.firstIndex else {
                throw NodeStoreError.corrupt(
                    file: dataFile, table: "log", keys: "indices \(checkpointIndex + 1)...\(base.firstIndex - 1)",
                    detail: "records the checkpoint at \(checkpointIndex) needs were trimmed")
            }
            let anchor = try environment.read { transaction in
                try transaction.get(log, key: LogRecord.key(checkpointIndex))
            }
            guard let anchor else {
                throw NodeStoreError.corrupt(
                    file: dataFile, table: "log", keys: "index \(checkpointIndex)",
                    detail: "the record of the checkpoint's applied index is missing")
            }
            do {
                previousChain = try LogRecord.decode(
                    key: LogRecord.key(checkpointIndex), value: ByteBuffer(bytes: anchor), previousChain: nil
                ).chain
            } catch {
                throw NodeStoreError.corrupt(
                    file: dataFile, table: "log", keys: "index \(checkpointIndex)", detail: "\(error)")
            }
        }

        // Replay in chunks, each in its own short read transaction. A marker says which records
        // are being replayed, so that a start that dies here (a failed invariant) is not
        // repeated blindly by the next one.
        // Read-only readers (foxdump) replay too, but never touch the marker of a running node.
        let marker = ReplayMarker(dataDirectory: directory)
        let writable = !environment.options.readOnly
        if writable,
            let lastIndex = try environment.read({ transaction in try transaction.last(log) }).flatMap({
                LogRecord.index(ofKey: $0.key)
            }), lastIndex > checkpointIndex
        {
            marker.set("\(checkpointIndex + 1)...\(lastIndex)")
        }
        ApplyTrace.replaying = true
        defer { ApplyTrace.replaying = false }
        var expected = checkpointIndex + 1
        var replayed = 0
        var discarded: [BrokerAction] = []
        let chunk = 4096
        while true {
            var records: [LogRecord] = []
            try environment.read { transaction in
                try transaction.forEach(log, from: LogRecord.key(expected)) { key, value in
                    let index = LogRecord.index(ofKey: key) ?? 0
                    let wanted = expected + UInt64(records.count)
                    guard index == wanted else {
                        throw NodeStoreError.corrupt(
                            file: dataFile, table: "log", keys: "indices \(wanted)...\(index &- 1)",
                            detail: "records missing from the log")
                    }
                    do {
                        let record = try LogRecord.decode(
                            key: key, value: ByteBuffer(bytes: value),
                            previousChain: records.last?.chain ?? previousChain)
                        records.append(record)
                    } catch {
                        throw NodeStoreError.corrupt(
                            file: dataFile, table: "log", keys: "index \(index)", detail: "\(error)")
                    }
                    return records.count < chunk
                }
            }
            if records.isEmpty { break }
            for record in records {
                let event: BrokerEvent
                do {
                    event = try record.decodeEvent()
                } catch {
                    throw NodeStoreError.corrupt(
                        file: dataFile, table: "log", keys: "index \(record.index)", detail: "\(error)")
                }
                discarded.removeAll(keepingCapacity: true)
                ApplyTrace.index = record.index
                state.apply(event, atMillis: record.timeMillis, into: &discarded)
                expected += 1
                replayed += 1
            }
            previousChain = records.last!.chain
            if replayed % 100_000 < chunk { progress("replayed \(replayed) log records (index \(expected - 1))") }
        }
        if writable { marker.clear() }
        return RecoveredState(
            state: state, lastIndex: expected - 1, lastChain: previousChain, checkpointIndex: checkpointIndex,
            sessionRowCount: sessionCount, retainedRowCount: retainedCount, replayedCount: replayed)
    }

    private func rows(
        _ table: LMDBTable, _ transaction: borrowing LMDBReadTransaction
    ) throws -> [(key: [UInt8], value: ByteBuffer)] {
        var rows: [(key: [UInt8], value: ByteBuffer)] = []
        try transaction.forEach(table) { key, value in
            rows.append((Array(key), ByteBuffer(bytes: value)))
            return true
        }
        return rows
    }
}
