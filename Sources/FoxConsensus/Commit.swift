// The commit rule (section 6), fair linearization (section 7) and garbage collection (11).
public enum SlotStatus: Equatable, Sendable {
    case undecided
    case skip
    case commit(BlockRef)
}

extension ConsensusCore {
    func supports(_ v: BlockRef, _ b: BlockRef) -> Bool {
        guard v.round == b.round + 1, let d = dag[v] else { return false }
        return d.block.parents.contains(b)
    }

    /// C.round = B.round + 2 and the parents of C supporting B come from ≥ Q authors.
    func isCertificate(_ c: BlockRef, for b: BlockRef) -> Bool {
        guard c.round == b.round + 2, let d = dag[c] else { return false }
        var seen = [Bool](repeating: false, count: n); var count = 0
        for p in d.block.parents where p.round == b.round + 1 && !seen[Int(p.author)] && supports(p, b) {
            seen[Int(p.author)] = true; count += 1
        }
        return count >= q
    }

    func slotBlocks(_ r: UInt64) -> [BlockRef] { dag.slot(Slot(author: committee.leader(r), round: r)).sorted() }

    /// The direct rule for the slot of round r: skip, commit, or nil (undecided directly).
    /// Two directly committed blocks of one slot (a conflict) read as nil here; the committer
    /// pass halts on them through `directDecision`.
    func directStatus(_ r: UInt64) -> SlotStatus? {
        switch directDecision(r) {
        case .decided(let s): return s
        case .none, .conflict: return nil
        }
    }

    enum DirectDecision: Equatable {
        case none
        case decided(SlotStatus)
        /// Several blocks of the slot each have ≥ Q certifying authors: the fault bound is broken
        /// (section 6: two blocks of one slot cannot each gather Q supporters).
        case conflict([BlockRef])
    }

    func directDecision(_ r: UInt64) -> DirectDecision {
        let leader = committee.leader(r)
        var blame = [Bool](repeating: false, count: n); var blamers = 0
        for v in dag.refs(at: r + 1) where !blame[Int(v.author)] {
            guard let d = dag[v] else { continue }
            if !d.block.parents.contains(where: { $0.round == r && $0.author == leader }) {
                blame[Int(v.author)] = true; blamers += 1
            }
        }
        if blamers >= q { return .decided(.skip) }
        var committed: [BlockRef] = []
        for b in slotBlocks(r) {
            var cert = [Bool](repeating: false, count: n); var certifiers = 0
            for c in dag.refs(at: r + 2) where !cert[Int(c.author)] && isCertificate(c, for: b) {
                cert[Int(c.author)] = true; certifiers += 1
            }
            if certifiers >= q { committed.append(b) }
        }
        if committed.count > 1 { return .conflict(committed) }
        return committed.first.map { .decided(.commit($0)) } ?? DirectDecision.none
    }

    /// The committer pass (idempotent). Decides slots, extends the decided prefix, linearizes.
    mutating func runCommitter(now: UInt64, out: inout [Output]) {
        while true {
            resolveSyncAnchor()
            let d = decidedRound
            let h = dag.highestRound
            guard h >= d.plusSaturating(3) else { return }
            let top = h - 2
            var status = [SlotStatus](repeating: .undecided, count: Int(top - d))
            func idx(_ r: UInt64) -> Int { Int(r - d - 1) }
            var r = top
            while r >= d + 1 {
                let direct = directDecision(r)
                if case .conflict(let blocks) = direct {
                    halt(
                        "commit rule: blocks \(blocks.map(\.description).joined(separator: ", ")) of slot \(r) are each directly committed; fault bound broken",
                        out: &out)
                    return
                }
                if case .decided(let s) = direct {
                    status[idx(r)] = s
                } else {
                    // Indirect rule: the first decided-commit anchor above r + 2.
                    var result: SlotStatus = .undecided
                    var a = r + 3
                    walk: while a <= top {
                        switch status[idx(a)] {
                        case .skip: a += 1; continue walk
                        case .undecided: result = .undecided; break walk
                        case .commit(let anchor):
                            let hist = dag.history(from: [anchor], floor: r + 2)
                            var qualifying: [BlockRef] = []
                            for b in slotBlocks(r) {
                                if hist.contains(where: { $0.round == r + 2 && isCertificate($0, for: b) }) {
                                    qualifying.append(b)
                                }
                            }
                            if qualifying.count > 1 {
                                halt("commit rule: two blocks of slot \(r) qualify; fault bound broken", out: &out);
                                return
                            }
                            result = qualifying.first.map { .commit($0) } ?? .skip
                            break walk
                        }
                    }
                    status[idx(r)] = result
                }
                r -= 1
            }
            // Extend the decided prefix with the longest decided run.
            var progressed = false
            var rr = d + 1
            while rr <= top {
                let s = status[idx(rr)]
                if s == .undecided { break }
                if case .commit(let leader) = s {
                    // Never linearize with a block of P missing (after a state sync it is
                    // fetched first): emission and the fair keys would differ.
                    if syncAnchor != nil || pendingP.contains(where: { !dag.contains($0) }) { break }
                    linearize(leader: leader, now: now, out: &out)
                    if isHalted { return }
                } else {
                    metrics.skippedSlots += 1
                }
                decidedRound = rr
                progressed = true
                rr += 1
            }
            collectGarbage()
            if !progressed { return }
            // A new horizon may release suspended blocks; loop in case they decide more.
            let before = dag.count
            drainSuspended(now: now, full: true)
            if dag.count == before { return }
        }
    }

