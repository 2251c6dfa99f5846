import Testing

@testable import FoxConsensus
@testable import FoxConsensusSimulation

/// Scripted DAG tests of the commit rule (design section 6) and the rule regressions of section
/// 17. Blocks are built by hand, fed through the real receive path, and the exact committed
/// sequence is asserted. Plain linearization (fairness off) so the emitted blocks are exact.
@Suite struct ScriptedCommitTests {
    static let all = [0, 1, 2, 3]
    func leader(_ s: DagScript, _ r: UInt64) -> Int { Int(s.committee.leader(r)) }

    // MARK: section 6, direct rule

    /// §6 direct commit: ≥ Q authors at r+2 certify the leader block. Plain mode (§7 baseline)
    /// emits history(L_k) minus the emitted blocks, sorted by (round, author, digest).
    @Test func directCommitEmitsExactHistories() {
        var s = DagScript(n: 4)
        for r in UInt64(1)...5 { s.round(r, authors: Self.all, parents: Self.all) }
        var a = ScriptedNode(s, me: 0)
        a.feed(s, s.upTo(4))
        // h = 4: only slots 1 and 2 have their round r+2 certificates.
        #expect(a.leaderRounds == [1, 2])
        a.feed(s, s.upTo(5))
        #expect(a.leaderRounds == [1, 2, 3])
        let l = (1...3).map { s.at(leader(s, UInt64($0)), UInt64($0)) }
        #expect(a.leaders == l)
        #expect(a.core.directStatus(1) == .commit(l[0]))
        #expect(a.deliveries[0].subDag.blocks == [l[0]])
        let round1Rest = Self.all.map { s.at($0, 1) }.filter { $0 != l[0] }.sorted()
        #expect(a.deliveries[1].subDag.blocks == round1Rest + [l[1]])
        let round2Rest = Self.all.map { s.at($0, 2) }.filter { $0 != l[1] }.sorted()
        #expect(a.deliveries[2].subDag.blocks == round2Rest + [l[2]])
        #expect(a.core.decidedRound == 3)
    }

    /// §6 direct skip: |blamers(s)| ≥ Q — the round-2 leader's block exists but 3 of the 4
    /// round-3 blocks do not reference it. Its block is never committed nor emitted by slot 2.
    @Test func directSkipWithQBlamers() {
        var s = DagScript(n: 4)
        let l2 = leader(s, 2)
        let others = Self.all.filter { $0 != l2 }
        s.round(1, authors: Self.all, parents: Self.all)
        s.round(2, authors: Self.all, parents: Self.all)
        // Round 3: only the leader itself references its block.
        for a in Self.all { s.add(a, 3, parents: a == l2 ? Self.all : others) }
        for r in UInt64(4)...6 { s.round(r, authors: Self.all, parents: Self.all) }
        var a = ScriptedNode(s, me: UInt16(others[0]))
        a.feed(s, s.upTo(6))
        #expect(a.core.directStatus(2) == .skip)
        #expect(a.leaderRounds == [1, 3, 4])
        #expect(a.core.metrics.skippedSlots == 1)
        // The skipped leader block is still ordered, as part of a later leader's history.
        let l2Block = s.at(l2, 2)
        #expect(a.deliveries.filter { $0.subDag.blocks.contains(l2Block) }.count == 1)
    }

    // MARK: section 6, indirect rule

    /// Slot 2 with neither Q blamers nor Q certifiers: X (≠ leader(2), leader(3)) blames the
    /// round-2 leader at round 3; at round 4 only `certifiers` reference the three supporters,
    /// the others reference X and two supporters. Rounds 5...7 are complete, except that the
    /// round-5 leader omits the certificates when `anchorSeesCertificate` is false.
    struct WeakSlot {
        var s = DagScript(n: 4)
        var certifiers: [Int] = []
        var x = 0
    }

    func weakSlot2(certifierCount k: Int, anchorSeesCertificate: Bool) -> WeakSlot {
        var w = WeakSlot()
        let l2 = leader(w.s, 2), l3 = leader(w.s, 3), l5 = leader(w.s, 5)
        w.x = Self.all.first { $0 != l2 && $0 != l3 }!
        let supporters = Self.all.filter { $0 != w.x }
        let s2 = supporters.first { $0 != l3 }!  // the supporter the non-certifiers omit
        let partial = Self.all.filter { $0 != s2 }
        w.certifiers = Array(Self.all.filter { anchorSeesCertificate || $0 != l5 }.prefix(k))
        w.s.round(1, authors: Self.all, parents: Self.all)
        w.s.round(2, authors: Self.all, parents: Self.all)
        for a in Self.all { w.s.add(a, 3, parents: a == w.x ? Self.all.filter { $0 != l2 } : Self.all) }
        for a in Self.all { w.s.add(a, 4, parents: w.certifiers.contains(a) ? supporters : partial) }
        for a in Self.all {
            let hidesCert = a == l5 && !anchorSeesCertificate
            w.s.add(a, 5, parents: hidesCert ? Self.all.filter { !w.certifiers.contains($0) } : Self.all)
        }
        for r in UInt64(6)...7 { w.s.round(r, authors: Self.all, parents: Self.all) }
        return w
    }

