import FoxBrokerCore
import FoxConsensus
import FoxStore
import NIOCore

/// The consensus storage of a cluster node, in the node's own LMDB environment, so that a commit
/// record and the broker state it produces are written in one transaction (consensus.md §9):
///
/// | table | key | value |
/// |---|---|---|
/// | `consensus_blocks` | (round, author, digest), big-endian | the encoded block |
/// | `consensus_commits` | commit index (u64, big-endian) | `StorageCodec` commit record |
/// | `consensus_state` | `meta`, `snapshot`, `applied` | `StoredMeta`, `CoreSnapshot`, the last commit index whose entries are in `log` |
///
/// The broker's `log` holds the entries the commits applied, one record each, so a restart
/// loads the rows, replays the log, and skips the commits the core replays up to `applied`.
extension NodeStore {
    enum ConsensusKey {
        static let meta = Array("meta".utf8)
        static let snapshot = Array("snapshot".utf8)
        static let applied = Array("applied".utf8)
    }

    /// One group commit of a cluster node: the core's persist batches (blocks, meta, commit
    /// records, snapshot, pruning), the log records of the entries those commits applied, the
    /// rows of a checkpoint, and the last applied commit index, in one transaction and one sync.
    public func writeCluster(
        batches: [PersistBatch], records: [(index: UInt64, value: ByteBuffer)], checkpoints: [StateCheckpoint],
        rowsAt: RowsPosition? = nil, appliedCommit: UInt64
    ) throws(StoreError) {
        try write { transaction throws in
            for batch in batches { try self.put(batch, &transaction) }
            try self.put(records: records, checkpoint: nil, &transaction)
            // In order: a later checkpoint holds only the rows changed since the earlier one.
            for checkpoint in checkpoints { try self.put(records: [], checkpoint: checkpoint, &transaction) }
            try transaction.put(consensusState, key: ConsensusKey.applied, value: Self.bigEndian(appliedCommit))
            if let rowsAt { try transaction.put(consensusState, key: Self.rowsAtKey, value: rowsAt.encoded) }
        }
    }

    private func put(_ batch: PersistBatch, _ transaction: inout LMDBWriteTransaction) throws {
        // Blocks before the commit records that list them (§9: a commit record is durable with
        // or after every block it lists; here it is the same transaction).
        for ref in batch.blockOrder {
            guard let bytes = batch.blocks[ref] else { continue }
            try transaction.put(consensusBlocks, key: StorageCodec.blockKey(ref), value: bytes)
        }
        if let meta = batch.meta {
            try transaction.put(consensusState, key: ConsensusKey.meta, value: StorageCodec.encode(meta))
        }
        for commit in batch.commits {
            try transaction.put(consensusCommits, key: Self.bigEndian(commit.index), value: StorageCodec.encode(commit))
        }
        if let snapshot = batch.snapshot {
            try transaction.put(consensusState, key: ConsensusKey.snapshot, value: snapshot.encode())
        }
        if let below = batch.pruneBelowRound {
            let bound = StorageCodec.blockKey(BlockRef(round: below, author: 0, digest: .zero))
            while try transaction.deleteRange(consensusBlocks, below: bound, limit: 10_000) == 10_000 {}
            // Commit records in index order have increasing leader rounds.
            var stale: [[UInt8]] = []
            try transaction.forEach(consensusCommits) { key, value in
                guard let commit = try? StorageCodec.decodeCommit(Array(value)), commit.leader.round < below else {
                    return false
                }
                stale.append(Array(key))
                return true
            }
            for key in stale { _ = try transaction.delete(consensusCommits, key: key) }
        }
    }

    /// The last commit index whose entries are in the log (0 before the first).
    public func appliedCommitIndex() throws(NodeStoreError) -> UInt64 {
        do {
            return try environment.read { transaction in
                guard let bytes = try transaction.get(consensusState, key: ConsensusKey.applied) else { return 0 }
                guard let value = Self.integer(bytes, as: UInt64.self) else {
                    throw NodeStoreError.corrupt(
                        file: dataFile, table: "consensus_state", keys: "applied", detail: "\(bytes.count) bytes, not 8"
                    )
                }
                return value
            }
        } catch {
            throw storeError(error, "read")
        }
    }

    /// What the consensus core finds on this disk at start. A restored store (`meta.restored`)
    /// is `initialized: false`: amnesia recovery (consensus.md §10.4) before it signs anything.
    /// So is a store without consensus meta when `ranBefore` (a marker outside the data
    /// directory says this node signed blocks once: its data directory was wiped). A new node
    /// of a new cluster starts at round 0 without asking: when every node of a new cluster
    /// recovered at once, the (b)+1 rule would lift them to rounds nobody holds blocks of, and
    /// none could ever propose. Damaged records stop the start with the table and key.
    public func loadConsensusImage(committee: Committee, ranBefore: Bool = false) throws(NodeStoreError) -> StoreImage {
        let restored = try isRestored()
        do {
            return try environment.read { transaction in
                var meta = StoredMeta(lastOwnRound: 0, lastOwnDigest: nil, restored: false)
                let metaBytes = try transaction.get(consensusState, key: ConsensusKey.meta)
                if let metaBytes {
                    meta = try decoded("consensus_state", "meta") { try StorageCodec.decodeMeta(metaBytes) }
                }
                meta.restored = meta.restored || restored
                var blocks: [(BlockRef, [UInt8])] = []
                try transaction.forEach(consensusBlocks) { key, value in
                    let ref = try decoded("consensus_blocks", "a key") { try StorageCodec.blockRef(key: Array(key)) }
                    blocks.append((ref, Array(value)))
                    return true
                }
                var commits: [CommittedSubDag] = []
                try transaction.forEach(consensusCommits) { key, value in
                    let commit = try decoded("consensus_commits", "key \(Array(key))") {
                        try StorageCodec.decodeCommit(Array(value))
                    }
                    commits.append(commit)
                    return true
                }
                var snapshot: CoreSnapshot?
                if let bytes = try transaction.get(consensusState, key: ConsensusKey.snapshot) {
                    snapshot = try decoded("consensus_state", "snapshot") {
                        try CoreSnapshot.decode(bytes, committee: committee)
                    }
                }
                return StoreImage.found(
                    initialized: (metaBytes != nil || !ranBefore) && !meta.restored, meta: meta, blocks: blocks,
                    commits: commits,
                    snapshot: snapshot)
            }
        } catch {
            throw storeError(error, "read")
        }
    }

    private func decoded<Value>(_ table: String, _ key: String, _ body: () throws -> Value) throws -> Value {
        do {
            return try body()
        } catch {
            throw NodeStoreError.corrupt(file: dataFile, table: table, keys: key, detail: "\(error)")
        }
    }

    /// The stored blocks among `refs`, in order (the core serves block sync from the store).
    public func readBlocks(_ refs: [BlockRef]) -> [[UInt8]] {
        (try? environment.read { transaction in
            try refs.compactMap { ref in try transaction.get(consensusBlocks, key: StorageCodec.blockKey(ref)) }
        }) ?? []
    }
}
