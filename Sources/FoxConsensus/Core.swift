/// Configuration of one node's core.
public struct CoreConfig: Sendable {
    public var committee: Committee
    public var me: UInt16
    public var local: LocalParameters
    /// Consecutive heartbeat-only blocks before an idle node goes quiet.
    public var maxIdleHeartbeats: Int = 3
    /// Follow-up statuses to a peer whose announced rounds differ from this node's, one per
    /// sync interval, before it gives up until the peer speaks or a new round arrives (a dead
    /// peer, or a stale view of a peer that caught up, costs this many and then silence).
    public var maxUnansweredStatuses: Int = 10
    public init(committee: Committee, me: UInt16, local: LocalParameters = LocalParameters()) {
        precondition(Int(me) < committee.n, "me in committee")
        self.committee = committee; self.me = me; self.local = local
    }
}

public enum Input: Sendable {
    /// First input after construction: replays the store, re-broadcasts, starts recovery.
    case start
    case message(from: UInt16, bytes: [UInt8])
    case submit(kind: UInt8, body: [UInt8])
    /// Every batch with txn ≤ this is durable.
    case persisted(txn: UInt64)
    /// The timer set by `.setTimer` fired (or any wake-up).
    case tick
    /// The host's application-state snapshot right after applying commit `commitIndex` (a
    /// delivery with `checkpointDue`). Completes checkpoint C_k (10.3).
    case appSnapshot(commitIndex: UInt64, bytes: [UInt8])
    /// The answer to `Output.read`: the blocks the store holds among the refs, in order.
    case read(StoreRead, blocks: [[UInt8]])
}

public enum RejectReason: Sendable, Equatable { case notReady, tooLarge, backpressure, halted }

/// A committed sub-DAG with the entries the sequencer applied from it.
public struct Delivery: Sendable {
    public var subDag: CommittedSubDag
    public var applied: [Entry]
    public var checkpoint: Checkpoint?
    /// The persist batch holding the commit record: ack only once it is durable (section 9).
    public var txn: UInt64
    /// True for commits recomputed from the store at start.
    public var replayed: Bool
    /// Checkpoint commit: the host must answer with `Input.appSnapshot` for this index.
    public var checkpointDue: Bool = false
}

public enum Output: Sendable {
    case send(to: UInt16, bytes: [UInt8])
    case broadcast(bytes: [UInt8])
    case persist(PersistBatch)
    /// Wake the core with `.tick` at this local time (replaces the previous timer).
    case setTimer(at: UInt64)
    case deliver(Delivery)
    case accepted(EntryID)
    case rejected(RejectReason)
    case recovered(lastOwnRound: UInt64)
    /// State sync (10.3) installed checkpoint C_k: the host replaces its application state with
    /// `app` (its state right after commit k); deliveries continue at k + 1.
    case stateSynced(checkpoint: Checkpoint, app: [UInt8])
    /// Read these blocks from the store (`ConsensusStorage.readBlocks`) and answer with
    /// `Input.read`: sync of blocks the core no longer holds in memory is served from the store
    /// (10.2; emitted blocks keep only their header in memory, section 11).
    case read(StoreRead)
    case halted(String)
}

public enum CoreMode: Sendable, Equatable {
    case recovering
    case awaitingRecoveryPersist(UInt64)
    case active
    case halted(String)
}

public struct CoreMetrics: Sendable {
    public var decodeErrors = 0
    public var invalidBlocks = 0
    public var invalidByRule = [Int](repeating: 0, count: 7)
    public var duplicates = 0
    public var belowHorizon = 0
    public var suspendedDropped = 0
    /// Parked blocks evicted by a lower-round block of the same author (per-author quota).
    public var suspendedEvicted = 0
    public var equivocations = 0
    public var forcedEmissions = 0
    public var blocksProposed = 0
    public var commits = 0
    public var skippedSlots = 0
    public var leaderTimeouts = 0
    public var readinessBoundViolations = 0
    public var fetchesSent = 0
    public var blocksServed = 0
    /// Of which read from the store (10.2).
    public var blocksServedFromStore = 0
    public var maxSuspended = 0
    public var maxDagBlocks = 0
    public var maxPending = 0
    public var reproposed = 0
    public var checkpointsProven = 0
    public var stateSyncs = 0
    /// Recovery answers whose lastOwnRound failed the cross-check (10.4).
    public var recoveryClaimsDropped = 0
    /// State responses rejected: failed verification, or unsolicited (no outstanding request,
    /// not from a peer it went to, or V claimants no longer beyond the window).
    public var stateResponsesRejected = 0
    public var stateResponsesServed = 0
    /// State requests sent (10.3): only when V peers claim to be beyond the retained window.
    public var stateRequestsSent = 0
    /// Installed snapshots whose emitted list differed from the one rebuilt from the anchor.
    public var stateEmittedMismatches = 0
}