    /// §6 indirect rule, committed anchor with a certificate in its history → commit.
    @Test func indirectCommitThroughALaterAnchor() {
        let w = weakSlot2(certifierCount: 1, anchorSeesCertificate: true)
        var a = ScriptedNode(w.s, me: UInt16(w.x))
        a.feed(w.s, w.s.upTo(7))
        #expect(a.core.directStatus(2) == nil, "slot 2 is not decided directly")
        #expect(a.leaderRounds == [1, 2, 3, 4, 5])
        #expect(a.leaders[1] == w.s.at(leader(w.s, 2), 2))
        #expect(a.core.metrics.skippedSlots == 0)
    }

    /// §6 indirect rule, committed anchor without any certificate in its history → skip.
    @Test func indirectSkipWhenTheAnchorHoldsNoCertificate() {
        let w = weakSlot2(certifierCount: 1, anchorSeesCertificate: false)
        var a = ScriptedNode(w.s, me: UInt16(w.x))
        a.feed(w.s, w.s.upTo(7))
        #expect(a.core.directStatus(2) == nil)
        #expect(a.core.directStatus(5) == .commit(w.s.at(leader(w.s, 5), 5)))
        #expect(a.leaderRounds == [1, 3, 4, 5])
        #expect(a.core.metrics.skippedSlots == 1)
    }

    /// §6 "Statuses beyond the prefix are not stored; only the prefix is final": slot 2 is
    /// undecided while slots 3 and 4 are already directly committed; nothing past slot 1 is
    /// delivered until the round-5 anchor commits and decides slot 2 (§6 indirect rule:
    /// "no committed slot up to h − 2 → undecided").
    @Test func undecidedSlotHoldsThePrefixUntilALaterAnchorDecidesIt() {
        let w = weakSlot2(certifierCount: 1, anchorSeesCertificate: true)
        var a = ScriptedNode(w.s, me: UInt16(w.x))
        a.feed(w.s, w.s.upTo(6))
        #expect(a.leaderRounds == [1])
        #expect(a.core.decidedRound == 1)
        #expect(a.core.directStatus(3) == .commit(w.s.at(leader(w.s, 3), 3)))
        #expect(a.core.directStatus(4) == .commit(w.s.at(leader(w.s, 4), 4)))
        a.feed(w.s, w.s.upTo(7))
        #expect(a.leaderRounds == [1, 2, 3, 4, 5])
        #expect(a.core.decidedRound == 5)
    }

    /// §17 rule regression 1 (undecided slot): the round-r leader block reaches one node after
    /// its timeout, so exactly 2 authors certify it at r+2. Commits continue; slot r is decided
    /// through a later leader, identically at every node whatever the arrival order.
    @Test func regression1UndecidedSlotWithTwoCertifiers() {
        let w = weakSlot2(certifierCount: 2, anchorSeesCertificate: true)
        #expect(w.certifiers.count == 2)
        var nodes = Self.all.map { ScriptedNode(w.s, me: UInt16($0)) }
        for i in nodes.indices { nodes[i].feed(w.s, w.s.upTo(6)) }
        for i in nodes.indices {
            #expect(nodes[i].core.directStatus(2) == nil)
            #expect(nodes[i].leaderRounds == [1])
        }
        for i in nodes.indices { nodes[i].feed(w.s, w.s.upTo(7)) }
        for i in nodes.indices {
            #expect(nodes[i].leaderRounds == [1, 2, 3, 4, 5])
            #expect(nodes[i].deliveries.map(\.subDag.runningHash) == nodes[0].deliveries.map(\.subDag.runningHash))
        }
    }

