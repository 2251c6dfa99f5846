// Checkpoints and state sync (section 10.3).
extension CoreSnapshot {
    /// Canonical encoding (the state-sync transfer and the stateDigest input).
    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u8(1)
        w.u64(commitIndex); w.u64(leaderRound); w.digest(runningHash); w.u64(commitTime)
        w.u32(UInt32(pending.count)); for r in pending { w.ref(r) }
        w.u32(UInt32(emitted.count)); for r in emitted { w.ref(r) }
        sequencer.encode(into: &w)
        if let c = checkpoint {
            w.u8(1); w.u64(c.commitIndex); w.digest(c.runningHash); w.digest(c.stateDigest); w.u64(c.leaderRound)
        } else {
            w.u8(0)
        }
        w.lengthPrefixed(app)
        if let a = anchor {
            w.u8(rebuildEmitted ? 2 : 1); w.lengthPrefixed(a.encode())
        } else {
            w.u8(0)
        }
        return w.bytes
    }

    /// Strict decoding: the bytes must re-encode identically.
    public static func decode(_ bytes: [UInt8], committee: Committee) throws -> CoreSnapshot {
        var r = ByteReader(bytes)
        guard try r.u8("snapshot.version") == 1 else { throw DecodeError("snapshot.version") }
        let k = try r.u64("snapshot.k"), lr = try r.u64("snapshot.leaderRound")
        let rh = try r.digest("snapshot.runningHash"), ct = try r.u64("snapshot.commitTime")
        func refs(_ f: String) throws -> [BlockRef] {
            let c = Int(try r.u32(f + ".count"))
            if c > 1 << 22 || c * BlockCodec.refBytes > r.remaining { throw DecodeError(f + ".count") }
            var out: [BlockRef] = []
            for _ in 0..<c { out.append(try r.ref(f)) }
            if out != out.sorted() || Set(out).count != out.count { throw DecodeError(f + ".order") }
            return out
        }
        let pending = try refs("snapshot.pending"), emitted = try refs("snapshot.emitted")
        let seq = try Sequencer.decode(
            &r, maxHeldBack: committee.params.maxHeldBack, maxEntryBytes: committee.maxEntryBytes)
        if seq.origins.count != committee.n { throw DecodeError("snapshot.sequencer.n") }
        var cp: Checkpoint? = nil
        if try r.presence("snapshot.checkpoint") {
            cp = Checkpoint(
                commitIndex: try r.u64("c.k"), runningHash: try r.digest("c.rh"), stateDigest: try r.digest("c.sd"),
                leaderRound: try r.u64("c.r"))
        }
        let app = try r.lengthPrefixed(max: Message.maxSnapshotBytes, "snapshot.app")
        let anchorFlag = try r.u8("snapshot.anchor")
        if anchorFlag > 2 { throw DecodeError("snapshot.anchor") }
        var anchor: SyncAnchor? = nil
        if anchorFlag > 0 {
            anchor = try SyncAnchor.decode(try r.lengthPrefixed(max: Message.maxSnapshotBytes, "snapshot.anchor"))
        }
        try r.expectEnd("snapshot")
        let s = CoreSnapshot(
            commitIndex: k, leaderRound: lr, runningHash: rh, commitTime: ct, pending: pending, emitted: emitted,
            sequencer: seq, checkpoint: cp, app: app, anchor: anchor, rebuildEmitted: anchorFlag == 2)
        if s.encode() != bytes { throw DecodeError("snapshot.canonical") }
        return s
    }

    /// stateDigest_k (10.3): SHA-256 of the canonical encoding of the replicated state right
    /// after applying commit k: the sequencer, commitTime_k, the sorted refs of P, and the digest
    /// of the application snapshot (the app tables). Not the emitted refs of the window: a
    /// state-syncing node rebuilds those from commit records k−1 and k (`SyncAnchor`), which
    /// runningHash_k authenticates.
    public var stateDigest: Digest {
        var w = ByteWriter()
        w.raw(Array("foxmq/state/v2".utf8))
        sequencer.encode(into: &w)
        w.u64(commitTime)
        w.u32(UInt32(pending.count)); for r in pending { w.ref(r) }
        w.digest(Digest.sha256(app))
        return Digest.sha256(w.bytes)
    }
}

/// One commit record as state sync carries it: the leader and the emitted blocks in order.
public struct AnchorRecord: Hashable, Sendable {
    public var leader: BlockRef
    public var blocks: [BlockRef]
    public init(leader: BlockRef, blocks: [BlockRef]) { self.leader = leader; self.blocks = blocks }
}