/// The consensus core: a pure, synchronous state machine (section 12). `step(input, now:)` takes
/// one input and the local clock reading and returns outputs. The host must run the outputs in
/// order: `.persist` before anything that follows it; own blocks are held back by the core until
/// `.persisted` reports their batch durable (persist-then-send, section 4).
public struct ConsensusCore {
    public let config: CoreConfig
    public let committee: Committee
    public let me: UInt16
    let signer: BlockSigner
    let verifier: SignatureVerifier
    var image: StoreImage?

    public internal(set) var mode: CoreMode
    public internal(set) var metrics = CoreMetrics()

    // Identity and the never-sign-twice rule.
    public internal(set) var lastOwnRound: UInt64 = 0
    public internal(set) var lastOwnRef: BlockRef? = nil
    public internal(set) var incarnation: UInt64 = 1
    var nextSeq: UInt64 = 0

    // DAG and receive path.
    public internal(set) var dag: Dag
    public internal(set) var horizon: UInt64 = 0
    var insertedAt: [BlockRef: UInt64] = [:]
    var suspended: [BlockRef: (block: Block, bytes: [UInt8], from: UInt16)] = [:]
    var suspendedBytes = 0
    var suspendedBytesByAuthor: [Int]
    var suspendedCountByAuthor: [Int]
    /// Parked refs per author, sorted: eviction takes the last, slot lookups binary-search.
    var suspendedByAuthor: [[BlockRef]]
    /// Missing parent → parked children waiting on it (re-examined when it is inserted).
    var waiters: [BlockRef: [BlockRef]] = [:]
    var wakeQueue: [BlockRef] = []
    var missing: [BlockRef: (lastAsked: UInt64, attempts: Int, from: UInt16)] = [:]
    var requested: Set<BlockRef> = []
    public internal(set) var evidence: [EquivocationEvidence] = []
    var evidenceSlots: Set<Slot> = []

    // Proposer.
    var pending: [Entry] = []
    var pendingBytes = 0
    var reproposals: [Entry] = []
    var ownUnapplied: Set<EntryID> = []
    var lastBlockTime: UInt64? = nil
    var thresholdRound: UInt64? = nil
    var thresholdSince: UInt64 = 0
    var timeoutsInARow = 0
    var idleHeartbeats = 0
    var uncovered: Set<BlockRef> = []
    var nonEmptyUnemitted: Set<BlockRef> = []

    // Committer and linearizer.
    public internal(set) var decidedRound: UInt64 = 0
    public internal(set) var commitIndex: UInt64 = 0
    public internal(set) var lastLeaderRound: UInt64 = 0
    public internal(set) var runningHash: Digest
    public internal(set) var commitTime: UInt64 = 0
    var emitted: Set<BlockRef> = []
    var pendingP: Set<BlockRef> = []
    var enteredP: [BlockRef: UInt64] = [:]
    public internal(set) var sequencer: Sequencer
    var dirtyDag = false

