import FoxConsensusSimulation
import Testing

@testable import FoxConsensus

/// The status exchange at rest (block sync, design 10.2): a node that missed the last blocks
/// before the cluster went idle learns of them within a bounded time, and an idle cluster still
/// goes quiet.
@Suite struct StatusTests {
    /// Messages among the scripted cores; nodes outside `cores` are down.
    static func deliver(_ out: [Output], from: UInt16, into cores: inout [UInt16: ScriptedNode], now: UInt64)
        -> Int
    {
        var sent = 0
        for o in out {
            var targets: [UInt16] = []
            var payload: [UInt8] = []
            switch o {
            case .send(let to, let bytes): targets = [to]; payload = bytes
            case .broadcast(let bytes): targets = cores.keys.sorted().filter { $0 != from }; payload = bytes
            default: continue
            }
            sent += 1
            for to in targets where cores[to] != nil {
                let reply = cores[to]!.core.step(.message(from: from, bytes: payload), now: now)
                sent += deliver(reply, from: to, into: &cores, now: now)
            }
        }
        return sent
    }

    static func statusTargets(_ out: [Output]) -> [UInt16] {
        out.compactMap { o -> UInt16? in
            guard case .send(let to, let bytes) = o, case .status? = try? Message.decode(bytes, maxBlockBytes: 1 << 20)
            else { return nil }
            return to
        }
    }

    /// A sync response holds at most `maxResponseBytes` of blocks (beyond its first): 64 full
    /// blocks of 1 MiB would pass the transport's 64 MiB frame bound and stop the server.
    @Test func syncResponsesAreBoundedInBytes() {
        let all = [0, 1, 2, 3]
        var s = DagScript(n: 4)
        for r in UInt64(1)...8 { s.round(r, authors: all, parents: all) }
        func pushed(_ local: LocalParameters) -> [Int] {
            var a = ScriptedNode(s, me: 0, local: local)
            a.feed(s, s.upTo(8))
            let behind = Message.status([UInt64](repeating: 0, count: 4)).encode()
            let out = a.core.step(.message(from: 1, bytes: behind), now: 10 * a.core.local.syncInterval)
            return out.compactMap { o -> Int? in
                guard case .send(_, let bytes) = o,
                    case .blocks(let blocks)? = try? Message.decode(bytes, maxBlockBytes: 1 << 20)
                else { return nil }
                return blocks.count
            }
        }
        // The blocks held in memory (the emitted ones are read from the store): several.
        let unbounded = pushed(LocalParameters())
        #expect(unbounded.count == 1 && unbounded[0] > 1, "\(unbounded)")
        var tight = LocalParameters()
        tight.maxResponseBytes = 1
        #expect(pushed(tight) == [1], "one block when one is already over the bound")
    }

    /// Lossy n=4 seeds 9, 51 and 130 in miniature: node B lacks the last round when the cluster
    /// goes idle, and the statuses and pushes that would have told it are lost (A's push was
    /// skipped as "still in flight" too). Before, nobody announced anything again and B stayed
    /// one commit behind for good. Now A and B keep exchanging statuses at the sync interval
    /// until their announced rounds agree: B catches up, then both go quiet.
    @Test func nodeThatMissedTheLastBlocksCatchesUpAtRest() {
        let all = [0, 1, 2, 3]
        var s = DagScript(n: 4)
        for r in UInt64(1)...8 { s.round(r, authors: all, parents: all) }
        var a = ScriptedNode(s, me: 0)
        a.feed(s, s.upTo(8))
        var b = ScriptedNode(s, me: 1)
        b.feed(s, s.upTo(7))
        #expect(b.core.commitIndex < a.core.commitIndex)
        let interval = a.core.local.syncInterval
        // B's status reaches A right after A inserted round 8: nothing pushed (in flight).
        let early = a.core.step(.message(from: 1, bytes: Message.status(b.core.dag.latestRound).encode()), now: 1)
        #expect(!early.contains { if case .send = $0 { return true } else { return false } })
        // The first statuses both send are lost.
        var t = interval
        _ = a.core.step(.tick, now: t)
        _ = b.core.step(.tick, now: t)
        var cores: [UInt16: ScriptedNode] = [0: a, 1: b]
        var lastSend = t
        for _ in 0..<80 {
            t += interval / 2
            for id in [UInt16(0), 1] {
                let out = cores[id]!.core.step(.tick, now: t)
                if Self.deliver(out, from: id, into: &cores, now: t) > 0 { lastSend = t }
            }
        }
        a = cores[0]!
        b = cores[1]!
        #expect(b.core.commitIndex == a.core.commitIndex)
        #expect(b.core.runningHash == a.core.runningHash)
        #expect(b.core.dag.latestRound == a.core.dag.latestRound)
        // Quiet once settled: peers 2 and 3 (down) get maxUnansweredStatuses follow-ups each.
        let budget = UInt64(a.core.config.maxUnansweredStatuses + 4) * interval
        #expect(lastSend < interval + budget, "last message at \(lastSend)")
    }

    /// A peer that never answers gets `maxUnansweredStatuses` follow-ups, one per sync interval,
    /// then none; when it speaks again (announcing other rounds) the follow-ups resume.
    @Test func followUpsToASilentPeerAreBounded() {
        let s = DagScript(n: 4)
        // An observer (it never proposes): its held rounds stay at genesis.
        var core = ScriptedNode(s, me: 0).core
        let interval = core.local.syncInterval
        // Peers 1 and 2 announce what this node holds (genesis); peer 3 never speaks.
        for p in [UInt16(1), 2] {
            _ = core.step(.message(from: p, bytes: Message.status([0, 0, 0, 0]).encode()), now: 1)
        }
        var toSilent = 0
        var t: UInt64 = 1
        for _ in 0..<60 {
            t += interval / 3
            let out = core.step(.tick, now: t)
            let targets = Self.statusTargets(out)
            #expect(!targets.contains(1) && !targets.contains(2))
            toSilent += targets.filter { $0 == 3 }.count
        }
        #expect(toSilent == core.config.maxUnansweredStatuses)
        // Peer 3 speaks: it claims a round this node lacks, so follow-ups start again.
        _ = core.step(.message(from: 3, bytes: Message.status([0, 0, 0, 1]).encode()), now: t)
        var again = 0
        for _ in 0..<6 {
            t += interval
            again += Self.statusTargets(core.step(.tick, now: t)).filter { $0 == 3 }.count
        }
        #expect(again == 6)
    }
}