    /// §17 rule regression 2 (skipped anchor): A3, B3, D3 certify the round-1 leader, C3 does
    /// not (C missed the leader at round 2); D, leader of round 4, sends D3 late to A only and
    /// crashes. A commits slot 1 directly; B (and C) pass over the skipped slot 4 and commit
    /// slot 1 through the round-5 leader. Identical prefixes.
    @Test func regression2SkippedAnchor() {
        var s = DagScript(n: 4)
        let l = leader(s, 1), d = leader(s, 4)
        let c = Self.all.first { $0 != l && $0 != d }!
        let ab = Self.all.filter { $0 != c && $0 != d }
        s.round(1, authors: Self.all, parents: Self.all)
        for x in Self.all { s.add(x, 2, parents: x == c ? Self.all.filter { $0 != l } : Self.all) }
        for x in Self.all { s.add(x, 3, parents: x == c ? ab + [c] : Self.all.filter { $0 != c }) }
        let abc = Self.all.filter { $0 != d }
        for r in UInt64(4)...7 { s.round(r, authors: abc, parents: abc) }
        let d3 = s.at(d, 3)
        var nodeA = ScriptedNode(s, me: UInt16(ab[0]))
        var nodeB = ScriptedNode(s, me: UInt16(ab[1]))
        nodeA.feed(s, s.upTo(5))
        nodeB.feed(s, s.upTo(5).filter { $0 != d3 })
        #expect(nodeA.core.directStatus(1) == .commit(s.at(l, 1)))
        #expect(nodeA.leaderRounds.first == 1)
        #expect(nodeB.core.directStatus(1) == nil)
        #expect(nodeB.leaderRounds == [])
        nodeA.feed(s, s.upTo(7))
        nodeB.feed(s, s.upTo(7).filter { $0 != d3 })
        #expect(nodeB.core.directStatus(4) == .skip)
        // Slot 2: if C leads it, A3, B3 and D3 omit C2 (A skips it directly, B through the
        // round-5 anchor, whose history holds no certificate); otherwise it commits directly.
        let expected: [UInt64] = leader(s, 2) == c ? [1, 3, 5] : [1, 2, 3, 5]
        #expect(nodeA.leaderRounds == expected)
        #expect(nodeB.leaderRounds == expected)
        #expect(nodeA.deliveries.map(\.subDag.runningHash) == nodeB.deliveries.map(\.subDag.runningHash))
        #expect(nodeA.deliveries.map(\.subDag.blocks) == nodeB.deliveries.map(\.subDag.blocks))
    }

    /// §17 rule regression 3 (multi-block author) and §6 "every count is of distinct authors":
    /// a Byzantine author with 3 blocks at round 2 (one supporting, two blaming) and two
    /// round-3 certificates counts once for each predicate: 2 blamers and 2 certifying authors,
    /// so neither a direct skip nor a direct commit.
    @Test func regression3MultiBlockAuthorCountsOnce() {
        var s = DagScript(n: 4)
        let l1 = leader(s, 1)
        let byz = Self.all.first { $0 != l1 }!
        let honest = Self.all.filter { $0 != byz && $0 != l1 }
        let noLeader = Self.all.filter { $0 != l1 }
        s.round(1, authors: Self.all, parents: Self.all)
        let sup = s.addRefs(byz, 2, refs: Self.all.map { s.at($0, 1) }, variant: 1)
        s.addRefs(byz, 2, refs: noLeader.map { s.at($0, 1) }, variant: 2)
        s.addRefs(byz, 2, refs: noLeader.map { s.at($0, 1) }, variant: 3)
        s.add(l1, 2, parents: Self.all)
        s.add(honest[0], 2, parents: noLeader)
        s.add(honest[1], 2, parents: Self.all)
        // Supporters of L1 at round 2: l1, honest[1], byz (once). Round 3: two byz certificates and
        // one from l1; the honest nodes reference honest[0]'s blaming block instead of byz.
        let supporters = [s.at(l1, 2), s.at(honest[1], 2), sup]
        s.addRefs(byz, 3, refs: supporters, variant: 1)
        s.addRefs(byz, 3, refs: supporters, variant: 2)
        s.addRefs(l1, 3, refs: supporters)
        for h in honest { s.addRefs(h, 3, refs: [s.at(l1, 2), s.at(honest[0], 2), s.at(honest[1], 2)]) }
        var a = ScriptedNode(s, me: UInt16(honest[0]))
        a.feed(s, s.upTo(3))
        #expect(a.core.dag.slot(Slot(author: UInt16(byz), round: 2)).count == 3, "every twin was inserted")
        #expect(a.core.dag.slot(Slot(author: UInt16(byz), round: 3)).count == 2)
        #expect(a.core.directStatus(1) == nil, "2 distinct blamers and 2 distinct certifiers decide nothing")
        #expect(a.core.metrics.equivocations >= 1)
        #expect(a.leaderRounds == [])
        let halted = a.core.isHalted
        #expect(!halted)
    }

    // MARK: equivocating leader

