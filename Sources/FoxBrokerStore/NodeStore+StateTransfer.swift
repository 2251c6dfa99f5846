import FoxBrokerCore
import FoxStore
import NIOCore

/// Where a cluster node's rows stand: the consensus checkpoint commit they reflect, the log
/// index and chain hash there, and the state digest (which every honest node computes alike).
/// Written with the rows, in the same transaction; what a node offers to a peer that fell
/// behind the retained blocks (state transfer, consensus.md §10.3 with R7's chunks).
public struct RowsPosition: Hashable, Sendable, CustomStringConvertible {
    public var commitIndex: UInt64
    public var logIndex: UInt64
    public var digest: [UInt8]
    public var chain: [UInt8]

    public init(commitIndex: UInt64, logIndex: UInt64, digest: [UInt8], chain: [UInt8]) {
        precondition(digest.count == 32 && chain.count == 32, "32-byte digest and chain")
        self.commitIndex = commitIndex
        self.logIndex = logIndex
        self.digest = digest
        self.chain = chain
    }

    public var encoded: [UInt8] {
        NodeStore.bigEndian(commitIndex) + NodeStore.bigEndian(logIndex) + digest + chain
    }

    public init?(encoded bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        guard bytes.count == 80, let commit = NodeStore.integer(Array(bytes[0..<8]), as: UInt64.self),
            let log = NodeStore.integer(Array(bytes[8..<16]), as: UInt64.self)
        else { return nil }
        self.init(commitIndex: commit, logIndex: log, digest: Array(bytes[16..<48]), chain: Array(bytes[48..<80]))
    }

    public var description: String { "commit \(commitIndex) (log \(logIndex))" }
}

/// One row of a state transfer: the table (sessions, retained, cursors, or the state meta row)
/// and the stored key and value, as the rows tables hold them.
public struct TransferRow: Sendable, Equatable {
    public enum Table: UInt8, Sendable, CaseIterable {
        case sessions = 0
        case retained = 1
        case cursors = 2
        case meta = 3
    }

    public var table: Table
    public var key: [UInt8]
    public var value: [UInt8]

    public init(table: Table, key: [UInt8], value: [UInt8]) {
        self.table = table
        self.key = key
        self.value = value
    }
}

extension NodeStore {
    static let rowsAtKey = Array("rowsAt".utf8)

    /// The position of the rows now on disk, if they were written at a consensus checkpoint.
    public func rowsPosition() -> RowsPosition? {
        try? environment.read { transaction in
            try transaction.get(consensusState, key: Self.rowsAtKey).flatMap { RowsPosition(encoded: $0) }
        }
    }

    /// Up to `maxBytes` of rows of `table` after `afterKey` (nil: from the first), in one short
    /// read transaction, if the rows are still at `position` (nil when they moved on: the asker
    /// starts over at the newer position). `complete` when the table has no more rows.
    public func transferRows(
        at position: RowsPosition, table: TransferRow.Table, after afterKey: [UInt8]?, maxBytes: Int
    ) -> (rows: [TransferRow], complete: Bool)? {
        try? environment.read { transaction in
            guard let current = try transaction.get(consensusState, key: Self.rowsAtKey),
                RowsPosition(encoded: current) == position
            else { return nil }
            if table == .meta {
                let value = try transaction.get(meta, key: MetaKey.state) ?? []
                return ([TransferRow(table: .meta, key: MetaKey.state, value: value)], true)
            }
            let source: LMDBTable =
                switch table {
                case .sessions: sessions
                case .retained: retained
                default: cursors
                }
            var rows: [TransferRow] = []
            var bytes = 0
            var complete = true
            try transaction.forEach(source, from: afterKey) { key, value in
                let keyBytes = Array(key)
                if keyBytes == afterKey { return true }
                if bytes > 0 && bytes + key.count + value.count > maxBytes {
                    complete = false
                    return false
                }
                rows.append(TransferRow(table: table, key: keyBytes, value: Array(value)))
                bytes += key.count + value.count
                return true
            }
            return (rows, complete)
        }
    }

    /// Replaces the node's rows with transferred ones at `position`, in one transaction: the old
    /// rows and the whole log go (the log continues at `position.logIndex + 1` from its chain),
    /// the applied commit becomes `position.commitIndex`. Recovery (`recover`) then loads them.
    public func installTransferredState(_ rows: [TransferRow], at position: RowsPosition) throws(StoreError) {
        try write { transaction throws in
            try transaction.deleteAll(sessions)
            try transaction.deleteAll(retained)
            try transaction.deleteAll(cursors)
            try transaction.deleteAll(log)
            for row in rows {
                switch row.table {
                case .sessions: try transaction.put(sessions, key: row.key, value: row.value)
                case .retained: try transaction.put(retained, key: row.key, value: row.value)
                case .cursors: try transaction.put(cursors, key: row.key, value: row.value)
                case .meta: try transaction.put(meta, key: MetaKey.state, value: row.value)
                }
            }
            try transaction.put(
                meta, key: MetaKey.logBase, value: Self.bigEndian(position.logIndex + 1) + position.chain)
            try transaction.put(consensusState, key: ConsensusKey.applied, value: Self.bigEndian(position.commitIndex))
            try transaction.put(consensusState, key: Self.rowsAtKey, value: position.encoded)
        }
    }
}
