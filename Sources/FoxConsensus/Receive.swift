// Receiving messages and blocks (sections 5, 10.2, 10.4).
extension ConsensusCore {
    mutating func handleMessage(from: UInt16, bytes: [UInt8], now: UInt64, out: inout [Output]) {
        let msg: Message
        do { msg = try Message.decode(bytes, maxBlockBytes: committee.params.maxBlockBytes) } catch {
            metrics.decodeErrors += 1; return
        }
        switch msg {
        case .block(let b):
            receiveBlock(b, from: from, fetched: false, now: now, out: &out)
        case .blocks(let bs):
            for b in bs.prefix(local.maxBlocksPerResponse * 2) {
                receiveBlock(b, from: from, fetched: true, now: now, out: &out)
                if isHalted { return }
            }
        case .fetch(let refs):
            serveBlocks(to: from, refs: Array(refs.prefix(local.maxRefsPerFetch)), out: &out)
        case .status(let rounds):
            guard rounds.count == n else { metrics.decodeErrors += 1; return }
            notePeerStatus(from: from, rounds: rounds)
            pushBlocks(to: from, theirRounds: rounds, now: now, out: &out)
            peerClaims[Int(from)] = rounds.max() ?? 0
            maybeRequestState(now: now, out: &out)
            // Ahead of us somewhere: tell them where we are, at most once per sync interval. Also
            // when they are beyond our window: a lagging node starts state sync only once V
            // peers announce it (an idle cluster sends no statuses of its own).
            let behind = (0..<n).contains { rounds[$0] > dag.latestRound[$0] }
            let farBehind = peerClaims[Int(from)].plusSaturating(gcDepth) < dag.highestRound
            if behind || farBehind,
                now >= lastStatusReply[Int(from)].plusSaturating(local.syncInterval) || lastStatusReply[Int(from)] == 0
            {
                lastStatusReply[Int(from)] = max(now, 1)
                statusSentAt[Int(from)] = max(now, 1)
                out.append(.send(to: from, bytes: Message.status(dag.latestRound).encode()))
            }
        case .recoverQuery:
            let ownRound = mode == .active ? lastOwnRound : (mode == .recovering ? 0 : lastOwnRound)
            var block: [UInt8]? = nil
            let r = dag.latestRound[Int(from)]
            if r > 0, let ref = dag.slot(Slot(author: from, round: r)).first {
                if let d = dag[ref], !d.bytes.isEmpty {
                    block = d.bytes
                } else {
                    // Emitted: its bytes are on disk only (10.4: answered from the store).
                    out.append(
                        .read(StoreRead(peer: from, refs: [ref], purpose: .recoverAnswer(lastOwnRound: ownRound))))
                    break
                }
            }
            out.append(.send(to: from, bytes: Message.recoverAnswer(lastOwnRound: ownRound, block: block).encode()))
        case .stateRequest(let k):
            serveState(to: from, theirIndex: k, out: &out)
        case .stateResponse(let snap, let proof):
            receiveState(from: from, snapshot: snap, proof: proof, now: now, out: &out)
        case .recoverAnswer(let last, let block):
            guard mode == .recovering else { return }
            if recoveryAnswers[from] == nil { recoveryAnswers[from] = (last, block) }
            finishRecoveryIfReady(now: now, out: &out)
        }
    }

    /// Push: the blocks a peer lacks, lowest rounds first, skipping blocks inserted less than half
    /// a sync interval ago (probably still in flight to it).
    mutating func pushBlocks(to peer: UInt16, theirRounds: [UInt64], now: UInt64, out: inout [Output]) {
        var refs: [BlockRef] = []
        for a in 0..<n where dag.latestRound[a] > theirRounds[a] {
            var r = max(theirRounds[a] + 1, max(horizon, 1))
            while r <= dag.latestRound[a] && refs.count < local.maxBlocksPerResponse * 2 {
                for ref in dag.slot(Slot(author: UInt16(a), round: r)) {
                    if let t = insertedAt[ref], t.plusSaturating(local.syncInterval / 2) > now { continue }
                    refs.append(ref)
                }
                r += 1
            }
        }
        guard !refs.isEmpty else { return }
        refs.sort()
        serveBlocks(to: peer, refs: Array(refs.prefix(local.maxBlocksPerResponse)), out: &out)
    }