    /// §6: two blocks of one slot cannot each gather Q supporters below the fault bound; if they
    /// do, the fault bound is broken and the node halts loudly instead of picking one. Here 3 of 4
    /// authors (> f = 1) equivocate so both leader blocks get Q certifying authors.
    @Test func twoDirectlyCommittedBlocksOfOneSlotHalt() {
        var s = DagScript(n: 4)
        let l1 = leader(s, 1)
        let observer = Self.all.first { $0 != l1 }!
        let byz = Self.all.filter { $0 != observer }
        s.round(1, authors: Self.all, parents: Self.all)
        let b1 = s.at(l1, 1)
        let b2 = s.addRefs(l1, 1, refs: s.committee.genesis, variant: 1)
        let rest1 = Self.all.filter { $0 != l1 }.map { s.at($0, 1) }
        var v1: [BlockRef] = [], v2: [BlockRef] = []
        for e in byz {
            v1.append(s.addRefs(e, 2, refs: rest1 + [b1]))
            v2.append(s.addRefs(e, 2, refs: rest1 + [b2], variant: 1))
        }
        for e in byz {
            s.addRefs(e, 3, refs: v1)
            s.addRefs(e, 3, refs: v2, variant: 1)
        }
        var a = ScriptedNode(s, me: UInt16(observer))
        a.feed(s, s.upTo(2))
        #expect(a.leaderRounds == [])
        // Round 3 arrives in one sync response: one committer pass sees both certificate sets.
        a.feedBatch(s, s.upTo(3), from: UInt16(byz[0]))
        #expect(a.core.dag.slot(Slot(author: UInt16(l1), round: 1)).count == 2)
        #expect(a.leaderRounds == [], "neither block is committed")
        let halted = a.core.isHalted
        #expect(halted)
        #expect(a.haltReason?.contains("slot 1") == true, "\(a.haltReason ?? "not halted")")
    }

    /// Within the fault bound (f = 1): an equivocating leader's second block is supported only by
    /// itself; the block certified by Q authors is committed and the node does not halt.
    @Test func equivocatingLeaderWithinTheFaultBoundCommitsTheCertifiedBlock() {
        var s = DagScript(n: 4)
        let l1 = leader(s, 1)
        let honest = Self.all.filter { $0 != l1 }
        s.round(1, authors: Self.all, parents: Self.all)
        let b1 = s.at(l1, 1)
        let b2 = s.addRefs(l1, 1, refs: s.committee.genesis, variant: 1)
        let rest1 = honest.map { s.at($0, 1) }
        for h in honest { s.addRefs(h, 2, refs: rest1 + [b1]) }
        s.addRefs(l1, 2, refs: rest1 + [b2])
        for r in UInt64(3)...4 { s.round(r, authors: Self.all, parents: Self.all) }
        var a = ScriptedNode(s, me: UInt16(honest[0]))
        a.feed(s, s.upTo(4))
        #expect(a.core.dag.slot(Slot(author: UInt16(l1), round: 1)).count == 2)
        let halted = a.core.isHalted
        #expect(!halted)
        #expect(a.leaders.first == b1)
        #expect(a.leaderRounds == [1, 2])
    }
}

/// The readiness-bound checker (sections 7, 18.8) on hand-made commit sequences.
@Suite struct ReadinessBoundCheckerTests {
    func ref(_ r: UInt64, _ a: UInt16) -> BlockRef {
        BlockRef(round: r, author: a, digest: Digest(w0: r, w1: UInt64(a), w2: 0, w3: 0))
    }
    func sub(_ k: UInt64, leaderRound: UInt64, blocks: [BlockRef], pending: [BlockRef]) -> CommittedSubDag {
        CommittedSubDag(
            index: k, leader: ref(leaderRound, 0), blocks: blocks, runningHash: .zero, pending: pending, forcedCount: 0,
            commitTime: 0)
    }

    @Test func pendingPastRkPlus3IsAViolation() {
        let c = Checker(n: 4, honest: [true, true, true, true])
        let b = ref(4, 2)
        c.checkReadinessBound(sub(1, leaderRound: 5, blocks: [], pending: [b]), time: 0)
        c.checkReadinessBound(sub(2, leaderRound: 7, blocks: [], pending: [b]), time: 0)
        #expect(c.violations.isEmpty, "R_k + 2 is still within the bound")
        c.checkReadinessBound(sub(3, leaderRound: 8, blocks: [], pending: [b]), time: 0)
        #expect(c.violations.map(\.property) == ["readiness-bound"])
    }

    @Test func emittedByRkPlus3IsFine() {
        let c = Checker(n: 4, honest: [true, true, true, true])
        let b = ref(4, 2), b2 = ref(6, 1)
        c.checkReadinessBound(sub(1, leaderRound: 5, blocks: [], pending: [b]), time: 0)
        c.checkReadinessBound(sub(2, leaderRound: 8, blocks: [b], pending: [b2]), time: 0)
        c.checkReadinessBound(sub(3, leaderRound: 10, blocks: [b2], pending: []), time: 0)
        #expect(c.violations.isEmpty)
        #expect(c.readinessChecks == 3)
    }
}
