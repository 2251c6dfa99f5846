import FoxConsensusSimulation
import Testing

@testable import FoxConsensus

/// Scripted tests of the rule regressions 4-6 of design section 17 (1-3 are in
/// ScriptedCommitTests): hand-built DAGs fed through the real receive, recovery and restart paths.
@Suite struct ScriptedRegressionTests {
    static let all = [0, 1, 2, 3]

    /// Own blocks a core signed, from its persist batches (what it would broadcast).
    static func ownBlocks(_ out: [Output], me: UInt16) -> [BlockRef] {
        var refs: [BlockRef] = []
        for o in out {
            if case .persist(let b) = o { refs += b.blockOrder.filter { $0.author == me } }
        }
        return refs
    }

    // MARK: regression 4, self-contained validity

    /// §17 rule regression 4: Byzantine D signs D10 and D11, sends D11 to node A only, then D12
    /// with own parent D10; and a block X timestamped below its own parent D_p, which lies below
    /// A's horizon but not B's. Validity reads only the block's bytes and a parent below the
    /// horizon counts as present (§5), so every honest node inserts the same blocks.
    @Test func regression4SelfContainedValidity() throws {
        var s = DagScript(n: 4, gcDepth: 3)
        let d = 3
        let honest = [0, 1, 2]
        for r in UInt64(1)...11 { s.round(r, authors: Self.all, parents: Self.all) }
        let d11 = s.at(d, 11)
        // Round 12: nobody references D11; D12 names D10 as its own parent.
        for a in honest { s.add(a, 12, parents: honest) }
        let d12 = s.addRefs(d, 12, refs: honest.map { s.at($0, 11) } + [s.at(d, 10)])
        for r in UInt64(13)...15 { s.round(r, authors: Self.all, parents: Self.all) }
        // D goes quiet; the honest nodes carry on.
        for r in UInt64(16)...22 { s.round(r, authors: honest, parents: honest) }
        let allButD11 = s.upTo(22).filter { $0 != d11 }
        var a = ScriptedNode(s, me: 0)
        var b = ScriptedNode(s, me: 1)
        var c = ScriptedNode(s, me: 2)
        a.feed(s, s.upTo(22))
        b.feed(s, allButD11.filter { $0.round <= 19 })
        c.feed(s, allButD11.filter { $0.round <= 19 })
        // X at round 20 with own parent D_p, hA > p >= hB, and a timestamp below D_p's.
        let hA = a.core.horizon, hB = b.core.horizon
        let p = try #require((hB..<hA).last { $0 <= 15 && $0 != 11 }, "horizons A \(hA), B \(hB)")
        let parent = s.at(d, p)
        let x = s.addRefs(d, 20, refs: honest.map { s.at($0, 19) } + [parent], ts: 5)
        #expect(x.round >= hA)
        #expect(!a.core.dag.contains(parent), "D_p lies below A's horizon")
        #expect(b.core.dag.contains(parent) && c.core.dag.contains(parent))
        a.feed(s, [x])
        b.feed(s, [x])
        c.feed(s, [x])
        for node in [a, b, c] {
            #expect(node.core.dag.contains(x), "node \(node.core.me) inserts X")
            #expect(node.core.suspendedCount == 0)
        }
        b.feed(s, allButD11)
        c.feed(s, allButD11)
        for node in [a, b, c] {
            #expect(node.core.metrics.invalidBlocks == 0)
            // D12 (own parent D10, skipping D11) is inserted and ordered everywhere.
            #expect(node.deliveries.contains { $0.subDag.blocks.contains(d12) })
            // D11, held by A only and referenced by nobody, is never ordered.
            #expect(node.deliveries.allSatisfy { !$0.subDag.blocks.contains(d11) })
        }
        // Identical committed sequences.
        #expect(a.deliveries.count > 10)
        for node in [b, c] {
            #expect(node.deliveries.map(\.subDag.runningHash) == a.deliveries.map(\.subDag.runningHash))
        }
    }

    // MARK: regression 5, amnesia