    // Checkpoints.
    public internal(set) var lastCheckpoint: Checkpoint? = nil
    var ownCheckpoints: [UInt64: Checkpoint] = [:]
    /// Per author, its (at most) two highest-index attestations with the attesting block's bytes:
    /// n·2 entries at most, whatever a Byzantine author signs (it can only occupy its own slots).
    var attestations: [[(checkpoint: Checkpoint, bytes: [UInt8])]]
    public internal(set) var provenCheckpoint: Checkpoint? = nil
    public internal(set) var stableCheckpoint: Checkpoint? = nil
    var lastSnapshot: CoreSnapshot? = nil
    var previousSnapshotHorizon: UInt64 = 0
    /// Checkpoint commits waiting for the host's application snapshot.
    var awaitingApp: [UInt64: CoreSnapshot] = [:]
    /// Own completed snapshots this node can serve for state sync, by commit index.
    var servable: [UInt64: CoreSnapshot] = [:]
    /// Proofs: for a proven C_k, the bytes of V blocks of distinct authors attesting it.
    var proofs: [UInt64: [[UInt8]]] = [:]
    var lastStateRequest: UInt64? = nil
    /// State sync in progress: L_k of the installed snapshot, until `emitted` is rebuilt.
    var syncAnchor: BlockRef? = nil
    /// Blocks commits k−1 and k emitted (digest → claimed ref), from the anchor.
    var syncEmitted: [Digest: BlockRef] = [:]
    var syncSnapshot: CoreSnapshot? = nil
    /// Emitted blocks not held yet, by digest (marked emitted when they arrive), until the
    /// horizon passes `emittedPendingUntil`.
    var emittedDigestsPending: Set<Digest> = []
    var emittedPendingUntil: UInt64 = 0
    /// The last two commits (runningHash before, leader, emitted blocks): the anchor of a checkpoint.
    var recentCommits: [(previous: Digest, record: AnchorRecord)] = []
    var stateRequestAttempts = 0
    /// The peers the outstanding state request went to (empty: none outstanding). Only their
    /// responses are examined (10.3), and only while V claimants are still beyond the window.
    var stateRequestTargets: [UInt16] = []
    /// The highest round each peer announced in its latest status (the only input of the
    /// state-sync trigger; a Byzantine peer can claim anything, so one claim proves nothing).
    var peerClaims: [UInt64]

    // Persistence.
    var nextTxn: UInt64 = 1
    var notDurable: [(BlockRef, [UInt8])] = []
    var metaDirty = false
    var restoredFlag = false
    var newCommitRecords: [CommittedSubDag] = []
    var newSnapshot: CoreSnapshot? = nil
    var pruneBelow: UInt64? = nil
    /// The highest disk-prune floor issued (section 11; see `schedulePrune`).
    var diskFloor: UInt64 = 0
    var heldSends: [(txn: UInt64, output: Output)] = []
    var ownBlockThisStep: [UInt8]? = nil

    // Sync and recovery.
    var lastStatusAt: UInt64? = nil
    var insertedSinceStatus = false
    var lastStatusReply: [UInt64]
    /// Per peer: the highest round per author it announced since this start (element-wise
    /// maximum of its statuses, so a late old status never lowers it; nil: none yet).
    var peerRounds: [[UInt64]?]
    /// Per peer: when this node last sent it its status (broadcast, reply or follow-up).
    var statusSentAt: [UInt64]
    /// Per peer: follow-up statuses sent since it last spoke or this node last gained a round.
    var statusFollowUps: [Int]
    var recoveryAnswers: [UInt16: (lastOwnRound: UInt64, block: [UInt8]?)] = [:]
    var lastRecoveryQuery: UInt64? = nil
    var timerAt: UInt64? = nil
    var pendingDeliveries: [Delivery] = []
    var replaying = false
    var storedCommitHashes: [UInt64: Digest] = [:]

    public init(config: CoreConfig, signer: BlockSigner, verifier: SignatureVerifier, image: StoreImage) {
        self.config = config
        committee = config.committee
        me = config.me
        self.signer = signer
        self.verifier = verifier
        self.image = image
        dag = Dag(n: committee.n)
        runningHash = committee.digest
        sequencer = Sequencer(n: committee.n, maxHeldBack: committee.params.maxHeldBack)
        suspendedBytesByAuthor = Array(repeating: 0, count: committee.n)
        suspendedCountByAuthor = Array(repeating: 0, count: committee.n)
        suspendedByAuthor = Array(repeating: [], count: committee.n)
        lastStatusReply = Array(repeating: 0, count: committee.n)
        peerRounds = Array(repeating: nil, count: committee.n)
        statusSentAt = Array(repeating: 0, count: committee.n)
        statusFollowUps = Array(repeating: 0, count: committee.n)
        peerClaims = Array(repeating: 0, count: committee.n)
        attestations = Array(repeating: [], count: committee.n)
        let needsRecovery = committee.n > 1 && (!image.initialized || image.meta.restored)
        mode = needsRecovery ? .recovering : .active
    }

