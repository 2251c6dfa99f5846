import FoxConsensus

// Byzantine behaviours (at most f nodes): output filters on an honest core, plus extra traffic.
extension Simulator {
    func byzantineFilter(_ kind: ByzantineKind, from: Int, twin: Int, to: Int, _ bytes: [UInt8]) -> [(Int, [UInt8])] {
        let type = bytes.count > 1 ? bytes[1] : 0
        switch kind {
        case .twins:
            let inGroupA = (to + from) % 2 == 0
            if (twin == 0) == inGroupA || rng.chance(0.25) { return [(to, bytes)] }
            return []
        case .withhold:
            if type == 1 { return to == (from + 1) % n ? [(to, bytes)] : [] }
            return [(to, bytes)]
        case .silent:
            return []
        case .lyingSync:
            switch type {
            case 2:
                switch rng.below(3) {
                case 0:
                    var b = bytes; if b.count > 10 { b[b.count / 2] ^= 0xFF }; return [(to, b)]
                case 1:
                    let old =
                        nodes[from].seenBlocks.isEmpty
                        ? [] : [blockBytes(rng.pick(nodes[from].seenBlocks))].compactMap { $0 }
                    return [(to, Message.blocks(old).encode())]
                default:
                    return [(to, Message.blocks([]).encode())]
                }
            case 6:
                return [(to, Message.recoverAnswer(lastOwnRound: 0, block: nil).encode())]
            case 8:
                return [(to, doctoredStateResponse(bytes) ?? bytes)]
            default:
                return [(to, bytes)]
            }
        case .recoveryInflater:
            switch type {
            case 6:
                let huge = UInt64.max / 2 + (rng.next() >> 8)
                return [(to, Message.recoverAnswer(lastOwnRound: huge, block: nil).encode())]
            default:
                return [(to, bytes)]
            }
        case .forge, .badParents, .timestampOutlier, .flood, .fakeAttestations, .stateReplay:
            return [(to, bytes)]
        }
    }

    /// A state response whose emitted list (not covered by stateDigest) is doctored, and whose
    /// anchor records claim faked rounds (within [R_k − gcDepth, R_k]) for the emitted blocks:
    /// runningHash covers their digests only. The receiver must rebuild emitted from the anchor
    /// instead of trusting the list, and match the anchor's blocks by digest, also after a
    /// restart.
    func doctoredStateResponse(_ bytes: [UInt8]) -> [UInt8]? {
        guard
            case .stateResponse(let snap, let proof)? = try? Message.decode(
                bytes, maxBlockBytes: keys.committee.params.maxBlockBytes),
            var s = try? CoreSnapshot.decode(snap, committee: keys.committee), !s.emitted.isEmpty
        else { return nil }
        s.emitted.removeLast(s.emitted.count / 2 + 1)
        if var a = s.anchor {
            let low = s.leaderRound.minusSaturating(keys.committee.params.gcDepth)
            for i in a.records.indices {
                for j in a.records[i].blocks.indices where a.records[i].blocks[j] != a.records[i].leader {
                    let r = a.records[i].blocks[j].round
                    a.records[i].blocks[j].round = r < s.leaderRound ? r + 1 : max(low, r - 1)
                }
            }
            s.anchor = a
        }
        return Message.stateResponse(snapshot: s.encode(), proof: proof).encode()
    }

    func blockBytes(_ msg: [UInt8]) -> [UInt8]? {
        if case .block(let b)? = try? Message.decode(msg, maxBlockBytes: keys.committee.params.maxBlockBytes) {
            return b
        }
        return nil
    }

    func decodeBlock(_ b: [UInt8]) -> Block? {
        let c = keys.committee
        return try? BlockCodec.decode(
            b, maxParents: c.maxParents, maxBlockBytes: c.params.maxBlockBytes, maxEntryBytes: c.maxEntryBytes)
    }