    /// Runs recovery (10.4) on `core` with the given answers, then feeds each phase of blocks
    /// with a client entry and ticks for a second (the node proposes whenever it may); returns
    /// every output.
    static func recoverAndPropose(
        _ core: inout ConsensusCore, _ s: DagScript, answers: [(UInt16, UInt64, [UInt8]?)], phases: [[BlockRef]]
    ) -> [Output] {
        var out = core.step(.start, now: 1_000)
        #expect(core.mode == .recovering)
        for (from, last, block) in answers {
            out += core.step(
                .message(from: from, bytes: Message.recoverAnswer(lastOwnRound: last, block: block).encode()),
                now: 2_000)
        }
        for o in out { if case .persist(let b) = o { out += core.step(.persisted(txn: b.txn), now: 3_000) } }
        #expect(core.mode == .active)
        var now: UInt64 = 10_000_000
        for refs in phases {
            for r in refs.sorted() where !core.dag.contains(r) {
                let from = r.author == core.me ? UInt16((Int(core.me) + 1) % 4) : r.author
                out += core.step(.message(from: from, bytes: s.message(r)), now: now)
            }
            out += core.step(.submit(kind: 1, body: [1]), now: now)
            for _ in 0..<20 {
                now += 50_000_000
                let step = core.step(.tick, now: now)
                out += step
                for o in step { if case .persist(let b) = o { out += core.step(.persisted(txn: b.txn), now: now) } }
            }
        }
        return out
    }

    /// §17 rule regression 5: W is wiped right after it sent its newest block W5 only to the
    /// Byzantine node D, which then answers the RecoverQuery with lastOwnRound 0 and no block;
    /// B and C answer with their lastOwnRound 4 and W4. Then B is restored from an old copy
    /// (lastOwnRound 2, `meta.restored`) after it signed B5. Property 6: neither signs a second
    /// block for a round it already signed.
    @Test func regression5AmnesiaNeverEquivocates() {
        var s = DagScript(n: 4)
        let w = 0, b = 1, c = 2, d = 3
        for r in UInt64(1)...4 { s.round(r, authors: Self.all, parents: Self.all) }
        let w5 = s.add(w, 5, parents: Self.all)
        for x in [b, c, d] { s.add(x, 5, parents: Self.all) }
        let others5 = s.upTo(5).filter { $0 != w5 }
        // W: wiped; its lost W5 reached only D.
        var coreW = ConsensusCore(
            config: CoreConfig(committee: s.committee, me: UInt16(w)), signer: s.keys.signers[w],
            verifier: s.keys.verifier, image: .wiped)
        let w4 = s.bytes[s.at(w, 4)]!
        let outW = Self.recoverAndPropose(
            &coreW, s, answers: [(UInt16(d), 0, nil), (UInt16(b), 4, w4), (UInt16(c), 4, w4)],
            // Round 4 first: with lastOwnRound 4 (answer (a) alone) W would re-sign round 5 here.
            phases: [s.upTo(4), others5])
        #expect(coreW.lastOwnRound >= 5)
        let signedW = Self.ownBlocks(outW, me: UInt16(w)).filter { s.bytes[$0] == nil }
        #expect(!signedW.isEmpty, "W proposes again after recovery")
        #expect(signedW.allSatisfy { $0.round > w5.round }, "\(signedW)")

        // B: restored from a copy taken at round 2 (meta.restored), after it signed B5. Round 6
        // of the others (not naming W5) lets it propose again.
        for x in [w, c, d] { s.add(x, 6, parents: [b, c, d]) }
        let store = InMemoryConsensusStorage()
        let old = s.upTo(2)
        store.write(
            PersistBatch(
                txn: 1, blocks: Dictionary(uniqueKeysWithValues: old.map { ($0, s.bytes[$0]!) }), blockOrder: old,
                meta: StoredMeta(lastOwnRound: 2, lastOwnDigest: s.at(b, 2).digest, restored: false), commits: [],
                snapshot: nil, pruneBelowRound: nil))
        store.sync()
        let backup = store.copy()
        store.restore(from: backup)
        #expect(store.load().meta.restored)
        var coreB = ConsensusCore(
            config: CoreConfig(committee: s.committee, me: UInt16(b)), signer: s.keys.signers[b],
            verifier: s.keys.verifier, image: store.load())
        let b5 = s.bytes[s.at(b, 5)]!
        let outB = Self.recoverAndPropose(
            &coreB, s, answers: [(UInt16(d), 0, nil), (UInt16(c), 5, b5), (UInt16(w), 5, b5)],
            phases: [others5, s.upTo(6).filter { $0.round == 6 }])
        #expect(coreB.lastOwnRound >= 6)
        let signedB = Self.ownBlocks(outB, me: UInt16(b)).filter { s.bytes[$0] == nil }
        #expect(!signedB.isEmpty)
        #expect(signedB.allSatisfy { $0.round > 5 }, "\(signedB)")
        #expect(!coreB.isHalted && !coreW.isHalted)
    }

