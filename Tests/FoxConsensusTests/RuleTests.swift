import FoxConsensusSimulation
import Testing

@testable import FoxConsensus

@Suite struct ValidationTests {
    func check(_ mutate: (inout Block) -> Void, rule: Int) {
        let s = DagScript(n: 4)
        let c = s.committee
        var b = Block(
            epoch: 1, round: 1, author: 1, timestamp: 5, parents: c.genesis,
            payloadDigest: BlockCodec.payloadDigest([]),
            attestation: nil, payload: [], signature: [])
        mutate(&b)
        b.payloadDigest = BlockCodec.payloadDigest(b.payload)
        b.signature = s.keys.signers[Int(b.author) % 4].sign(b.digest)
        do {
            _ = try BlockValidator.validate(BlockCodec.encode(b), committee: c, verifier: s.keys.verifier)
            Issue.record("expected rule \(rule) to reject")
        } catch let e as ValidationError {
            #expect(e.rule == rule, "\(e)")
        } catch { Issue.record("\(error)") }
    }

    @Test func eachRuleRejects() {
        let s = DagScript(n: 4)
        let g = s.committee.genesis
        check({ $0.epoch = 2 }, rule: 1)
        check(
            {
                $0.round = 0; $0.parents = []
            }, rule: 2)
        check({ $0.parents = Array(g.prefix(2)) }, rule: 3)
        check({ $0.parents[0].digest = .zero }, rule: 3)
        check({ $0.parents = [g[1], g[0], g[2], g[3]] }, rule: 5)
        check({ $0.payload = [Entry(id: EntryID(origin: 2, incarnation: 1, seq: 0), kind: 1, body: [])] }, rule: 6)
        // Two own parents (rule 4) at round 3.
        var sc = DagScript(n: 4)
        sc.round(1, authors: [0, 1, 2, 3], parents: [0, 1, 2, 3])
        sc.round(2, authors: [0, 1, 2, 3], parents: [0, 1, 2, 3])
        let own1 = sc.blocks[Slot(author: 1, round: 1)]![0]
        let r2 = [0, 1, 2, 3].map { sc.blocks[Slot(author: UInt16($0), round: 2)]![0] }
        var b = Block(
            epoch: 1, round: 3, author: 1, timestamp: 9, parents: ([own1] + r2).sorted(),
            payloadDigest: BlockCodec.payloadDigest([]),
            attestation: nil, payload: [], signature: [])
        b.signature = sc.keys.signers[1].sign(b.digest)
        #expect(throws: ValidationError(rule: 4, reason: "two own parents")) {
            try BlockValidator.validate(BlockCodec.encode(b), committee: sc.committee, verifier: sc.keys.verifier)
        }
        // A signature by another key, and a wrong payload digest.
        var f = b; f.parents = r2; f.signature = sc.keys.signers[2].sign(f.digest)
        #expect(throws: ValidationError(rule: 1, reason: "signature")) {
            try BlockValidator.validate(BlockCodec.encode(f), committee: sc.committee, verifier: sc.keys.verifier)
        }
        var p = f; p.payload = [Entry(id: EntryID(origin: 1, incarnation: 1, seq: 0), kind: 0, body: [])];
        p.signature = sc.keys.signers[1].sign(p.digest)
        #expect(throws: ValidationError(rule: 1, reason: "payloadDigest")) {
            try BlockValidator.validate(BlockCodec.encode(p), committee: sc.committee, verifier: sc.keys.verifier)
        }
    }
}

@Suite struct CommitRuleTests {
    /// Leader rounds in the script's schedule.
    func leader(_ s: DagScript, _ r: UInt64) -> Int { Int(s.committee.leader(r)) }

    @Test func directCommitAfterTwoRoundsAndDeterministicOrder() {
        var s = DagScript(n: 4)
        for r in UInt64(1)...5 { s.round(r, authors: [0, 1, 2, 3], parents: [0, 1, 2, 3]) }
        var a = ScriptedNode(s, me: 0), b = ScriptedNode(s, me: 3)
        let all = s.bytes.keys.sorted()
        a.feed(s, all)
        b.feed(s, all.reversed())
        // Round h = 5: slots 1...3 decided directly, in order.
        #expect(a.leaders.map(\.round) == [1, 2, 3])
        #expect(a.leaders.map { Int($0.author) } == [1, 2, 3].map { leader(s, UInt64($0)) })
        #expect(a.deliveries.map(\.subDag.runningHash) == b.deliveries.map(\.subDag.runningHash))
        // Plain mode: commit 1 emits exactly the leader's history: the leader block alone.
        #expect(a.deliveries[0].subDag.blocks == [a.leaders[0]])
        #expect(a.deliveries[1].subDag.blocks.count == 4)  // the other round-1 blocks and the round-2 leader
    }

    @Test func missingLeaderIsSkippedDirectly() {
        var s = DagScript(n: 4)
        let l2 = leader(s, 2)
        let others = [0, 1, 2, 3].filter { $0 != l2 }
        s.round(1, authors: [0, 1, 2, 3], parents: [0, 1, 2, 3])
        s.round(2, authors: others, parents: [0, 1, 2, 3])
        for r in UInt64(3)...6 { s.round(r, authors: [0, 1, 2, 3], parents: r == 3 ? others : [0, 1, 2, 3]) }
        var a = ScriptedNode(s, me: UInt16(others[0]))
        a.feed(s, s.bytes.keys.sorted())
        #expect(!a.leaders.map(\.round).contains(2))
        #expect(a.leaders.map(\.round) == [1, 3, 4])
        #expect(a.core.metrics.skippedSlots == 1)
    }

}
