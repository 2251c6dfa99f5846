import FoxConsensusSimulation
import Testing

@testable import FoxConsensus

/// State sync (design section 10.3): when it starts, what the checkpoint digest covers, what the
/// disk keeps (section 11) and where served blocks come from (10.2).
@Suite struct StateSyncTests {
    static func stateRequestTargets(_ out: [Output], maxBlockBytes: Int) -> [UInt16] {
        out.compactMap { o -> UInt16? in
            guard case .send(let to, let bytes) = o,
                case .stateRequest? = try? Message.decode(bytes, maxBlockBytes: maxBlockBytes)
            else { return nil }
            return to
        }.sorted()
    }

    /// Gap: one Byzantine status claiming to be far ahead made honest nodes request snapshots.
    /// Now V = f+1 distinct peers must claim rounds beyond the retained window; one liar,
    /// repeating itself over many sync intervals, triggers nothing.
    @Test func oneFarAheadStatusDoesNotStartStateSync() {
        let s = DagScript(n: 4, gcDepth: 10)
        let maxBlock = s.committee.params.maxBlockBytes
        var core = ConsensusCore(
            config: CoreConfig(committee: s.committee, me: 0), signer: s.keys.signers[0], verifier: s.keys.verifier,
            image: .fresh)
        _ = core.step(.start, now: 0)
        let liar = Message.status([UInt64.max, UInt64.max, UInt64.max, UInt64.max]).encode()
        for t in UInt64(1)...20 {
            let out = core.step(.message(from: 3, bytes: liar), now: t * 1_000_000_000)
            #expect(Self.stateRequestTargets(out, maxBlockBytes: maxBlock).isEmpty)
        }
        // A second peer beyond the window (here honest and genuinely ahead): V = 2 claimants.
        let ahead = Message.status([0, 50, 0, 0]).encode()
        let out = core.step(.message(from: 1, bytes: ahead), now: 30_000_000_000)
        #expect(Self.stateRequestTargets(out, maxBlockBytes: maxBlock) == [1, 3])
        #expect(core.metrics.stateRequestsSent == 2)
        // Within the window (decided 0 + gcDepth 10 + 3): nothing, whoever claims it.
        var fresh = ConsensusCore(
            config: CoreConfig(committee: s.committee, me: 0), signer: s.keys.signers[0], verifier: s.keys.verifier,
            image: .fresh)
        _ = fresh.step(.start, now: 0)
        for p in UInt16(1)...3 {
            let o = fresh.step(.message(from: p, bytes: Message.status([0, 13, 13, 13]).encode()), now: 1)
            #expect(Self.stateRequestTargets(o, maxBlockBytes: maxBlock).isEmpty)
        }
    }
}

@Suite struct DiskPruningTests {
    static func pruneFloors(_ out: [Output]) -> [UInt64] {
        out.compactMap { o -> UInt64? in
            if case .persist(let b) = o { return b.pruneBelowRound }
            return nil
        }
    }

    /// Gap: the disk was pruned behind the node's own snapshots. Section 11: only below
    /// R_s − gcDepth, s the latest stable checkpoint (Q authors attest it, 10.3). Without any
    /// attestation from peers nothing is pruned, however many local checkpoints pass; once Q
    /// authors attest C_k the floor is exactly R_k − gcDepth, not the newer local snapshot's.
    @Test func diskPrunesOnlyBelowTheStableCheckpoint() {
        let all = [0, 1, 2, 3]
        var s = DagScript(n: 4, gcDepth: 4, checkpointInterval: 2)
        for r in UInt64(1)...24 { s.round(r, authors: all, parents: all) }
        var a = ScriptedNode(s, me: 0)
        a.feed(s, s.upTo(24))
        #expect(a.core.commitIndex >= 20)
        let checkpoints = a.deliveries.compactMap(\.checkpoint)
        #expect(checkpoints.count >= 10, "local checkpoints every K = 2 commits")
        #expect(a.core.stableCheckpoint == nil)
        #expect(Self.pruneFloors(a.outputs).isEmpty, "no stable checkpoint: the disk keeps everything")
        // Q = 3 authors attest an early checkpoint; the local snapshots are far newer.
        let c = checkpoints[2]
        #expect(c.leaderRound > s.committee.params.gcDepth)
        s.round(25, authors: [1, 2, 3], parents: all, attestation: c)
        s.add(0, 25, parents: all)
        for r in UInt64(26)...27 { s.round(r, authors: all, parents: all) }
        a.outputs = []
        a.feed(s, s.upTo(27))
        #expect(a.core.stableCheckpoint == c)
        let floors = Self.pruneFloors(a.outputs)
        #expect(floors == [c.leaderRound - 4], "\(floors)")
    }
}