    // MARK: regression 6, GC and P

    /// §17 rule regression 6: with gcDepth 1 in fair mode every round-(R_k − 1) block of P is
    /// still unready when gcRound_{k+1} passes it, so it is force-emitted (§7 step 2). A restart
    /// from the store (snapshot + replay, 10.1) rebuilds P equal to the refs stored in the last
    /// commit record, and replays the same commits.
    @Test func regression6ForcedEmissionAndPRebuiltAfterRestart() {
        var s = DagScript(n: 4, fair: true, gcDepth: 1, checkpointInterval: 3)
        for r in UInt64(1)...20 { s.round(r, authors: Self.all, parents: Self.all) }
        let store = InMemoryConsensusStorage()
        // An observer (never proposes): lastOwnRound far ahead, as ScriptedNode.observer.
        store.write(
            PersistBatch(
                txn: 0, blocks: [:], blockOrder: [],
                meta: StoredMeta(lastOwnRound: 1_000_000, lastOwnDigest: nil, restored: false),
                commits: [], snapshot: nil, pruneBelowRound: nil))
        store.sync()
        func makeCore() -> ConsensusCore {
            ConsensusCore(
                config: CoreConfig(committee: s.committee, me: 0), signer: s.keys.signers[0],
                verifier: s.keys.verifier, image: store.load())
        }
        var core = makeCore()
        var deliveries: [Delivery] = []
        func run(_ core: inout ConsensusCore, _ input: Input) {
            for o in core.step(input, now: 1) {
                if case .persist(let b) = o { store.write(b); store.sync() }
                if case .deliver(let d) = o { deliveries.append(d) }
            }
        }
        run(&core, .start)
        // Stop between checkpoints (K = 3), so the restart replays commits after the snapshot.
        for round in UInt64(1)...20 where core.commitIndex < 10 || core.commitIndex % 3 == 0 {
            for r in s.upTo(round) where r.round == round {
                run(&core, .message(from: r.author == 0 ? 1 : r.author, bytes: s.message(r)))
            }
        }
        #expect(core.commitIndex >= 10)
        #expect(core.metrics.forcedEmissions > 0, "gcDepth 1 forces unready blocks out")
        #expect(deliveries.contains { $0.subDag.forcedCount > 0 })
        let last = store.load().commits.last!
        #expect(last.index == core.commitIndex)
        #expect(Set(last.pending) == core.pendingP)
        #expect(!last.pending.isEmpty, "P holds the unready leader blocks")
        #expect(store.load().snapshot.map { $0.commitIndex < core.commitIndex } == true, "replay covers commits")
        // Restart from the store.
        let replayedFrom = deliveries.count
        var again = makeCore()
        run(&again, .start)
        #expect(!again.isHalted)
        #expect(again.commitIndex == core.commitIndex)
        #expect(again.pendingP == Set(last.pending))
        #expect(again.runningHash == core.runningHash)
        #expect(deliveries.dropFirst(replayedFrom).allSatisfy { $0.replayed })
    }
}
