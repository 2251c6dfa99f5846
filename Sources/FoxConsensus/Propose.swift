// Block creation: the threshold clock (section 4).
extension ConsensusCore {
    /// Work to do besides the heartbeat (condition 4).
    var hasRealWork: Bool {
        !pending.isEmpty || !reproposals.isEmpty || !nonEmptyUnemitted.isEmpty || !ownUnapplied.isEmpty
    }

    func leaderTimeout() -> UInt64 {
        let shift = UInt64(min(timeoutsInARow, 20))
        let t = local.leaderTimeoutBase.multipliedReportingOverflow(by: UInt64(1) << shift)
        return t.overflow ? local.leaderTimeoutMax : min(local.leaderTimeoutMax, t.partialValue)
    }

    /// The highest r with round-r blocks from ≥ Q authors and r + 1 > lastOwnRound (condition 1).
    func thresholdCandidate() -> UInt64? {
        var r = dag.highestRound
        while r >= lastOwnRound {
            if r < dag.lowestRound { return nil }
            if dag.authorCount(at: r) >= q { return r }
            if r == 0 { return nil }
            r -= 1
        }
        return nil
    }

    /// When the next block could be created, if waiting on a timer (for `scheduleTimer`).
    func proposalDeadline(now: UInt64) -> UInt64? {
        guard let r = thresholdCandidate() else { return nil }
        var t: UInt64 = now
        if let last = lastBlockTime { t = max(t, last.plusSaturating(local.minRoundInterval)) }
        if !hasRealWork {
            guard idleHeartbeats < config.maxIdleHeartbeats else { return nil }
            t = max(t, (lastBlockTime ?? 0).plusSaturating(local.heartbeat))
        }
        if r > 0 && !leaderPresent(r) {
            let since = thresholdRound == r ? thresholdSince : now
            t = max(t, since.plusSaturating(leaderTimeout()))
        }
        return t
    }

    func leaderPresent(_ r: UInt64) -> Bool { !dag.slot(Slot(author: committee.leader(r), round: r)).isEmpty }

    mutating func tryPropose(now: UInt64, out: inout [Output]) {
        guard let r = thresholdCandidate() else { return }
        if thresholdRound != r { thresholdRound = r; thresholdSince = now }
        // Condition 2: the leader's block, or the timeout.
        var timedOut = false
        if r > 0 && !leaderPresent(r) {
            guard now >= thresholdSince.plusSaturating(leaderTimeout()) else { return }
            timedOut = true
        }
        // Condition 3.
        if let last = lastBlockTime, now < last.plusSaturating(local.minRoundInterval) { return }
        // Condition 4.
        let real = hasRealWork
        if !real {
            guard idleHeartbeats < config.maxIdleHeartbeats,
                now >= (lastBlockTime ?? 0).plusSaturating(local.heartbeat)
            else { return }
        }
        propose(round: r + 1, now: now, out: &out)
        if timedOut { timeoutsInARow += 1; metrics.leaderTimeouts += 1 } else { timeoutsInARow = 0 }
        idleHeartbeats = real ? 0 : idleHeartbeats + 1
    }

    mutating func propose(round: UInt64, now: UInt64, out: inout [Output]) {
        precondition(round > lastOwnRound, "never sign twice for a round")
        precondition(mode == .active)
        let floor = max(horizon, 1)
        // 1. One round-(r) block per author: the first received.
        var parents: [BlockRef] = []
        for a in 0..<n {
            if let first = dag.slot(Slot(author: UInt16(a), round: round - 1)).first { parents.append(first) }
        }
        // 2. The own parent.
        if !parents.contains(where: { $0.author == me }), let own = lastOwnRef, own.round >= floor, dag.contains(own) {
            parents.append(own)
        }
        // 3. Weak links: uncovered blocks not in the history of (1) ∪ (2), oldest first.
        var covered = dag.history(from: parents, floor: floor) { !self.uncovered.contains($0) }
        var slotsTaken = Set<Slot>()
        for p in parents { slotsTaken.insert(p.slot) }
        for r in covered { slotsTaken.insert(r.slot) }
        var weak: [BlockRef] = []
        let maxWeak = committee.maxWeakLinks
        if !uncovered.isEmpty {
            for c in uncovered.sorted() where weak.count < maxWeak {
                guard c.round < round - 1 || (c.round == round - 1 && !slotsTaken.contains(c.slot)) else { continue }
                if covered.contains(c) || c.author == me || c.round < floor { continue }
                if slotsTaken.contains(c.slot) { continue }
                // Skip a slot that already has another (covered) block in my history.
                // Such a block (an equivocation's second block) is never linked by this node, so
                // it is no work of this node's either: left in nonEmptyUnemitted it kept
                // hasRealWork true until the horizon passed it, and the node never went idle
                // (byz-badParents n=4 seed 200). A leader's history may still emit it.
                if dag.slot(c.slot).contains(where: { $0 != c && !uncovered.contains($0) }) {
                    nonEmptyUnemitted.remove(c)
                    continue
                }
                weak.append(c)
                slotsTaken.insert(c.slot)
                covered.formUnion(dag.history(from: [c], floor: floor) { !self.uncovered.contains($0) })
            }
        }
        parents.append(contentsOf: weak)
        parents.sort()
        // Timestamp: max(local clock, own parent + 1).
        var ts = now
        if let own = parents.first(where: { $0.author == me }), let d = dag[own] {
            ts = max(ts, d.block.timestamp.plusSaturating(1))
        }
        // Payload: re-proposals first, then the queue in seq order.
        var payload: [Entry] = []
        var size = 4
        let budget = committee.params.maxBlockBytes
        while let e = reproposals.first, size + e.encodedSize <= budget {
            payload.append(e); size += e.encodedSize; reproposals.removeFirst()
        }
        var taken = 0
        for e in pending {
            if size + e.encodedSize > budget { break }
            payload.append(e); size += e.encodedSize; taken += 1
        }
        if taken > 0 {
            for e in pending.prefix(taken) { pendingBytes -= e.encodedSize }
            pending.removeFirst(taken)
        }
        var block = Block(
            epoch: committee.epoch, round: round, author: me, timestamp: ts, parents: parents,
            payloadDigest: BlockCodec.payloadDigest(payload), attestation: lastCheckpoint,
            payload: payload, signature: [])
        let digest = block.digest
        block.signature = signer.sign(digest)
        assert((try? BlockValidator.checkStructure(block, committee: committee)) != nil, "own block must be valid")
        let bytes = BlockCodec.encode(block)
        let ref = BlockRef(round: round, author: me, digest: digest)
        lastOwnRound = round
        lastOwnRef = ref
        lastBlockTime = now
        metrics.blocksProposed += 1
        insert(block, ref: ref, bytes: bytes, now: now)
        // What the new block covers leaves the uncovered set.
        for r in dag.history(from: [ref], floor: floor, stop: { $0 != ref && !self.uncovered.contains($0) }) {
            uncovered.remove(r)
        }
        ownBlockThisStep = bytes
        // The committer may now advance (own block counts toward certificates).
        runCommitter(now: now, out: &out)
    }
}
