import FoxConsensus

public struct Violation: Error, CustomStringConvertible, Sendable {
    public var property: String
    public var detail: String
    public var time: UInt64
    public var description: String { "[\(property)] t=\(Double(time) / 1e9)s \(detail)" }
}

/// Cross-node checkers, run on every delivery and send (section 18).
public final class Checker {
    let n: Int
    let honest: [Bool]
    /// The canonical committed sequence: the first honest node to deliver commit k defines it.
    public private(set) var global: [CommittedSubDag] = []
    public private(set) var globalEntries: [[EntryID]] = []
    /// Per honest node: last delivered commit index (nil right after a restart: any k may come).
    var nodeLast: [UInt64?]
    public private(set) var nodeCommits: [UInt64]
    /// Submitted entries: id → body digest(s). Twins may submit two bodies for one id.
    var submitted: [EntryID: [Digest]] = [:]
    /// Per origin: the last applied id in the canonical log.
    var lastApplied: [EntryID?]
    /// Honest signatures seen on the wire: slot → digest.
    var signed: [Slot: Digest] = [:]
    public private(set) var violations: [Violation] = []
    public private(set) var appliedSet: Set<EntryID> = []
    public private(set) var appliedOrder: [EntryID] = []

    init(n: Int, honest: [Bool]) {
        self.n = n; self.honest = honest
        nodeLast = Array(repeating: 0, count: n)
        nodeCommits = Array(repeating: 0, count: n)
        lastApplied = Array(repeating: nil, count: n)
    }

    func fail(_ p: String, _ d: String, _ t: UInt64) {
        if violations.count < 20 { violations.append(Violation(property: p, detail: d, time: t)) }
    }

    func submitted(_ e: EntryID, body: [UInt8]) {
        submitted[e, default: []].append(Digest.sha256(body))
    }

    func restarted(_ node: Int) { nodeLast[node] = nil }

    /// Canonical application state per commit index (the first honest node defines it).
    var appStates: [UInt64: Digest] = [:]
    public private(set) var stateSyncs = 0

    func appState(_ node: Int, _ k: UInt64, _ h: Digest, time: UInt64) {
        guard honest[node] else { return }
        if let g = appStates[k] {
            if g != h { fail("determinism", "node \(node) application state after commit \(k) differs", time) }
        } else {
            appStates[k] = h
        }
    }

    /// A node installed checkpoint C_k by state sync: it must be the canonical commit k, with the
    /// canonical application state; its deliveries continue at k + 1.
    func stateSynced(_ node: Int, _ c: Checkpoint, appHash: Digest, time: UInt64) {
        guard honest[node] else { return }
        stateSyncs += 1
        let k = c.commitIndex
        if k == 0 || k > UInt64(global.count) || global[Int(k - 1)].runningHash != c.runningHash {
            fail("state-sync", "node \(node) installed checkpoint \(k) that is not the canonical commit", time)
        }
        if let last = nodeLast[node], last >= k {
            fail("state-sync", "node \(node) state-synced backwards to \(k) from \(last)", time)
        }
        appState(node, k, appHash, time: time)
        nodeLast[node] = k
        nodeCommits[node] = max(nodeCommits[node], k)
    }

