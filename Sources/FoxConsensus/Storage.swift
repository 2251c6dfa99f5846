/// Durable node metadata (section 9 `meta`).
public struct StoredMeta: Hashable, Sendable {
    public var lastOwnRound: UInt64
    public var lastOwnDigest: Digest?
    /// Set by every restore from a backup or copy; forces amnesia recovery (10.4).
    public var restored: Bool
    public init(lastOwnRound: UInt64, lastOwnDigest: Digest?, restored: Bool) {
        self.lastOwnRound = lastOwnRound; self.lastOwnDigest = lastOwnDigest; self.restored = restored
    }
}

/// The committer/linearizer state right after commit k: what a restart replays from.
public struct CoreSnapshot: Hashable, Sendable {
    public var commitIndex: UInt64
    public var leaderRound: UInt64
    public var runningHash: Digest
    public var commitTime: UInt64
    /// Sorted refs of P after commit k.
    public var pending: [BlockRef]
    /// Sorted refs of emitted blocks with round ≥ gcRound_{k+1}.
    public var emitted: [BlockRef]
    public var sequencer: Sequencer
    public var checkpoint: Checkpoint?
    /// The host's application-state snapshot at commit k (opaque bytes, section 10.3).
    public var app: [UInt8] = []
    /// Commit records k−1 and k chained to runningHash_k, sent with the snapshot so the receiver
    /// rebuilds `emitted` itself (10.3). Not covered by stateDigest; runningHash_k covers it.
    public var anchor: SyncAnchor? = nil
    /// Set on a snapshot installed by state sync whose `emitted` is not rebuilt yet (the list is
    /// then empty): a restart resumes the rebuild from `anchor`.
    public var rebuildEmitted: Bool = false
}

/// One durable transaction (group commit, section 9). Applied atomically by `sync`.
public struct PersistBatch: Hashable, Sendable {
    public var txn: UInt64
    /// Encoded blocks not yet durable locally (including a new own block).
    public var blocks: [BlockRef: [UInt8]]
    public var blockOrder: [BlockRef]
    public var meta: StoredMeta?
    public var commits: [CommittedSubDag]
    public var snapshot: CoreSnapshot?
    /// Disk pruning (11): drop blocks below this round and commit records with a lower leader round.
    public var pruneBelowRound: UInt64?
}

/// Everything a node finds on its disk at start.
public struct StoreImage: Sendable {
    /// False for a wiped or missing store: amnesia recovery runs (10.4).
    public var initialized: Bool
    public var meta: StoredMeta
    /// Sorted by ref.
    public var blocks: [(BlockRef, [UInt8])]
    /// Sorted by index.
    public var commits: [CommittedSubDag]
    public var snapshot: CoreSnapshot?

    public static let fresh = StoreImage(
        initialized: true, meta: StoredMeta(lastOwnRound: 0, lastOwnDigest: nil, restored: false),
        blocks: [], commits: [], snapshot: nil)
    public static let wiped = StoreImage(
        initialized: false, meta: StoredMeta(lastOwnRound: 0, lastOwnDigest: nil, restored: false),
        blocks: [], commits: [], snapshot: nil)
}

/// The storage contract of the simulator: `write` stages a batch; `sync` makes every staged batch
/// durable, in order, atomically per batch. Only durable data survives `crash`. Implemented by
/// `InMemoryConsensusStorage` (FoxConsensusSimulation). A node does not implement this protocol:
/// `ConsensusOrderer` writes the core's `PersistBatch`es into the node's LMDB environment itself
/// (`NodeStore.writeCluster`, FoxBrokerStore), in the one transaction and sync that also hold the
/// broker state those commits produced, and reads the image back with `loadConsensusImage`.
public protocol ConsensusStorage: AnyObject {
    func write(_ batch: PersistBatch)
    /// Makes staged batches durable; returns the highest durable txn.
    @discardableResult func sync() -> UInt64?
    /// The durable image (what a restart reads).
    func load() -> StoreImage
    /// Sync is served from the store (10.2): the encoded blocks found among `refs`, in order.
    /// Written batches are visible before `sync` (an LMDB write transaction committed without
    /// fsync is visible to readers).
    func readBlocks(_ refs: [BlockRef]) -> [[UInt8]]
}