    var n: Int { committee.n }
    var q: Int { committee.quorum }
    var gcDepth: UInt64 { committee.params.gcDepth }
    var local: LocalParameters { config.local }

    public var isHalted: Bool { if case .halted = mode { return true } else { return false } }
    public var pendingCount: Int { pending.count }
    public var suspendedCount: Int { suspended.count }
    /// Debug view: parked refs with their missing parents and whether they were requested.
    public var suspendedDetail: String {
        suspended.keys.sorted().map { r in
            let miss = suspended[r]!.block.parents.filter { !dag.contains($0) && $0.round >= horizon }
            return "\(r)<-["
                + miss.map { "\($0)\(requested.contains($0) ? "?" : "")\(missing[$0].map { "a\($0.attempts)" } ?? "")" }
                .joined(separator: ",") + "]"
        }.joined(separator: " ")
    }
    /// The per-author index of parked blocks matches the buffer (tests).
    public var suspendedIndexConsistent: Bool {
        suspendedByAuthor.allSatisfy { $0 == $0.sorted() }
            && suspendedByAuthor.flatMap { $0 }.sorted() == suspended.keys.sorted()
            && suspendedByAuthor.map(\.count) == suspendedCountByAuthor
    }
    public var pCount: Int { pendingP.count }
    public var emittedCount: Int { emitted.count }
    public var uncoveredCount: Int { uncovered.count }
    public var ownUnappliedCount: Int { ownUnapplied.count }
    /// Debug view: non-empty blocks held but not yet emitted (they keep the node proposing).
    public var nonEmptyUnemittedDetail: String { nonEmptyUnemitted.sorted().map { "\($0)" }.joined(separator: ",") }

    // MARK: step

    public mutating func step(_ input: Input, now: UInt64) -> [Output] {
        var out: [Output] = []
        if case .halted = mode {
            if case .submit = input { return [.rejected(.halted)] }
            return []
        }
        switch input {
        case .start:
            start(now: now, out: &out)
        case .message(let from, let bytes):
            guard Int(from) < n, from != me else { metrics.decodeErrors += 1; break }
            handleMessage(from: from, bytes: bytes, now: now, out: &out)
        case .submit(let kind, let body):
            submit(kind: kind, body: body, out: &out)
        case .persisted(let txn):
            persisted(txn: txn, out: &out)
        case .tick:
            tick(now: now, out: &out)
        case .appSnapshot(let k, let bytes):
            if let core = awaitingApp.removeValue(forKey: k) { _ = completeCheckpoint(core, app: bytes) }
        case .read(let request, let blocks):
            answerRead(request, blocks: blocks, out: &out)
        }
        if case .halted = mode { return finish(now: now, out: out) }
        if dirtyDag {
            dirtyDag = false
            runCommitter(now: now, out: &out)
        }
        if mode == .active { tryPropose(now: now, out: &out) }
        return finish(now: now, out: out)
    }

    mutating func finish(now: UInt64, out: [Output]) -> [Output] {
        var out = out
        if case .halted(let why) = mode {
            if !out.contains(where: { if case .halted = $0 { return true } else { return false } }) {
                out.append(.halted(why))
            }
            return out
        }
        flushPersist(out: &out)
        scheduleTimer(now: now, out: &out)
        metrics.maxDagBlocks = max(metrics.maxDagBlocks, dag.count)
        metrics.maxSuspended = max(metrics.maxSuspended, suspended.count)
        metrics.maxPending = max(metrics.maxPending, pending.count)
        return out
    }

    mutating func halt(_ why: String, out: inout [Output]) {
        mode = .halted(why)
        out.append(.halted(why))
    }

    // MARK: start and restart (10.1)

