import FoxConsensusSimulation
import Testing

@testable import FoxConsensus

/// Scripted tests of the parked-block bounds (section 5, suspended buffer) and of going idle
/// (section 4, condition 4), which the simulator covered only through seeds.
@Suite struct ScriptedBufferTests {
    static let all = [0, 1, 2, 3]

    /// A block of `author` at `round` whose round − 1 parents are unknown (never resolvable).
    static func orphan(_ s: inout DagScript, _ author: Int, _ round: UInt64, variant: UInt64 = 0) -> BlockRef {
        let fake = [0, 1, 2].map {
            BlockRef(
                round: round - 1, author: UInt16($0), digest: Digest(w0: round, w1: UInt64($0), w2: variant, w3: 7))
        }
        return s.addRefs(author, round, refs: fake, variant: variant)
    }

    /// §5 suspended buffer, per-author quota: a full quota of far-ahead unresolvable blocks gives
    /// way to a lower-round block of the same author (its highest-round parked block is evicted);
    /// a higher-round block is dropped instead; other authors are untouched; the genuine block
    /// is inserted once its parents arrive.
    @Test func parkedQuotaEvictsTheAuthorsHighestRoundForALowerOne() {
        var s = DagScript(n: 4)
        let byz = 3
        var local = LocalParameters()
        local.maxSuspendedBlocks = 64
        var a = ScriptedNode(s, me: 0, local: local)
        let quota = 16
        // Another author's parked block, to check it is untouched.
        let other = Self.orphan(&s, 1, 300)
        var flood: [BlockRef] = []
        for i in 0..<quota { flood.append(Self.orphan(&s, byz, 100 + UInt64(i))) }
        a.feed(s, [other] + flood)
        #expect(a.core.suspendedCount == quota + 1)
        #expect(a.core.suspendedCountByAuthor[byz] == quota)
        // Higher than every parked block: dropped, nothing evicted.
        let higher = Self.orphan(&s, byz, 1000)
        a.feed(s, [higher])
        #expect(a.core.suspended[higher] == nil)
        #expect(a.core.metrics.suspendedEvicted == 0)
        #expect(a.core.metrics.suspendedDropped == 1)
        // The author's genuine round-2 block, whose round-1 parents have not arrived yet.
        s.round(1, authors: ScriptedBufferTests.all, parents: ScriptedBufferTests.all)
        let genuine = s.add(byz, 2, parents: ScriptedBufferTests.all)
        a.feed(s, [genuine])
        #expect(a.core.metrics.suspendedEvicted == 1)
        #expect(a.core.suspended[genuine] != nil)
        #expect(a.core.suspended[flood.last!] == nil, "the highest-round parked block gave way")
        #expect(flood.dropLast().allSatisfy { a.core.suspended[$0] != nil })
        #expect(a.core.suspended[other] != nil)
        #expect(a.core.suspendedCountByAuthor[byz] == quota)
        // Its parents arrive: it leaves the buffer into the DAG.
        a.feed(s, s.upTo(1))
        #expect(a.core.dag.contains(genuine))
        #expect(a.core.suspendedCountByAuthor[byz] == quota - 1)
        #expect(a.core.suspendedIndexConsistent)
    }

    /// §5: the global bound (`maxSuspendedBlocks`) drops further blocks once full.
    @Test func parkedGlobalBoundDrops() {
        var s = DagScript(n: 4)
        var local = LocalParameters()
        local.maxSuspendedBlocks = 40
        var core = ConsensusCore(
            config: CoreConfig(committee: s.committee, me: 0, local: local), signer: s.keys.signers[0],
            verifier: s.keys.verifier, image: ScriptedNode.observer)
        _ = core.step(.start, now: 0)
        var refs: [BlockRef] = []
        for author in 1...3 { for i in 0..<16 { refs.append(Self.orphan(&s, author, 50 + UInt64(i))) } }
        for r in refs { _ = core.step(.message(from: r.author, bytes: s.message(r)), now: 1) }
        #expect(core.suspendedCount == 40)
        #expect(core.metrics.suspendedDropped == 8)
        #expect(core.suspendedIndexConsistent)
    }

    // MARK: going idle