/// A store read the core asks the host for (`Output.read`) and gets back as `Input.read`.
public struct StoreRead: Hashable, Sendable {
    public enum Purpose: Hashable, Sendable {
        /// A sync response (fetch or push): `Message.blocks`.
        case blocks
        /// A RecoverQuery answer (10.4) carrying the asker's highest block.
        case recoverAnswer(lastOwnRound: UInt64)
    }
    public var peer: UInt16
    public var refs: [BlockRef]
    public var purpose: Purpose
    public init(peer: UInt16, refs: [BlockRef], purpose: Purpose) {
        self.peer = peer; self.refs = refs; self.purpose = purpose
    }
}

/// In-memory storage with explicit crash semantics: what was written but not synced is lost by
/// `crash()`. `wipe()` models a replaced disk, `restoreCopy` a backup restored with `restored`.
public final class InMemoryConsensusStorage: ConsensusStorage {
    public private(set) var initialized: Bool
    public private(set) var meta: StoredMeta
    var blocks: [BlockRef: [UInt8]] = [:]
    var commits: [UInt64: CommittedSubDag] = [:]
    var snapshot: CoreSnapshot?
    var staged: [PersistBatch] = []
    public private(set) var durableTxn: UInt64? = nil
    public private(set) var syncCount = 0

    public init(initialized: Bool = true) {
        self.initialized = initialized
        meta = StoredMeta(lastOwnRound: 0, lastOwnDigest: nil, restored: false)
    }

    public func write(_ batch: PersistBatch) {
        if let last = staged.last { precondition(batch.txn > last.txn, "batches in txn order") }
        staged.append(batch)
    }

    @discardableResult public func sync() -> UInt64? {
        for b in staged { apply(b) }
        staged.removeAll()
        syncCount += 1
        return durableTxn
    }

    /// Syncs only batches up to `txn` (a disk that completes in order).
    public func sync(through txn: UInt64) {
        while let b = staged.first, b.txn <= txn { apply(b); staged.removeFirst() }
        syncCount += 1
    }

    public var stagedCount: Int { staged.count }

    func apply(_ b: PersistBatch) {
        for r in b.blockOrder { blocks[r] = b.blocks[r] }
        if let m = b.meta { meta = m; initialized = true }
        // A commit record is persisted with or after every block it lists (section 9).
        for c in b.commits {
            for r in c.blocks { assert(blocks[r] != nil, "commit record before its blocks") }
            commits[c.index] = c
        }
        if let s = b.snapshot { snapshot = s }
        if let p = b.pruneBelowRound {
            for r in blocks.keys where r.round < p { blocks[r] = nil }
            for (k, c) in commits where c.leader.round < p { commits[k] = nil }
        }
        durableTxn = b.txn
    }

    /// Power failure: unsynced writes are lost.
    public func crash() { staged.removeAll() }

    /// A replaced or wiped disk.
    public func wipe() {
        staged.removeAll(); blocks = [:]; commits = [:]; snapshot = nil; initialized = false
        meta = StoredMeta(lastOwnRound: 0, lastOwnDigest: nil, restored: false); durableTxn = nil
    }

    /// A copy of the durable state (a backup).
    public func copy() -> InMemoryConsensusStorage {
        let c = InMemoryConsensusStorage(initialized: initialized)
        c.meta = meta; c.blocks = blocks; c.commits = commits; c.snapshot = snapshot; c.durableTxn = durableTxn
        return c
    }

    /// Restore from a backup: the restore tool sets `meta.restored`.
    public func restore(from backup: InMemoryConsensusStorage) {
        staged.removeAll()
        initialized = backup.initialized; blocks = backup.blocks; commits = backup.commits
        snapshot = backup.snapshot; meta = backup.meta; meta.restored = true; durableTxn = nil
    }

    public func load() -> StoreImage {
        StoreImage(
            initialized: initialized, meta: meta,
            blocks: blocks.keys.sorted().map { ($0, blocks[$0]!) },
            commits: commits.keys.sorted().map { commits[$0]! },
            snapshot: snapshot)
    }

    public func readBlocks(_ refs: [BlockRef]) -> [[UInt8]] {
        refs.compactMap { r in blocks[r] ?? staged.reversed().lazy.compactMap { $0.blocks[r] }.first }
    }

    public var blockCount: Int { blocks.count }
    public var commitCount: Int { commits.count }
}