    /// Section 10.1, in its steps: load the store (genesis, the snapshot, the retained blocks),
    /// rebuild emitted, verify by replaying the committer, then resume (or recover, 10.4).
    mutating func start(now: UInt64, out: inout [Output]) {
        guard let img = image else { return }
        image = nil
        insertGenesis()
        lastOwnRound = img.meta.lastOwnRound
        restoredFlag = img.meta.restored
        if let s = img.snapshot { adoptStoredSnapshot(s) }
        var emittedByDigest = storedEmittedByDigest(img)
        for c in img.commits { storedCommitHashes[c.index] = c.runningHash }
        guard loadStoredBlocks(img, emittedByDigest: &emittedByDigest, out: &out) else { return }
        if let s = img.snapshot { resumeEmitted(s, notLoaded: emittedByDigest) }
        guard replayCommitter(img, now: now, out: &out) else { return }
        guard restoreLastOwnBlock(img, out: &out) else { return }
        rebuildUncovered()
        resume(img, now: now, out: &out)
    }

    /// Round 0: one implicit block per author, held from the start (section 3).
    mutating func insertGenesis() {
        for g in committee.genesis {
            let gb = Block(
                epoch: committee.epoch, round: 0, author: g.author, timestamp: 0, parents: [],
                payloadDigest: Digest.zero, attestation: nil, payload: [], signature: [])
            dag.insert(gb, ref: g, bytes: [])
        }
    }

    /// Step 1: the latest local snapshot is where the committed sequence resumes; memory keeps
    /// rounds ≥ its gcRound (the horizon).
    mutating func adoptStoredSnapshot(_ s: CoreSnapshot) {
        adoptCommitPosition(of: s)
        sequencer = s.sequencer
        lastCheckpoint = s.checkpoint
        if let c = s.checkpoint { ownCheckpoints[c.commitIndex] = c; servable[c.commitIndex] = s }
        lastSnapshot = s
        horizon = s.leaderRound.minusSaturating(gcDepth)
        previousSnapshotHorizon = horizon
        if horizon > 0 { dag.prune(below: horizon) }
    }

    /// Step 2, emitted: the snapshot's emitted list by digest. Matched by digest (runningHash
    /// covers digests only): a ref claimed by a state-sync server may carry a faked round or
    /// author (gap: the fake ref was trusted and the real block, loaded from disk, emitted a
    /// second time).
    func storedEmittedByDigest(_ img: StoreImage) -> [Digest: BlockRef] {
        var emittedByDigest: [Digest: BlockRef] = [:]
        if let s = img.snapshot, !s.rebuildEmitted {
            for r in s.emitted where emittedByDigest[r.digest] == nil { emittedByDigest[r.digest] = r }
        }
        return emittedByDigest
    }

    /// Step 1, the retained blocks: from the own disk, trusted bytes, strict decoding only (the
    /// replay checks the hashes). Those of the emitted list are marked emitted and leave it.
    /// False: the node halted on a corrupt or incomplete store.
    mutating func loadStoredBlocks(
        _ img: StoreImage, emittedByDigest: inout [Digest: BlockRef], out: inout [Output]
    ) -> Bool {
        for (ref, bytes) in img.blocks where ref.round >= max(horizon, 1) && !dag.contains(ref) {
            guard
                let b = try? BlockCodec.decode(
                    bytes, maxParents: committee.maxParents,
                    maxBlockBytes: committee.params.maxBlockBytes,
                    maxEntryBytes: committee.maxEntryBytes),
                b.digest == ref.digest
            else {
                halt("store: corrupt block \(ref)", out: &out); return false
            }
            if !b.parents.allSatisfy({ $0.round < horizon || dag.contains($0) }) {
                halt("store: block \(ref) not causally complete", out: &out); return false
            }
            dag.insert(b, ref: ref, bytes: bytes)
            // Proofs live in memory: rebuilt from the stored attesting blocks (they follow R_k,
            // above the horizon), so the restored snapshot is servable again at once (gap: after
            // a full-cluster restart no node could serve state until new checkpoints).
            if let c = b.attestation { recordAttestation(c, author: ref.author, bytes: bytes) }
            if emittedByDigest.removeValue(forKey: ref.digest) != nil {
                emitted.insert(ref)
                dag.dropPayload(ref)
            } else if !b.payload.isEmpty {
                nonEmptyUnemitted.insert(ref)
            }
        }
        return true
    }