    /// Agreement, no phantoms, per-origin order.
    func delivered(_ node: Int, _ d: Delivery, time: UInt64) {
        guard honest[node] else { return }
        let k = d.subDag.index
        if let last = nodeLast[node] {
            if k != last + 1 { fail("agreement", "node \(node) delivered commit \(k) after \(last)", time) }
        } else if k > UInt64(global.count) + 1 {
            fail("agreement", "node \(node) restarted at commit \(k) beyond the log (\(global.count))", time)
        }
        nodeLast[node] = k
        nodeCommits[node] = max(nodeCommits[node], k)
        let ids = d.applied.map { $0.id }
        if k <= UInt64(global.count) {
            let g = global[Int(k - 1)]
            if g.runningHash != d.subDag.runningHash || g.blocks != d.subDag.blocks || g.leader != d.subDag.leader {
                fail("agreement", "node \(node) commit \(k) differs: leader \(d.subDag.leader) vs \(g.leader)", time)
            }
            if globalEntries[Int(k - 1)] != ids {
                fail("agreement", "node \(node) commit \(k) applied other entries", time)
            }
            return
        }
        if k != UInt64(global.count) + 1 { return }
        global.append(d.subDag)
        checkReadinessBound(d.subDag, time: time)
        globalEntries.append(ids)
        for e in d.applied {
            let o = Int(e.id.origin)
            if honest[o] {
                guard let bodies = submitted[e.id] else {
                    fail("no-phantom", "entry \(e.id) was never submitted", time); continue
                }
                if !bodies.contains(Digest.sha256(e.body)) { fail("no-phantom", "entry \(e.id) body differs", time) }
            }
            if let last = lastApplied[o], !(last < e.id) {
                fail("origin-order", "entry \(e.id) applied after \(last)", time)
            }
            if appliedSet.contains(e.id) { fail("no-duplicate", "entry \(e.id) applied twice", time) }
            lastApplied[o] = e.id
            appliedSet.insert(e.id)
            appliedOrder.append(e.id)
        }
    }

    /// Leader round of the commit after which each block still pending first entered P.
    var enteredP: [BlockRef: UInt64] = [:]
    public private(set) var readinessChecks = 0

    /// Readiness bound (sections 7 and 18.8): a block entering P at commit k (leader round R_k)
    /// is emitted by the first commit with leader round ≥ R_k + 3. Checked on the canonical
    /// sequence: at every commit, nothing that entered P at a leader round ≤ R − 3 may still be
    /// pending. With gcDepth sized as in section 2 the forced emissions never pre-empt this; when
    /// they do (tiny gcDepth), forced blocks are emitted, which also satisfies the bound.
    func checkReadinessBound(_ c: CommittedSubDag, time: UInt64) {
        for b in c.blocks { enteredP[b] = nil }
        let r = c.leader.round
        for b in c.pending where enteredP[b] == nil { enteredP[b] = r }
        readinessChecks += 1
        let pendingSet = Set(c.pending)
        for (b, entered) in enteredP {
            if !pendingSet.contains(b) { enteredP[b] = nil; continue }
            if entered.plusSaturating(3) <= r {
                fail(
                    "readiness-bound",
                    "block \(b) entered P at leader round \(entered) and is still pending at commit \(c.index) (leader round \(r))",
                    time)
                enteredP[b] = nil
            }
        }
    }

    /// No honest node signs two blocks for one round, across restarts (checked on the wire).
    func honestSend(_ from: Int, _ bytes: [UInt8], committee: Committee, time: UInt64) -> BlockRef? {
        guard honest[from], bytes.count > 2, bytes[1] == 1 || bytes[1] == 2 || bytes[1] == 6 else { return nil }
        guard let msg = try? Message.decode(bytes, maxBlockBytes: committee.params.maxBlockBytes) else { return nil }
        var blocks: [[UInt8]] = []
        switch msg {
        case .block(let b): blocks = [b]
        case .blocks(let bs): blocks = bs
        case .recoverAnswer(_, let b): if let b { blocks = [b] }
        default: break
        }
        var firstOwn: BlockRef? = nil
        for b in blocks {
            guard
                let blk = try? BlockCodec.decode(
                    b, maxParents: committee.maxParents, maxBlockBytes: committee.params.maxBlockBytes,
                    maxEntryBytes: committee.maxEntryBytes), honest[Int(blk.author)]
            else { continue }
            let d = blk.digest
            let slot = Slot(author: blk.author, round: blk.round)
            if let prev = signed[slot], prev != d {
                fail("no-equivocation", "honest node \(blk.author) signed two blocks at round \(blk.round)", time)
            }
            signed[slot] = d
            // Latency figures count blocks that carry entries: an empty block has nothing to
            // deliver, and an idle node legitimately waits for the heartbeat (section 4).
            if Int(blk.author) == from, case .block = msg, !blk.payload.isEmpty {
                firstOwn = BlockRef(round: blk.round, author: blk.author, digest: d)
            }
        }
        return firstOwn
    }

    func halted(_ node: Int, _ why: String, time: UInt64) {
        if honest[node] { fail("no-halt", "honest node \(node) halted: \(why)", time) }
    }
}