    func sendAll(from i: Int, _ bytes: [UInt8]) { for j in 0..<n where j != i { send(from: i, to: j, bytes) } }

    func signed(_ b: Block, by i: Int) -> [UInt8] {
        var b = b
        b.payloadDigest = BlockCodec.payloadDigest(b.payload)
        b.signature = keys.signers[i].sign(b.digest)
        return BlockCodec.encode(b)
    }

    func byzantineTick(_ i: Int) {
        guard nodes[i].up, let kind = nodes[i].byz else { return }
        let c = keys.committee
        let seen = nodes[i].seenBlocks.compactMap { blockBytes($0) }.compactMap { b in decodeBlock(b).map { (b, $0) } }
        guard let (rawBytes, sample) = seen.isEmpty ? nil : rng.pick(seen) else { return }
        let latest = nodes[i].cores[0]?.dag.highestRound ?? sample.round
        // Real round-(latest) refs from ≥ Q authors, for blocks that pass rule 3.
        let dag = nodes[i].cores[0]?.dag
        let prevRefs = dag?.refs(at: latest) ?? []
        func base(round: UInt64, parents: [BlockRef]) -> Block {
            Block(
                epoch: c.epoch, round: round, author: UInt16(i), timestamp: localTime(i), parents: parents,
                payloadDigest: .zero, attestation: nil, payload: [], signature: [])
        }
        switch kind {
        case .forge:
            switch rng.below(5) {
            case 0:  // flipped signature byte
                var b = rawBytes; b[b.count - 1 - Int(rng.below(64))] ^= 0x01;
                sendAll(from: i, Message.block(b).encode())
            case 1:  // changed header, old signature
                var b = sample; b.timestamp &+= 1; sendAll(from: i, Message.block(BlockCodec.encode(b)).encode())
            case 2:  // payload that does not match payloadDigest
                var b = sample
                b.payload.append(
                    Entry(id: EntryID(origin: b.author, incarnation: 1, seq: 999_999), kind: 1, body: [1, 2, 3]))
                sendAll(from: i, Message.block(BlockCodec.encode(b)).encode())
            case 3:  // non-canonical: trailing byte
                sendAll(from: i, Message.block(rawBytes + [0]).encode())
            default:  // another author's name, own key
                var b = sample
                b.author = UInt16((Int(sample.author) + 1) % n)
                if Int(b.author) == i { b.author = UInt16((i + 1) % n) }
                b.payloadDigest = BlockCodec.payloadDigest(b.payload)
                b.signature = keys.signers[i].sign(b.digest)
                sendAll(from: i, Message.block(BlockCodec.encode(b)).encode())
            }
        case .badParents:
            let r = latest + 1
            var parents = prevRefs
            switch rng.below(7) {
            case 0:  // parents from < Q authors
                parents = Array(prevRefs.prefix(max(0, c.quorum - 1)))
            case 1:  // two parents in one slot
                if let p = prevRefs.first {
                    parents.append(
                        BlockRef(round: p.round, author: p.author, digest: Digest(w0: rng.next(), w1: 0, w2: 0, w3: 0)))
                }
                parents.sort()
            case 2:  // two own parents
                parents.append(
                    BlockRef(
                        round: max(1, r - 3), author: UInt16(i), digest: Digest(w0: rng.next(), w1: 1, w2: 0, w3: 0)))
                parents.append(
                    BlockRef(
                        round: max(1, r - 2), author: UInt16(i), digest: Digest(w0: rng.next(), w1: 2, w2: 0, w3: 0)))
                parents.sort()
            case 3:  // missing parents (unknown digests from Q authors)
                parents = (0..<c.quorum).map {
                    BlockRef(round: latest, author: UInt16($0), digest: Digest(w0: rng.next(), w1: 3, w2: 0, w3: 0))
                }
            case 4:  // timestamp far in the past / future (valid: no timestamp rule)
                var b = base(round: r, parents: parents)
                b.timestamp = rng.chance(0.5) ? 0 : UInt64.max - rng.below(1000)
                sendAll(from: i, Message.block(signed(b, by: i)).encode()); return
            case 5:  // an entry with another node's origin
                var b = base(round: r, parents: parents)
                b.payload = [
                    Entry(id: EntryID(origin: UInt16((i + 1) % n), incarnation: 1, seq: 0), kind: 1, body: [9])
                ]
                sendAll(from: i, Message.block(signed(b, by: i)).encode()); return
            default:  // a huge incarnation (valid; only its own origin is affected)
                var b = base(round: r, parents: parents)
                b.payload = [
                    Entry(id: EntryID(origin: UInt16(i), incarnation: UInt64.max - 1, seq: 0), kind: 1, body: [7])
                ]
                sendAll(from: i, Message.block(signed(b, by: i)).encode()); return
            }
            let valid = (try? BlockValidator.checkStructure(base(round: r, parents: parents), committee: c)) != nil
            _ = valid
            sendAll(from: i, Message.block(signed(base(round: r, parents: parents), by: i)).encode())
        case .flood:
            for _ in 0..<3 {
                sendAll(from: i, (0..<Int(rng.range(1, 200))).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            }
            for (b, _) in seen.prefix(3) { sendAll(from: i, Message.block(b).encode()) }
            for k in 0..<2 {
                let r = latest + 100 + UInt64(k)
                let parents = (0..<c.quorum).map {
                    BlockRef(round: r - 1, author: UInt16($0), digest: Digest(w0: rng.next(), w1: 4, w2: 0, w3: 0))
                }
                sendAll(from: i, Message.block(signed(base(round: r, parents: parents), by: i)).encode())
            }
            sendAll(from: i, Message.status((0..<n).map { _ in UInt64.max }).encode())
        case .lyingSync:
            // Replayed old blocks.
            for (b, _) in seen.prefix(4) { sendAll(from: i, Message.blocks([b]).encode()) }
            // Now and then it obtains a genuine state response (asking a random peer) and pushes
            // it, doctored, to everyone unasked: a node that lags installs it.
            if rng.chance(0.2) {
                let peer = Int(rng.below(UInt64(n - 1)))
                send(from: i, to: peer >= i ? peer + 1 : peer, Message.stateRequest(commitIndex: 0).encode())
            }
            if let r = nodes[i].lastStateResponse, let doctored = doctoredStateResponse(r) {
                sendAll(from: i, doctored)
            }
        case .fakeAttestations:
            // A new fake index every time: 10^12 + i, or one that is no multiple of the interval.
            let interval = c.params.checkpointInterval
            let index =
                rng.chance(0.5)
                ? 1_000_000_000_000 + rng.below(1 << 40)
                : (nodes[i].cores[0]?.commitIndex ?? 0) + interval * rng.range(1, 4) + (interval > 1 ? 1 : 0)
            var b = base(round: latest + 1, parents: prevRefs)
            b.attestation = Checkpoint(
                commitIndex: index, runningHash: Digest(w0: rng.next(), w1: 5, w2: 0, w3: 0),
                stateDigest: Digest(w0: rng.next(), w1: 6, w2: 0, w3: 0), leaderRound: latest)
            sendAll(from: i, Message.block(signed(b, by: i)).encode())
        case .stateReplay:
            // Asks a random peer for its latest proven snapshot and replays the genuine answer to
            // everyone: honest nodes a few commits behind must not jump ahead.
            let peer = Int(rng.below(UInt64(n - 1)))
            send(from: i, to: peer >= i ? peer + 1 : peer, Message.stateRequest(commitIndex: 0).encode())
            if let r = nodes[i].lastStateResponse { sendAll(from: i, r) }
        case .twins, .withhold, .silent, .timestampOutlier, .recoveryInflater:
            break
        }
    }
}