/// Commit records k−1 and k (just k when k = 1) with the runningHash before them. Chained, they
/// must reproduce runningHash_k of the proven checkpoint, so their leader and block digests are
/// genuine (section 10.3: "their runningHash chain must end at runningHash_k"). The receiver
/// rebuilds emitted ∩ window as history(L_k) − P plus the blocks these two commits emitted:
/// every committed leader L_j with R_j ≤ R_k − 2 lies in history(L_k) (its Q supporters meet
/// the Q parents of any later round's block in an honest author), so only commit k−1 can have
/// emitted blocks outside it, and commit k emitted what P kept from commit k−1.
public struct SyncAnchor: Hashable, Sendable {
    public var seed: Digest
    public var records: [AnchorRecord]
    public init(seed: Digest, records: [AnchorRecord]) { self.seed = seed; self.records = records }

    /// runningHash after the last record.
    public var chained: Digest { records.reduce(seed) { SyncAnchor.next($0, $1) } }

    /// runningHash_j = SHA-256(runningHash_{j−1} ‖ L_j.digest ‖ digests of the emitted blocks).
    public static func next(_ previous: Digest, _ rec: AnchorRecord) -> Digest {
        var h = Hashing()
        h.update(previous); h.update(rec.leader.digest)
        for b in rec.blocks { h.update(b.digest) }
        return h.finalize()
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u8(1); w.digest(seed); w.u8(UInt8(records.count))
        for rec in records {
            w.ref(rec.leader); w.u32(UInt32(rec.blocks.count)); for b in rec.blocks { w.ref(b) }
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> SyncAnchor {
        var r = ByteReader(bytes)
        guard try r.u8("anchor.version") == 1 else { throw DecodeError("anchor.version") }
        let seed = try r.digest("anchor.seed")
        let c = Int(try r.u8("anchor.count"))
        if c < 1 || c > 2 { throw DecodeError("anchor.count") }
        var recs: [AnchorRecord] = []
        for _ in 0..<c {
            let leader = try r.ref("anchor.leader")
            let m = Int(try r.u32("anchor.blocks"))
            if m * BlockCodec.refBytes > r.remaining { throw DecodeError("anchor.blocks") }
            var blocks: [BlockRef] = []
            for _ in 0..<m { blocks.append(try r.ref("anchor.block")) }
            recs.append(AnchorRecord(leader: leader, blocks: blocks))
        }
        try r.expectEnd("anchor")
        return SyncAnchor(seed: seed, records: recs)
    }
}

extension ConsensusCore {
    /// Completes C_k once the application snapshot is known: attest it in the next own blocks,
    /// persist the snapshot, make it servable.
    mutating func completeCheckpoint(_ core: CoreSnapshot, app: [UInt8]) -> Checkpoint {
        var snap = core
        snap.app = app
        let c = Checkpoint(
            commitIndex: core.commitIndex, runningHash: core.runningHash, stateDigest: snap.stateDigest,
            leaderRound: core.leaderRound)
        snap.checkpoint = c
        if lastCheckpoint.map({ $0.commitIndex < c.commitIndex }) ?? true { lastCheckpoint = c }
        ownCheckpoints[c.commitIndex] = c
        if ownCheckpoints.count > 8, let low = ownCheckpoints.keys.min() { ownCheckpoints[low] = nil }
        if !replaying {
            newSnapshot = snap
            schedulePrune()
        }
        previousSnapshotHorizon = lastSnapshot.map { $0.leaderRound.minusSaturating(gcDepth) } ?? 0
        lastSnapshot = snap
        servable[c.commitIndex] = snap
        while servable.count > 3, let low = servable.keys.min() { servable[low] = nil }
        return c
    }

    /// Disk pruning (section 11): with s the latest **stable** checkpoint (Q authors attest it,
    /// 10.3), the disk keeps blocks and commit records with round ≥ R_s − gcDepth and may prune
    /// the rest; a checkpoint only this node (or fewer than Q) computed never moves the floor,
    /// so peers that have not reached it can still block-sync from this disk. The floor is also
    /// capped by what a restart from the local snapshots needs (`previousSnapshotHorizon`), and
    /// only ever rises. Rides along with the next persist batch.
    /// Where a snapshot leaves the committed sequence: its index, leader round (decided too),
    /// running hash, commit time and P. Shared by a restart from the local snapshot and a
    /// state-sync install.
    mutating func adoptCommitPosition(of s: CoreSnapshot) {
        commitIndex = s.commitIndex
        lastLeaderRound = s.leaderRound
        decidedRound = s.leaderRound
        runningHash = s.runningHash
        commitTime = s.commitTime
        pendingP = Set(s.pending)
    }

    mutating func schedulePrune() {
        guard !replaying, let s = stableCheckpoint else { return }
        let floor = min(previousSnapshotHorizon, s.leaderRound.minusSaturating(gcDepth))
        guard floor > diskFloor else { return }
        diskFloor = floor
        pruneBelow = floor
    }

    /// How far above its own commit index a node still counts attestations: a genuine checkpoint
    /// a peer attests is at most a few intervals ahead of an up-to-date node; one far beyond is
    /// a lie (or the node lags and will state-sync, which does not need these votes).
    static let attestationLookahead: UInt64 = 64

    /// Records the attestation of a block; a checkpoint with V identical attestations is proven
    /// and the attesting blocks are kept as its proof. Votes are kept per author (its two
    /// highest-index attestations), so a Byzantine author attesting many fake indices evicts
    /// only its own entries (gap: a table of 16 indices, lowest evicted first, that 17 fake
    /// indices filled for good). Indices that are no checkpoint (not a multiple of the interval)
    /// or absurdly far above the own commit index are ignored.
    mutating func recordAttestation(_ c: Checkpoint, author: UInt16, bytes: [UInt8]) {
        let interval = committee.params.checkpointInterval
        let (ahead, overflow) = interval.multipliedReportingOverflow(by: Self.attestationLookahead)
        let limit = overflow ? UInt64.max : commitIndex.plusSaturating(ahead)
        guard c.commitIndex > 0, c.commitIndex % interval == 0, c.commitIndex <= limit else { return }
        if let s = stableCheckpoint, c.commitIndex <= s.commitIndex { return }
        let a = Int(author)
        if attestations[a].contains(where: { $0.checkpoint.commitIndex == c.commitIndex }) { return }
        attestations[a].append((c, bytes))
        attestations[a].sort { $0.checkpoint.commitIndex > $1.checkpoint.commitIndex }
        if attestations[a].count > 2 { attestations[a].removeLast() }
        guard attestations[a].contains(where: { $0.checkpoint == c }) else { return }
        var same: [[UInt8]] = []
        for v in 0..<n {
            if let e = attestations[v].first(where: { $0.checkpoint == c }) { same.append(e.bytes) }
        }
        if same.count >= committee.validity {
            if proofs[c.commitIndex] == nil {
                proofs[c.commitIndex] = Array(same.prefix(committee.validity))
                while proofs.count > 4, let low = proofs.keys.min() { proofs[low] = nil }
            }
            if provenCheckpoint.map({ $0.commitIndex < c.commitIndex }) ?? true {
                provenCheckpoint = c
                metrics.checkpointsProven += 1
            }
        }
        if same.count >= q, stableCheckpoint.map({ $0.commitIndex < c.commitIndex }) ?? true {
            stableCheckpoint = c
            schedulePrune()
            for v in 0..<n { attestations[v].removeAll { $0.checkpoint.commitIndex < c.commitIndex } }
        }
    }

    // MARK: serving

    mutating func serveState(to peer: UInt16, theirIndex: UInt64, out: inout [Output]) {
        for k in servable.keys.sorted(by: >) where k > theirIndex {
            guard let s = servable[k], let proof = proofs[k], let c = s.checkpoint, s.anchor != nil, !s.rebuildEmitted,
                provenCheckpointMatches(c)
            else {
                continue
            }
            metrics.stateResponsesServed += 1
            out.append(.send(to: peer, bytes: Message.stateResponse(snapshot: s.encode(), proof: proof).encode()))
            return
        }
    }

    /// The proof held for C_k attests exactly this node's own C_k.
    func provenCheckpointMatches(_ c: Checkpoint) -> Bool {
        guard let proof = proofs[c.commitIndex] else { return false }
        return proof.allSatisfy { b in
            (try? BlockCodec.decode(
                b, maxParents: committee.maxParents, maxBlockBytes: committee.params.maxBlockBytes,
                maxEntryBytes: committee.maxEntryBytes))?.attestation == c
        }
    }

    // MARK: requesting

    /// V = f+1 distinct peers announce rounds beyond what this node's peers still retain above
    /// its decided prefix: block sync cannot close the gap, ask for a proven checkpoint (10.3).
    /// One announcement is not enough: a single Byzantine peer claiming to be far ahead would
    /// otherwise make every honest node request (and its honest peers ship) snapshots over and
    /// over. Among V claimants at least one is honest, and an honest claim is true.
    mutating func maybeRequestState(now: UInt64, out: inout [Output]) {
        guard mode == .active else { return }
        let ahead = stateSyncClaimants
        guard ahead.count >= committee.validity else { return }
        if let last = lastStateRequest, now < last.plusSaturating(local.syncInterval) { return }
        lastStateRequest = max(now, 1)
        stateRequestAttempts += 1
        // Two of the claimants in rotation: up to f of them may be lying.
        let msg = Message.stateRequest(commitIndex: commitIndex).encode()
        let first = stateRequestAttempts % ahead.count
        var targets = [ahead[first]]
        if ahead.count > 1 { targets.append(ahead[(first + 1) % ahead.count]) }
        stateRequestTargets = targets
        for t in targets {
            metrics.stateRequestsSent += 1
            out.append(.send(to: t, bytes: msg))
        }
    }

    /// The peers whose latest status announces a round beyond what this node's peers still
    /// retain above its decided prefix, in id order.
    var stateSyncClaimants: [UInt16] {
        let beyond = decidedRound.plusSaturating(gcDepth).plusSaturating(3)
        var ahead: [UInt16] = []
        for p in 0..<n where UInt16(p) != me && peerClaims[p] > beyond { ahead.append(UInt16(p)) }
        return ahead
    }

    /// Verifies a state response: the snapshot re-derives C_k, V distinct authors' valid signed
    /// blocks attest exactly C_k (one of them is honest, and honest computations agree), and the
    /// anchor's commit records chain to runningHash_k with L_k in slot (leader(R_k), R_k).
    /// Only an answer to the outstanding request is examined: from a peer it went to, while V
    /// claimants are still beyond the window (gap: any response ahead was installed, so a
    /// Byzantine peer replaying a genuine proven snapshot made nodes only a few commits behind
    /// jump ahead, skipping deliveries, and each push cost up to n signature checks).
    mutating func receiveState(
        from: UInt16, snapshot bytes: [UInt8], proof: [[UInt8]], now: UInt64, out: inout [Output]
    ) {
        guard mode == .active else { return }
        guard stateRequestTargets.contains(from), stateSyncClaimants.count >= committee.validity else {
            metrics.stateResponsesRejected += 1; return
        }
        guard let s = try? CoreSnapshot.decode(bytes, committee: committee), let c = s.checkpoint,
            c.commitIndex == s.commitIndex, c.runningHash == s.runningHash, c.leaderRound == s.leaderRound,
            c.stateDigest == s.stateDigest
        else {
            metrics.stateResponsesRejected += 1; return
        }
        guard s.commitIndex > commitIndex, s.leaderRound > decidedRound else { return }
        var authors = Set<UInt16>()
        for b in proof.prefix(n) {
            guard let (blk, _) = try? BlockValidator.validate(b, committee: committee, verifier: verifier),
                blk.attestation == c
            else { continue }
            authors.insert(blk.author)
        }
        guard authors.count >= committee.validity else { metrics.stateResponsesRejected += 1; return }
        guard let anchor = s.anchor, !s.rebuildEmitted,
            anchor.records.count == (c.commitIndex >= 2 ? 2 : Int(c.commitIndex)),
            let last = anchor.records.last, last.leader.round == c.leaderRound,
            last.leader.author == committee.leader(c.leaderRound), anchor.chained == c.runningHash
        else {
            metrics.stateResponsesRejected += 1; return
        }
        installState(s, checkpoint: c, anchor: anchor, now: now, out: &out)
    }

    /// Resumes from a verified snapshot: the decided prefix jumps to R_k, the horizon to
    /// gcRound_{k+1}; block sync fetches the window, the committer continues at k + 1 once
    /// `emitted` is rebuilt from the anchor (`resolveSyncAnchor`): the snapshot's own emitted
    /// list is not covered by stateDigest and is only compared.
    mutating func installState(
        _ s: CoreSnapshot, checkpoint c: Checkpoint, anchor: SyncAnchor, now: UInt64, out: inout [Output]
    ) {
        let newHorizon = max(horizon, s.leaderRound.minusSaturating(gcDepth))
        sequencer = s.sequencer
        forgetPassedOwnEntries()
        adoptCommitPosition(of: s)
        enteredP = [:]
        // Re-proposal (11) of own entries the new horizon passes that the (verified) sequencer
        // has not applied. Not filtered by the snapshot's emitted list, which stateDigest does
        // not cover: an entry of an emitted block is applied, or held back, and a second copy
        // of a held-back one is dropped by the sequencer. (`emitted` is rebuilt from the anchor
        // next.)
        advanceHorizon(to: newHorizon, reproposeEmitted: true)
        startEmittedRebuild(s, anchor: anchor)
        awaitingApp = [:]
        // Persisted at once (the DAG and the disk now follow the new horizon), marked: a restart
        // before the rebuild resumes it instead of trusting an emitted list.
        var marked = s
        marked.emitted = []
        marked.rebuildEmitted = true
        lastSnapshot = marked
        newSnapshot = marked
        previousSnapshotHorizon = horizon
        schedulePrune()
        metrics.stateSyncs += 1
        stateRequestTargets = []
        out.append(.stateSynced(checkpoint: c, app: s.app))
        drainSuspended(now: now, full: true)
        dirtyDag = true
    }

    /// `emitted` of an installed snapshot waits for L_k (the committer is gated meanwhile).
    mutating func startEmittedRebuild(_ s: CoreSnapshot, anchor: SyncAnchor) {
        emitted = []
        emittedDigestsPending = []
        syncAnchor = anchor.records.last!.leader
        syncEmitted = [:]
        for rec in anchor.records { for b in rec.blocks { syncEmitted[b.digest] = b } }
        var unmarked = s
        unmarked.rebuildEmitted = false
        syncSnapshot = unmarked
        recentCommits = []
        var rh = anchor.seed
        for rec in anchor.records {
            recentCommits.append((rh, rec))
            rh = SyncAnchor.next(rh, rec)
        }
    }

    /// Once L_k of an installed snapshot is in the DAG (with its whole history above the horizon:
    /// the DAG is causally complete), emitted ∩ window = (history(L_k) − P) ∪ the blocks commits
    /// k−1 and k emitted (see `SyncAnchor`). Those not held yet are matched by digest when they
    /// arrive (a ref's round is not covered by runningHash). Then the snapshot is persisted.
    ///
    /// Design deviation (10.3): the design fetches every commit record from R_k − gcDepth to
    /// rebuild emitted; this uses only records k−1 and k, plus the argument that every committed
    /// L_j with R_j ≤ R_k − 2 lies in history(L_k): L_j has Q supporters at R_j + 1, any block
    /// of round ≥ R_j + 2 (L_k's history reaches one) has Q parents there, and two quorums meet
    /// in an honest author, whose round-(R_j + 1) block links L_j. So only commit k−1 (and k)
    /// can have emitted blocks outside history(L_k), and those two records carry them.
    mutating func resolveSyncAnchor() {
        guard let anchor = syncAnchor, dag.contains(anchor), var s = syncSnapshot else { return }
        var derived = dag.history(from: [anchor], floor: max(horizon, 1)).subtracting(pendingP)
        var held: [Digest: BlockRef] = [:]
        for r in dag.blocks.keys where syncEmitted[r.digest] != nil { held[r.digest] = r }
        var stored = Set<BlockRef>()
        for (d, claimedRef) in syncEmitted {
            if let r = held[d] {
                derived.insert(r)
            } else {
                emittedDigestsPending.insert(d)
                stored.insert(claimedRef)
            }
        }
        derived.subtract(pendingP)
        // A claimed round outside [horizon, R_k] is no emitted block of the window (commit j ≤ k
        // emits rounds ≤ R_j): not stored, only matched by digest.
        let window = derived.filter { $0.round >= horizon }.union(
            stored.filter { $0.round >= horizon && $0.round <= s.leaderRound })
        if !s.emitted.isEmpty && window != Set(s.emitted) { metrics.stateEmittedMismatches += 1 }
        emitted = derived
        for r in derived { nonEmptyUnemitted.remove(r); dag.dropPayload(r) }
        s.emitted = window.sorted()
        lastSnapshot = s
        newSnapshot = s
        emittedPendingUntil = s.leaderRound
        syncAnchor = nil
        syncEmitted = [:]
        syncSnapshot = nil
    }
}