    /// Drives one real proposer (node 0) against scripted peers 1 and 2 that reference its
    /// blocks; peer 3 equivocates at round 1 with two non-empty blocks, the second inserted as a
    /// fetched parent and never linked. Returns the proposer's block count after each round.
    struct IdleRun {
        var s = DagScript(n: 4)
        var core: ConsensusCore
        var proposedPerRound: [Int] = []
        var delivered: [Entry] = []
        var now: UInt64 = 1_000_000_000

        init() {
            core = ConsensusCore(
                config: CoreConfig(committee: s.committee, me: 0), signer: s.keys.signers[0],
                verifier: s.keys.verifier, image: .fresh)
            _ = core.step(.start, now: 0)
        }

        mutating func step(_ input: Input) {
            for o in core.step(input, now: now) {
                if case .persist(let b) = o { step(.persisted(txn: b.txn)) }
                if case .deliver(let d) = o { delivered += d.applied }
            }
        }
        mutating func feed(_ r: BlockRef, fetched: Bool = false) {
            if fetched {
                core.requested.insert(r)
                step(.message(from: r.author, bytes: Message.blocks([s.bytes[r]!]).encode()))
            } else {
                step(.message(from: r.author, bytes: s.message(r)))
            }
        }
        /// Lets time pass (leader timeouts, heartbeats) so node 0 proposes if it has work.
        mutating func wait() {
            for _ in 0..<4 {
                now += 300_000_000
                step(.tick)
            }
        }

        mutating func run(rounds: UInt64) -> (twin: BlockRef, entry: Entry) {
            let entry = { (v: UInt8) in Entry(id: EntryID(origin: 3, incarnation: 1, seq: 0), kind: 1, body: [v]) }
            for a in [1, 2] { s.add(a, 1, parents: ScriptedBufferTests.all) }
            s.add(3, 1, parents: ScriptedBufferTests.all, variant: 0, payload: [entry(1)])
            let twin = s.add(3, 1, parents: ScriptedBufferTests.all, variant: 1, payload: [entry(2)])
            for a in [1, 2] { feed(s.at(a, 1)) }
            feed(s.at(3, 1))
            feed(twin, fetched: true)
            #expect(core.dag.slot(Slot(author: 3, round: 1)).count == 2, "both twins inserted")
            wait()
            for r in UInt64(2)...rounds {
                // Peers 1 and 2 reference node 0's block at r − 1; without it they lack a quorum
                // (3 is silent after round 1) and the cluster stops, as real peers would.
                var parents = [1, 2].map { s.at($0, r - 1) }
                if r == 2 {
                    parents.append(s.at(3, 1))
                } else if let own = core.dag.slot(Slot(author: 0, round: r - 1)).first {
                    parents.append(own)
                } else {
                    break
                }
                for a in [1, 2] { feed(s.addRefs(a, r, refs: parents)) }
                wait()
                proposedPerRound.append(core.metrics.blocksProposed)
            }
            return (twin, entry(1))
        }
    }

    /// §4 condition 4: once every entry is ordered the node sends at most `maxIdleHeartbeats`
    /// heartbeat blocks and goes quiet (no block, no timer), even with an equivocation's second
    /// non-empty block in its DAG that it never links (§5: it never references two blocks of a
    /// slot); left counted as work, it kept the node proposing forever (byz-badParents n=4 seed
    /// 200). A new client entry wakes it up.
    @Test func goesIdleDespiteAnUnlinkableEquivocatingBlock() {
        var run = IdleRun()
        let (twin, entry) = run.run(rounds: 16)
        #expect(run.delivered.contains(entry), "the first twin's entry is ordered")
        #expect(!run.core.nonEmptyUnemitted.contains(twin))
        #expect(!run.core.hasRealWork)
        let p = run.proposedPerRound
        #expect(p.count < 15, "the cluster went quiet before the script ran out: \(p)")
        #expect(run.core.idleHeartbeats == run.core.config.maxIdleHeartbeats)
        // After the round whose block ordered the last entry, at most 3 heartbeat blocks.
        let before = run.core.metrics.blocksProposed
        for _ in 0..<5 { run.wait() }
        #expect(run.core.metrics.blocksProposed == before)
        #expect(run.core.proposalDeadline(now: run.now) == nil)
        let last = run.core.lastOwnRound
        // Woken by a client entry.
        run.step(.submit(kind: 1, body: [9]))
        run.wait()
        #expect(run.core.lastOwnRound > last)
    }
}