    /// Linearizes commit k = commitIndex + 1 with leader L (section 7): orders the window's part
    /// of history(L_k) that is not yet emitted (fair or plain), emits it, then records the commit
    /// and, every K commits, the checkpoint (10.3).
    mutating func linearize(leader: BlockRef, now: UInt64, out: inout [Output]) {
        let k = commitIndex + 1
        let leaderRound = leader.round
        let gcK = k == 1 ? 0 : lastLeaderRound.minusSaturating(gcDepth)
        let hist = dag.history(from: [leader], floor: max(gcK, 1)) { self.emitted.contains($0) }
        let gcNext = leaderRound.minusSaturating(gcDepth)
        var order: [BlockRef] = []
        var forced = 0
        if !committee.params.fairMode {
            order = hist.sorted()
        } else {
            enterP(hist, leaderRound: leaderRound)
            order = forcedEmission(below: gcNext)
            forced = order.count
            order += fairOrder(hist.filter { $0.round >= gcNext }.sorted())
            checkReadinessBound(emitted: order, leaderRound: leaderRound)
            assert(!pendingP.contains { $0.round < gcNext }, "P holds only rounds ≥ gcRound_{k+1}")
        }
        metrics.forcedEmissions += forced
        let applied = emit(order, leader: leader)
        advanceCommitTime(leader)
        commitIndex = k
        lastLeaderRound = leaderRound
        metrics.commits += 1
        let sub = CommittedSubDag(
            index: k, leader: leader, blocks: order, runningHash: runningHash,
            pending: pendingP.sorted(), forcedCount: forced, commitTime: commitTime)
        if let stored = storedCommitHashes[k], stored != runningHash {
            halt("replay: runningHash mismatch at commit \(k)", out: &out); return
        }
        let (checkpoint, checkpointDue) = checkpointIfDue(k, leaderRound: leaderRound, gcNext: gcNext)
        if !replaying { newCommitRecords.append(sub) }
        out.append(
            .deliver(
                Delivery(
                    subDag: sub, applied: applied, checkpoint: checkpoint, txn: 0, replayed: replaying,
                    checkpointDue: checkpointDue)))
    }

    /// Step 1: P := P ∪ (history(L_k) ∩ window) minus emitted (`hist` holds no emitted block).
    mutating func enterP(_ hist: Set<BlockRef>, leaderRound: UInt64) {
        for b in hist where !pendingP.contains(b) { pendingP.insert(b); enteredP[b] = leaderRound }
    }

    /// Step 2, forced emission: the blocks of P below gcRound_{k+1}, in ref order, no fair key.
    mutating func forcedEmission(below gcNext: UInt64) -> [BlockRef] {
        let forcedList = pendingP.filter { $0.round < gcNext }.sorted()
        for b in forcedList { pendingP.remove(b) }
        return forcedList
    }

    /// Steps 3-6 over `hs` (history(L_k) \ emitted at rounds ≥ gcRound_{k+1}, sorted): recv_a,
    /// readiness, fairTs, then the priority topological sort of the ready blocks, which leave P.
    mutating func fairOrder(_ hs: [BlockRef]) -> [BlockRef] {
        var index: [BlockRef: Int] = [:]
        for (i, b) in hs.enumerated() { index[b] = i }
        let recv = receiveTimes(hs, index: index)
        let (ready, fairTs) = fairKeys(recv, count: hs.count)
        return prioritySort(hs, index: index, ready: ready, fairTs: fairTs)
    }