    /// Step 2, the rest of emitted: a restart after a state sync, before emitted was rebuilt,
    /// resumes the rebuild (10.3); otherwise emitted blocks not on disk are matched by digest
    /// when they arrive (a claimed round below the horizon is no block of the window).
    mutating func resumeEmitted(_ s: CoreSnapshot, notLoaded emittedByDigest: [Digest: BlockRef]) {
        if s.rebuildEmitted, let a = s.anchor {
            startEmittedRebuild(s, anchor: a)
        } else {
            for r in emittedByDigest.values where r.round >= horizon { emittedDigestsPending.insert(r.digest) }
        }
        emittedPendingUntil = s.leaderRound
    }

    /// Step 3, verify: replay the committer from the snapshot and compare with the stored commit
    /// records. P blocks missing from the store (a restart right after a state sync, before block
    /// sync fetched the window) are fetched like missing parents; the committer waits for them.
    /// False: the node halted on a mismatch.
    mutating func replayCommitter(_ img: StoreImage, now: UInt64, out: inout [Output]) -> Bool {
        replaying = true
        runCommitter(now: now, out: &out)
        replaying = false
        if case .halted = mode { return false }
        if let maxStored = img.commits.last?.index, maxStored > commitIndex {
            halt("replay: stored commit \(maxStored) beyond recomputed \(commitIndex)", out: &out); return false
        }
        storedCommitHashes = [:]
        return true
    }

    /// The own block at lastOwnRound, which must be the one meta names. False: it differs (halted).
    mutating func restoreLastOwnBlock(_ img: StoreImage, out: inout [Output]) -> Bool {
        guard lastOwnRound > 0 else { return true }
        lastOwnRef = dag.slot(Slot(author: me, round: lastOwnRound)).first
        if let d = img.meta.lastOwnDigest, let r = lastOwnRef, r.digest != d {
            halt("store: own block at lastOwnRound differs from meta", out: &out); return false
        }
        return true
    }

    /// Everything not in the own history is uncovered (weak-link candidates, section 4).
    mutating func rebuildUncovered() {
        let mine = lastOwnRef.map { dag.history(from: [$0], floor: max(horizon, 1)) } ?? []
        // (No block at or above the horizon yet, e.g. a restart right after a state sync: none;
        // a closed range would trap.)
        for round in stride(from: max(horizon, 1), through: dag.highestRound, by: 1) {
            for r in dag.refs(at: round) where r.author != me && !mine.contains(r) { uncovered.insert(r) }
        }
    }

    /// Step 4: a new incarnation and the own latest block re-broadcast (it may never have left
    /// the machine); or amnesia recovery first (10.4).
    mutating func resume(_ img: StoreImage, now: UInt64, out: inout [Output]) {
        switch mode {
        case .recovering:
            broadcastRecoveryQuery(now: now, out: &out)
        case .active:
            incarnation = lastOwnRound + 1
            if let r = lastOwnRef, let bytes = img.blocks.first(where: { $0.0 == r })?.1 {
                out.append(.broadcast(bytes: Message.block(bytes).encode()))
            }
            lastStatusAt = nil
            insertedSinceStatus = true
        default: break
        }
    }

    // MARK: client entries

    mutating func submit(kind: UInt8, body: [UInt8], out: inout [Output]) {
        guard mode == .active else { out.append(.rejected(.notReady)); return }
        let e = Entry(id: EntryID(origin: me, incarnation: incarnation, seq: nextSeq), kind: kind, body: body)
        if e.encodedSize > committee.maxEntryBytes { out.append(.rejected(.tooLarge)); return }
        if pendingBytes + e.encodedSize > local.maxPendingBytes || pending.count >= local.maxPendingEntries
            || ownUnapplied.count >= local.maxPendingEntries
        {
            out.append(.rejected(.backpressure)); return
        }
        nextSeq += 1
        pending.append(e)
        pendingBytes += e.encodedSize
        ownUnapplied.insert(e.id)
        out.append(.accepted(e.id))
    }

    // MARK: persistence

    mutating func persisted(txn: UInt64, out: inout [Output]) {
        while let first = heldSends.first, first.txn <= txn {
            out.append(first.output)
            heldSends.removeFirst()
        }
        if case .awaitingRecoveryPersist(let t) = mode, txn >= t {
            mode = .active
            incarnation = lastOwnRound + 1
            nextSeq = 0
            insertedSinceStatus = true
            out.append(.recovered(lastOwnRound: lastOwnRound))
        }
    }

