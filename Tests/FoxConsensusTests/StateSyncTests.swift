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