    /// Step 3: recv_a(B) = the lowest timestamp of a's blocks X ∈ hs that contain B, for every
    /// author a and B ∈ hs (B counts for its own author), as `recv[a * m + b]` (.max: none).
    /// Contains-sets are bitsets built in round order.
    func receiveTimes(_ hs: [BlockRef], index: [BlockRef: Int]) -> [UInt64] {
        let m = hs.count
        let words = (m + 63) / 64
        var bits = [UInt64](repeating: 0, count: m * words)
        var recv = [UInt64](repeating: .max, count: n * m)
        for (i, x) in hs.enumerated() {
            bits[i * words + i / 64] |= 1 << UInt64(i % 64)
            let d = dag[x]!
            for p in d.block.parents {
                if let j = index[p] { for w in 0..<words { bits[i * words + w] |= bits[j * words + w] } }
            }
            let a = Int(x.author), ts = d.block.timestamp
            for w in 0..<words {
                var word = bits[i * words + w]
                while word != 0 {
                    let bit = word.trailingZeroBitCount
                    word &= word - 1
                    let b = w * 64 + bit
                    if ts < recv[a * m + b] { recv[a * m + b] = ts }
                }
            }
        }
        return recv
    }

    /// Steps 4-5: B is ready when 2f+1 authors have a recv_a(B); fairTs(B) is their lower median.
    func fairKeys(_ recv: [UInt64], count m: Int) -> (ready: [Bool], fairTs: [UInt64]) {
        var ready = [Bool](repeating: false, count: m)
        var fairTs = [UInt64](repeating: 0, count: m)
        for b in 0..<m {
            var vals: [UInt64] = []
            for a in 0..<n where recv[a * m + b] != .max { vals.append(recv[a * m + b]) }
            if vals.count >= committee.readiness {
                vals.sort()
                ready[b] = true
                fairTs[b] = vals[(vals.count - 1) / 2]
            }
        }
        return (ready, fairTs)
    }

    /// Step 6: priority topological sort (Kahn) of the ready blocks by (fairTs, ref); a block is
    /// available once its parents in `hs` are emitted. The emitted blocks leave P.
    mutating func prioritySort(
        _ hs: [BlockRef], index: [BlockRef: Int], ready: [Bool], fairTs: [UInt64]
    ) -> [BlockRef] {
        let m = hs.count
        var order: [BlockRef] = []
        var done = [Bool](repeating: false, count: m)
        var remainingParents = [Int](repeating: 0, count: m)
        var children = [[Int]](repeating: [], count: m)
        for (i, x) in hs.enumerated() where ready[i] {
            for p in dag[x]!.block.parents {
                if let j = index[p] { remainingParents[i] += 1; children[j].append(i) }
            }
        }
        var available: [Int] = []
        for i in 0..<m where ready[i] && remainingParents[i] == 0 { available.append(i) }
        func key(_ i: Int) -> (UInt64, BlockRef) { (fairTs[i], hs[i]) }
        while !available.isEmpty {
            var best = 0
            for j in 1..<available.count {
                let a = key(available[j]), b = key(available[best])
                if a.0 < b.0 || (a.0 == b.0 && a.1 < b.1) { best = j }
            }
            let i = available.remove(at: best)
            done[i] = true
            order.append(hs[i])
            pendingP.remove(hs[i])
            for c in children[i] {
                remainingParents[c] -= 1
                if remainingParents[c] == 0 && ready[c] { available.append(c) }
            }
        }
        for i in 0..<m where ready[i] { assert(done[i], "ready blocks have ready ancestors") }
        return order
    }

    /// Readiness bound (section 7): a block entering P at commit k leaves by leader round R_k + 3.
    mutating func checkReadinessBound(emitted order: [BlockRef], leaderRound: UInt64) {
        for b in order { enteredP[b] = nil }
        for (b, r) in enteredP where r.plusSaturating(3) <= leaderRound {
            metrics.readinessBoundViolations += 1
            enteredP[b] = nil
        }
    }

    /// Emits the ordered blocks: runningHash_k = SHA-256(runningHash_{k−1} ‖ L_k.digest ‖ the
    /// emitted digests), their entries through the sequencer (section 13), payloads dropped
    /// (section 11). Returns the entries applied.
    mutating func emit(_ order: [BlockRef], leader: BlockRef) -> [Entry] {
        var h = Hashing()
        h.update(runningHash); h.update(leader.digest)
        var applied: [Entry] = []
        for b in order {
            precondition(!emitted.contains(b), "a block is emitted once")
            emitted.insert(b)
            h.update(b.digest)
            if let d = dag[b] {
                for e in d.block.payload {
                    for a in sequencer.apply(e) {
                        applied.append(a)
                        if a.id.origin == me { ownUnapplied.remove(a.id) }
                    }
                }
            }
            dag.dropPayload(b)
            nonEmptyUnemitted.remove(b)
        }
        forgetPassedOwnEntries()
        recentCommits.append((runningHash, AnchorRecord(leader: leader, blocks: order)))
        if recentCommits.count > 2 { recentCommits.removeFirst() }
        runningHash = h.finalize()
        return applied
    }