    /// A sync response (10.2): blocks whose bytes are in memory (not emitted yet) at once; the
    /// rest (emitted, or below the horizon) from the store through the host (`Output.read`).
    mutating func serveBlocks(to peer: UInt16, refs: [BlockRef], out: inout [Output]) {
        var found: [[UInt8]] = []
        var foundBytes = 0
        var fromStore: [BlockRef] = []
        for r in refs where r.round > 0 {
            if let d = dag[r] {
                if d.bytes.isEmpty {
                    fromStore.append(r)
                } else if found.isEmpty || foundBytes + d.bytes.count <= local.maxResponseBytes {
                    found.append(d.bytes)
                    foundBytes += d.bytes.count
                }
            } else if r.round < horizon {
                fromStore.append(r)
            }
        }
        if !found.isEmpty {
            metrics.blocksServed += found.count
            out.append(.send(to: peer, bytes: Message.blocks(found).encode()))
        }
        if !fromStore.isEmpty { out.append(.read(StoreRead(peer: peer, refs: fromStore, purpose: .blocks))) }
    }

    /// The host's answer to `Output.read`.
    mutating func answerRead(_ request: StoreRead, blocks: [[UInt8]], out: inout [Output]) {
        guard Int(request.peer) < n, request.peer != me else { return }
        switch request.purpose {
        case .blocks:
            var chosen: [[UInt8]] = []
            var chosenBytes = 0
            for block in blocks.prefix(local.maxBlocksPerResponse) {
                if !chosen.isEmpty && chosenBytes + block.count > local.maxResponseBytes { break }
                chosen.append(block)
                chosenBytes += block.count
            }
            guard !chosen.isEmpty else { return }
            metrics.blocksServed += chosen.count
            metrics.blocksServedFromStore += chosen.count
            out.append(.send(to: request.peer, bytes: Message.blocks(chosen).encode()))
        case .recoverAnswer(let last):
            let msg = Message.recoverAnswer(lastOwnRound: last, block: blocks.first)
            out.append(.send(to: request.peer, bytes: msg.encode()))
        }
    }

