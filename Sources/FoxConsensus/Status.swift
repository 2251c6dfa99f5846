// The status exchange of block sync (10.2) once the cluster goes quiet.
//
// A status announces the highest round held per author. Statuses go out after new blocks (one
// broadcast per sync interval) and as replies to a peer that is ahead; a peer that reads one
// pushes the blocks the sender lacks. At rest nothing else is sent, so a node that missed the
// last blocks before the cluster went idle (the blocks, the pushes or the statuses announcing
// them lost) stayed one commit behind until the next publish. Hence: as long as a peer's
// announced rounds differ from this node's (either one lacks blocks of the other, or no status
// from it arrived yet), this node sends that peer its status once per sync interval. The
// behind side's status makes the other push; the ahead side's status makes the behind side
// reply and pull. Every exchange ends when the announced rounds are equal. A peer that does not
// answer (down, or a stale view of a peer that has caught up) gets `maxUnansweredStatuses`
// follow-ups, then none until it speaks again or this node gains a round: an idle cluster goes
// quiet. Peers are visited in id order (determinism, section 12).
extension ConsensusCore {
    /// Records a peer's status (element-wise maximum: a late, older status never lowers it).
    mutating func notePeerStatus(from: UInt16, rounds: [UInt64]) {
        let p = Int(from)
        if var known = peerRounds[p] {
            for a in 0..<n { known[a] = max(known[a], rounds[a]) }
            peerRounds[p] = known
        } else {
            peerRounds[p] = rounds
        }
        statusFollowUps[p] = 0
    }

    /// This node gained a round for some author: every peer is owed follow-ups again.
    mutating func heldRoundsChanged() {
        for p in statusFollowUps.indices { statusFollowUps[p] = 0 }
    }

    /// When peer p is owed its next follow-up status (nil: its announced rounds equal this node's,
    /// or it has not answered the last `maxUnansweredStatuses`).
    func statusFollowUpDue(_ p: Int) -> UInt64? {
        guard p != Int(me), statusFollowUps[p] < config.maxUnansweredStatuses, peerRounds[p] != dag.latestRound
        else { return nil }
        return statusSentAt[p].plusSaturating(local.syncInterval)
    }

    /// The earliest follow-up due (for `scheduleTimer`).
    var nextStatusFollowUp: UInt64? {
        guard mode == .active else { return nil }
        return (0..<n).compactMap { statusFollowUpDue($0) }.min()
    }

    /// Sends the follow-up statuses that are due, in peer order.
    mutating func sendStatusFollowUps(now: UInt64, out: inout [Output]) {
        guard mode == .active else { return }
        var status: [UInt8]? = nil
        for p in 0..<n {
            guard let due = statusFollowUpDue(p), now >= due else { continue }
            statusSentAt[p] = max(now, 1)
            statusFollowUps[p] += 1
            let bytes = status ?? Message.status(dag.latestRound).encode()
            status = bytes
            out.append(.send(to: UInt16(p), bytes: bytes))
        }
    }
}