    /// Own entries the sequencer has passed (applied, or dropped as copies or stale) are no
    /// longer waited for (their IDs are below its position for this origin).
    mutating func forgetPassedOwnEntries() {
        guard !ownUnapplied.isEmpty else { return }
        let o = sequencer.origins[Int(me)]
        ownUnapplied = ownUnapplied.filter {
            $0.incarnation > o.incarnation || ($0.incarnation == o.incarnation && $0.seq >= o.nextSeq)
        }
    }

    /// commitTime_k = max(commitTime_{k−1}, lower median of the timestamps of L_k's parents at
    /// round R_k − 1) (section 13).
    mutating func advanceCommitTime(_ leader: BlockRef) {
        guard let ld = dag[leader] else { return }
        var ts: [UInt64] = []
        for p in ld.block.parents where p.round + 1 == leader.round {
            if let pd = dag[p] { ts.append(pd.block.timestamp) }
        }
        ts.sort()
        if !ts.isEmpty { commitTime = max(commitTime, ts[(ts.count - 1) / 2]) }
    }

    /// Every K commits, checkpoint C_k (10.3): completed at once without application snapshots,
    /// otherwise once the host hands its snapshot (`checkpointDue`; not while replaying).
    mutating func checkpointIfDue(_ k: UInt64, leaderRound: UInt64, gcNext: UInt64) -> (Checkpoint?, Bool) {
        guard k % committee.params.checkpointInterval == 0 else { return (nil, false) }
        let core = CoreSnapshot(
            commitIndex: k, leaderRound: leaderRound, runningHash: runningHash, commitTime: commitTime,
            pending: pendingP.sorted(), emitted: emitted.filter { $0.round >= gcNext }.sorted(),
            sequencer: sequencer, checkpoint: nil,
            // Without both records (replay right after a restart from snapshot k−1) the
            // snapshot is not servable: a receiver could not rebuild emitted.
            anchor: recentCommits.count == min(Int(k), 2)
                ? SyncAnchor(seed: recentCommits[0].previous, records: recentCommits.map(\.record)) : nil)
        if !local.appSnapshots {
            return (completeCheckpoint(core, app: []), false)
        } else if !replaying {
            // C_k waits for the host's application snapshot (Input.appSnapshot).
            awaitingApp[k] = core
            if awaitingApp.count > 4, let low = awaitingApp.keys.min() { awaitingApp[low] = nil }
            return (nil, true)
        }
        return (nil, false)
    }

    /// Advances the horizon to gcRound of the next commit and drops what lies below it.
    mutating func collectGarbage() {
        let newHorizon = lastLeaderRound.minusSaturating(gcDepth)
        guard newHorizon > horizon else { return }
        advanceHorizon(to: newHorizon)
    }

    /// Moves the local horizon (section 11) up to `newHorizon`. Re-proposal first: own entries of
    /// this incarnation still waited for, in own blocks the horizon passes, go to the head of the
    /// next own block (skipping blocks this node emitted, unless `reproposeEmitted`: after a
    /// state sync the verified sequencer, not the old emitted set, says what is applied). Then
    /// the rounds below are dropped with their bookkeeping, parked blocks below are dropped and
    /// missing refs below are no longer fetched.
    mutating func advanceHorizon(to newHorizon: UInt64, reproposeEmitted: Bool = false) {
        let queued = Set(reproposals.map(\.id))
        var round = max(horizon, dag.lowestRound)
        while round < newHorizon && round <= dag.highestRound {
            for r in dag.refs(at: round)
            where r.author == me && r.round > 0 && (reproposeEmitted || !emitted.contains(r)) {
                for e in dag[r]?.block.payload ?? []
                where e.id.incarnation == incarnation && ownUnapplied.contains(e.id) && !queued.contains(e.id) {
                    reproposals.append(e)
                    metrics.reproposed += 1
                }
            }
            round += 1
        }
        if !reproposals.isEmpty { reproposals.sort { $0.id < $1.id } }
        horizon = newHorizon
        if horizon > emittedPendingUntil { emittedDigestsPending = [] }
        for r in dag.prune(below: newHorizon) {
            uncovered.remove(r); nonEmptyUnemitted.remove(r); insertedAt[r] = nil; enteredP[r] = nil
            emitted.remove(r)
            assert(!pendingP.contains(r), "forced emission keeps P above the horizon")
        }
        for r in suspended.keys.sorted() where r.round < horizon { unpark(r) }
        for r in missing.keys where r.round < horizon { missing[r] = nil; requested.remove(r) }
    }
}