    mutating func receiveBlock(_ bytes: [UInt8], from: UInt16, fetched: Bool, now: UInt64, out: inout [Output]) {
        let block: Block, digest: Digest
        do {
            (block, digest) = try BlockValidator.validate(bytes, committee: committee, verifier: verifier)
        } catch let e as ValidationError {
            metrics.invalidBlocks += 1; metrics.invalidByRule[e.rule] += 1; return
        } catch { metrics.invalidBlocks += 1; return }
        let ref = BlockRef(round: block.round, author: block.author, digest: digest)
        if ref.round < horizon { metrics.belowHorizon += 1; return }
        if dag.contains(ref) || suspended[ref] != nil { metrics.duplicates += 1; return }
        // Flood bound: far above everything held.
        // (After a state sync the decided prefix, not the old DAG, is where this node stands.)
        if ref.round > max(dag.highestRound, decidedRound).plusSaturating(gcDepth) {
            metrics.suspendedDropped += 1; return
        }
        let solicited = fetched && requested.contains(ref)
        // Stale-store tripwire (10.4).
        if mode == .active {
            if ref.author == me && ref.round > lastOwnRound {
                halt("tripwire: own block at round \(ref.round) > lastOwnRound \(lastOwnRound)", out: &out); return
            }
            // A parent ref to an unknown own block is not proof (any Byzantine block can carry
            // one): it is fetched like any missing parent, and only a block signed by this node
            // at a round > lastOwnRound, or a second signed own block in one slot, halts.
        }
        // Equivocation: keep the first block received unsolicited.
        var slotBlocks = dag.slot(ref.slot)
        let parked = suspendedByAuthor[Int(ref.author)]
        var i = Self.lowerBound(parked, BlockRef(round: ref.round, author: ref.author, digest: .zero))
        while i < parked.count && parked[i].round == ref.round { slotBlocks.append(parked[i]); i += 1 }
        if let other = slotBlocks.first(where: { $0 != ref }) {
            if !evidenceSlots.contains(ref.slot) && evidence.count < local.maxEvidence {
                evidenceSlots.insert(ref.slot)
                evidence.append(EquivocationEvidence(slot: ref.slot, first: other.digest, second: ref.digest))
                metrics.equivocations += 1
            }
            if ref.author == me && mode == .active {
                halt("tripwire: two own blocks at round \(ref.round)", out: &out); return
            }
            if !solicited { return }
        }
        let missingParents = block.parents.filter { $0.round >= horizon && !dag.contains($0) }
        if missingParents.isEmpty {
            insert(block, ref: ref, bytes: bytes, now: now)
            drainSuspended(now: now)
        } else {
            park(block, ref: ref, bytes: bytes, from: from, missing: missingParents, now: now, out: &out)
        }
    }

    mutating func park(
        _ b: Block, ref: BlockRef, bytes: [UInt8], from: UInt16, missing parents: [BlockRef],
        now: UInt64, out: inout [Output]
    ) {
        let a = Int(ref.author)
        // Per-author quota full: the author's highest-round parked blocks give way to a lower
        // one. Sync proceeds bottom-up, so the lowest rounds are the ones that unblock the DAG;
        // without this a Byzantine author filling its quota with far-ahead blocks whose parents
        // never resolve locks out its own genuine blocks, and with them every honest block
        // that names one as a parent (liveness: byz-flood n=7 seeds 202, 212, 218, 236).
        // Only the same author's blocks are evicted; an evicted block that is still needed
        // is fetched again (retryFetches).
        let perAuthorCount = max(16, local.maxSuspendedBlocks / n)
        while suspendedBytesByAuthor[a] + bytes.count > local.maxSuspendedBytesPerAuthor
            || suspendedCountByAuthor[a] >= perAuthorCount
        {
            guard let victim = suspendedByAuthor[a].last, victim.round > ref.round else { break }
            unpark(victim)
            metrics.suspendedEvicted += 1
        }
        if suspended.count >= local.maxSuspendedBlocks || suspendedBytes + bytes.count > local.maxSuspendedBytes
            || suspendedBytesByAuthor[a] + bytes.count > local.maxSuspendedBytesPerAuthor
            || suspendedCountByAuthor[a] >= perAuthorCount
        {
            metrics.suspendedDropped += 1; return
        }
        suspended[ref] = (b, bytes, from)
        suspendedBytes += bytes.count
        suspendedBytesByAuthor[a] += bytes.count
        suspendedCountByAuthor[a] += 1
        suspendedByAuthor[a].insert(ref, at: Self.lowerBound(suspendedByAuthor[a], ref))
        for p in parents { waiters[p, default: []].append(ref) }
        var ask: [BlockRef] = []
        for p in parents where suspended[p] == nil {
            requested.insert(p)
            if missing[p] == nil { missing[p] = (now, 0, from); ask.append(p) }
        }
        if !ask.isEmpty {
            metrics.fetchesSent += 1
            out.append(
                .send(to: from, bytes: Message.fetch(Array(ask.sorted().prefix(local.maxRefsPerFetch))).encode()))
        }
    }