    /// One group-commit batch when there is a new own block, new commit records or new meta.
    /// Received blocks ride along (every not-yet-durable block, so a commit record is never
    /// durable before a block it lists, and an own block never before its history).
    mutating func flushPersist(out: inout [Output]) {
        let needed = ownBlockThisStep != nil || !newCommitRecords.isEmpty || metaDirty || newSnapshot != nil
        guard needed else { return }
        let txn = nextTxn
        nextTxn += 1
        var blocks: [BlockRef: [UInt8]] = [:]
        var order: [BlockRef] = []
        for (r, b) in notDurable { blocks[r] = b; order.append(r) }
        notDurable.removeAll()
        var meta: StoredMeta? = nil
        if metaDirty || ownBlockThisStep != nil {
            meta = StoredMeta(lastOwnRound: lastOwnRound, lastOwnDigest: lastOwnRef?.digest, restored: restoredFlag)
        }
        let batch = PersistBatch(
            txn: txn, blocks: blocks, blockOrder: order, meta: meta, commits: newCommitRecords,
            snapshot: newSnapshot, pruneBelowRound: pruneBelow)
        out.append(.persist(batch))
        for i in out.indices {
            if case .deliver(var d) = out[i], d.txn == 0 { d.txn = txn; out[i] = .deliver(d) }
        }
        if let own = ownBlockThisStep {
            heldSends.append((txn, .broadcast(bytes: Message.block(own).encode())))
        }
        if case .awaitingRecoveryPersist(0) = mode { mode = .awaitingRecoveryPersist(txn) }
        ownBlockThisStep = nil
        newCommitRecords = []
        newSnapshot = nil
        pruneBelow = nil
        metaDirty = false
    }

    // MARK: timers

    mutating func scheduleTimer(now: UInt64, out: inout [Output]) {
        var next: UInt64? = nil
        func consider(_ t: UInt64?) { if let t { next = min(next ?? .max, max(t, now + 1)) } }
        switch mode {
        case .recovering:
            consider((lastRecoveryQuery ?? now).plusSaturating(local.recoveryRetry))
        case .active:
            consider(proposalDeadline(now: now))
        default: break
        }
        // Deadlines are absolute (from when a ref was last asked, or the last status), never
        // `now + interval`: a busy node would otherwise push its own retries back forever.
        if let oldest = missing.values.map(\.lastAsked).min() {
            consider(oldest.plusSaturating(local.syncInterval))
        } else if !suspended.isEmpty || pendingP.contains(where: { !dag.contains($0) })
            || syncAnchor.map({ !dag.contains($0) }) ?? false
        {
            consider(now.plusSaturating(local.syncInterval))
        }
        if insertedSinceStatus || hasRealWork || laggingBeyondWindow {
            consider((lastStatusAt ?? 0).plusSaturating(local.syncInterval))
        }
        consider(nextStatusFollowUp)
        if let t = next, t != timerAt {
            timerAt = t
            out.append(.setTimer(at: t))
        } else if next == nil {
            timerAt = nil
        }
    }

    /// V peers announce rounds beyond the window: the node keeps broadcasting its status every
    /// sync interval (the replies re-trigger the state request), also when idle (gap: it sent
    /// one status and, if that request failed, stayed stuck in an idle cluster).
    var laggingBeyondWindow: Bool { mode == .active && stateSyncClaimants.count >= committee.validity }

    mutating func tick(now: UInt64, out: inout [Output]) {
        if let t = timerAt, t <= now { timerAt = nil }
        if mode == .recovering, now >= (lastRecoveryQuery ?? 0).plusSaturating(local.recoveryRetry) {
            broadcastRecoveryQuery(now: now, out: &out)
        }
        retryFetches(now: now, out: &out)
        if insertedSinceStatus || hasRealWork || laggingBeyondWindow,
            now >= (lastStatusAt ?? 0).plusSaturating(local.syncInterval)
        {
            lastStatusAt = now
            insertedSinceStatus = false
            out.append(.broadcast(bytes: Message.status(dag.latestRound).encode()))
            for p in statusSentAt.indices { statusSentAt[p] = max(now, 1) }
        }
        sendStatusFollowUps(now: now, out: &out)
    }
}