    mutating func unpark(_ ref: BlockRef) {
        guard let s = suspended.removeValue(forKey: ref) else { return }
        suspendedBytes -= s.bytes.count
        suspendedBytesByAuthor[Int(ref.author)] -= s.bytes.count
        suspendedCountByAuthor[Int(ref.author)] -= 1
        let a = Int(ref.author)
        let i = Self.lowerBound(suspendedByAuthor[a], ref)
        if i < suspendedByAuthor[a].count && suspendedByAuthor[a][i] == ref { suspendedByAuthor[a].remove(at: i) }
    }

    /// First index whose element is not below `x` (`a` sorted).
    static func lowerBound(_ a: [BlockRef], _ x: BlockRef) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    mutating func insert(_ b: Block, ref: BlockRef, bytes: [UInt8], now: UInt64) {
        if Int(ref.author) < n, ref.round > dag.latestRound[Int(ref.author)] { heldRoundsChanged() }
        dag.insert(b, ref: ref, bytes: bytes)
        insertedAt[ref] = now
        notDurable.append((ref, bytes))
        if ref.author != me { uncovered.insert(ref) }
        if !emittedDigestsPending.isEmpty, emittedDigestsPending.remove(ref.digest) != nil {
            emitted.insert(ref)
            dag.dropPayload(ref)
        } else if !b.payload.isEmpty {
            nonEmptyUnemitted.insert(ref)
        }
        requested.remove(ref)
        missing[ref] = nil
        if let w = waiters.removeValue(forKey: ref) { wakeQueue.append(contentsOf: w) }
        insertedSinceStatus = true
        dirtyDag = true
        if let c = b.attestation { recordAttestation(c, author: ref.author, bytes: bytes) }
    }

    /// Re-examines parked blocks whose missing parents arrived (causal order), or the whole
    /// buffer when `full` (the horizon moved).
    mutating func drainSuspended(now: UInt64, full: Bool = false) {
        if full {
            wakeQueue.append(contentsOf: suspended.keys.sorted())
            for r in waiters.keys where r.round < horizon { waiters[r] = nil }
        }
        while !wakeQueue.isEmpty {
            let batch = wakeQueue.sorted()
            wakeQueue = []
            for ref in batch {
                guard let s = suspended[ref] else { continue }
                if ref.round < horizon { unpark(ref); continue }
                if s.block.parents.allSatisfy({ $0.round < horizon || dag.contains($0) }) {
                    unpark(ref)
                    if !dag.contains(ref) { insert(s.block, ref: ref, bytes: s.bytes, now: now) }
                }
            }
        }
        if suspended.isEmpty { waiters = [:] }
    }

    /// Missing parents not delivered within a sync interval are asked from the next peer.
    mutating func retryFetches(now: UInt64, out: inout [Output]) {
        // Forget refs no parked block needs any more.
        var needed = Set<BlockRef>()
        for (_, s) in suspended {
            for p in s.block.parents where p.round >= horizon && !dag.contains(p) { needed.insert(p) }
        }
        for p in pendingP where p.round >= horizon && !dag.contains(p) { needed.insert(p) }
        if let a = syncAnchor, !dag.contains(a) { needed.insert(a) }
        for r in missing.keys where !needed.contains(r) { missing[r] = nil; requested.remove(r) }
        var byPeer: [UInt16: [BlockRef]] = [:]
        for r in needed.sorted() {
            var m = missing[r] ?? (0, 0, UInt16(0))
            requested.insert(r)
            guard m.lastAsked == 0 || now >= m.lastAsked.plusSaturating(local.syncInterval) else { continue }
            m.attempts += 1
            var target = UInt16((Int(m.from) + m.attempts) % n)
            if target == me { target = UInt16((Int(target) + 1) % n) }
            m.lastAsked = max(now, 1)
            missing[r] = m
            byPeer[target, default: []].append(r)
        }
        for peer in byPeer.keys.sorted() {
            metrics.fetchesSent += 1
            out.append(
                .send(to: peer, bytes: Message.fetch(Array(byPeer[peer]!.prefix(local.maxRefsPerFetch))).encode()))
        }
    }

    // MARK: amnesia recovery (10.4)

    mutating func broadcastRecoveryQuery(now: UInt64, out: inout [Output]) {
        lastRecoveryQuery = max(now, 1)
        let q = Message.recoverQuery.encode()
        for p in 0..<n where UInt16(p) != me && recoveryAnswers[UInt16(p)] == nil {
            out.append(.send(to: UInt16(p), bytes: q))
        }
    }

    mutating func finishRecoveryIfReady(now: UInt64, out: inout [Output]) {
        let need = 2 * committee.f + 1
        guard recoveryAnswers.count >= min(need, n - 1) else { return }
        var maxA: UInt64 = 0, maxB: UInt64 = 0
        var best: [UInt8]? = nil
        // Cross-check (b), a HEURISTIC: section 10.4 takes the plain max of the (b) claims and
        // gives no cap. Without one, a single Byzantine answer of ~UInt64.max stalls this node
        // for good (it may never sign at or below lastOwnRound; byz-recoveryInflater).
        // The rule used: among ≥ 2f+1 answers at most f are Byzantine, so the (f+1)-th highest
        // claim is ≤ some honest claim; a claim more than gcDepth above it is backed by at most
        // f answerers, all possibly lying, and is dropped (counted in recoveryClaimsDropped).
        // Why gcDepth: honest nodes that take part in the DAG are within the window of each
        // other (a node further behind can no longer block-sync and must state-sync first), so
        // gcDepth is the largest honest spread the window admits.
        // The price: 10.4's safety argument needs only ONE honest answerer with
        // lastOwnRound ≥ R*−1 (R* = the forgotten block's round). If that answerer is the only
        // high one, f answerers lie low and the rest are honest but more than gcDepth behind,
        // its claim is dropped and this node could sign at R* again. That needs an honest node
        // out of the window while answering, i.e. beyond the design's fault assumptions; the
        // stale-store tripwire still halts the node once the forgotten own block itself
        // arrives (e.g. fetched as the parent of a block naming it) before it signs that round
        // again. (a) is a signed own block and needs no cross-check.
        let claims = recoveryAnswers.values.map(\.lastOwnRound).sorted(by: >)
        let fPlus1th = claims.count > committee.f ? claims[committee.f] : (claims.last ?? 0)
        let cap = fPlus1th.plusSaturating(gcDepth)
        for peer in recoveryAnswers.keys.sorted() {
            let a = recoveryAnswers[peer]!
            if a.lastOwnRound > cap { metrics.recoveryClaimsDropped += 1 } else { maxB = max(maxB, a.lastOwnRound) }
            if let bytes = a.block,
                let (b, d) = try? BlockValidator.validate(bytes, committee: committee, verifier: verifier),
                b.author == me
            {
                if b.round > maxA { maxA = b.round; best = bytes }
                let ref = BlockRef(round: b.round, author: me, digest: d)
                if !dag.contains(ref) && ref.round >= horizon {
                    if b.parents.allSatisfy({ $0.round < horizon || dag.contains($0) }) {
                        insert(b, ref: ref, bytes: bytes, now: now)
                    } else {
                        park(
                            b, ref: ref, bytes: bytes, from: peer,
                            missing: b.parents.filter { !dag.contains($0) && $0.round >= horizon },
                            now: now, out: &out)
                    }
                }
            }
        }
        _ = best
        let candidate = max(maxA, maxB.plusSaturating(1))
        lastOwnRound = max(lastOwnRound, candidate)
        let ownRefs = dag.slot(Slot(author: me, round: maxA))
        lastOwnRef = maxA > 0 ? ownRefs.first : nil
        restoredFlag = false
        metaDirty = true
        recoveryAnswers = [:]
        mode = .awaitingRecoveryPersist(0)
    }
}
