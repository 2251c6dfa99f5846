import FoxConsensus

/// Result of one seeded run.
public struct SimResult: Sendable {
    public var scenario: String
    public var violations: [Violation]
    public var commits: Int
    public var entriesApplied: Int
    public var entriesAccepted: Int
    public var events: Int
    public var messages: Int
    public var simulatedSeconds: Double
    public var forcedEmissions: Int
    public var equivocationsSeen: Int
    public var invalidBlocks: Int
    public var readinessViolations: Int
    public var maxDagBlocks: Int
    public var maxSuspended: Int
    /// State syncs installed by honest nodes (10.3).
    public var stateSyncs: Int
    /// State requests sent and snapshots shipped by honest nodes (current incarnations).
    public var stateRequestsSent: Int
    public var stateResponsesServed: Int
    /// Installed snapshots whose emitted list differed from the one rebuilt from the anchor.
    public var stateEmittedMismatches: Int
    /// State responses honest nodes rejected (failed verification or unsolicited).
    public var stateResponsesRejected: Int
    /// Blocks honest nodes served to peers from their store (10.2).
    public var blocksServedFromStore: Int
    /// The lowest stable checkpoint index (Q attestations, 10.3) among the honest nodes up at
    /// the end (0: one has none).
    public var minStableCheckpoint: UInt64
    public var stats: SimStats
    public var passed: Bool { violations.isEmpty }
    /// The line to paste to reproduce a failure.
    public var reproduce: String
}

/// Figures collected during a run (section 8 latency, fairness).
public struct SimStats: Sendable {
    /// Block creation → emission at its author, in ns.
    public var leaderEmission: [UInt64] = []
    public var nonLeaderEmission: [UInt64] = []
    /// Leader block creation → its commit decision at its author, in ns.
    public var leaderCommit: [UInt64] = []
    public var meanDelay: UInt64 = 1
    public var inversions = 0
    public var eligiblePairs = 0
    public var lastMessageTime: UInt64 = 0
    public init() {}
}

final class SimNode {
    let id: UInt16
    var cores: [ConsensusCore?]
    var stores: [InMemoryConsensusStorage]
    var up = true
    var gen: UInt64 = 0
    var timerGen: [UInt64]
    var clockOffset: Int64
    var diskBusyUntil: [UInt64]
    let byz: ByzantineKind?
    var backup: InMemoryConsensusStorage?
    var crashedAfter: UInt64? = nil
    var slow: UInt64 = 1
    var seenBlocks: [[UInt8]] = []
    /// lyingSync: the latest genuine state response it obtained, replayed doctored.
    var lastStateResponse: [UInt8]? = nil
    /// The abstract application state per twin: appHash[k] = H(appHash[k−1] ‖ entries applied
    /// by commit k). Durable with the commits (survives crashes, lost on wipe); state sync
    /// installs it from the snapshot bytes.
    var appHash: [[UInt64: Digest]]
    init(id: UInt16, twins: Int, offset: Int64, byz: ByzantineKind?) {
        self.id = id
        cores = Array(repeating: nil, count: twins)
        stores = (0..<twins).map { _ in InMemoryConsensusStorage() }
        timerGen = Array(repeating: 0, count: twins)
        appHash = Array(repeating: [:], count: twins)
        diskBusyUntil = Array(repeating: 0, count: twins)
        clockOffset = offset
        self.byz = byz
    }
}

enum SimEvent {
    case deliver(to: Int, from: Int, bytes: [UInt8])
    case timer(node: Int, twin: Int, gen: UInt64, nodeGen: UInt64)
    case disk(node: Int, twin: Int, txn: UInt64, nodeGen: UInt64)
    case submit(node: Int)
    case fault(Int)
    case byzTick(node: Int)
    case livenessCheck
    case livenessVerify
}

/// The deterministic cluster simulator: one thread, a seeded PRNG, a virtual clock.
public final class Simulator {
    public let scenario: Scenario
    let keys: SimKeys
    var rng: SimRandom
    public private(set) var now: UInt64 = 0
    var queue = EventQueue<SimEvent>()
    var nodes: [SimNode] = []
    public let checker: Checker
    var cut = Set<Int>()
    var loss: Double
    var events = 0
    var messages = 0
    var accepted = 0
    var stats = SimStats()
    var created: [BlockRef: UInt64] = [:]
    var submitTime: [EntryID: UInt64] = [:]
    var acceptedAt: [(EntryID, Int, UInt64)] = []
    var commitsAtHeal: [UInt64] = []
    var bodyCounter: UInt64 = 0
    var lastHonestMessageTime: UInt64 = 0
    public var trace: ((String) -> Void)? = nil

    public init(_ scenario: Scenario) {
        self.scenario = scenario
        rng = SimRandom(seed: scenario.seed)
        keys = SimKeys(n: scenario.n, seed: scenario.seed, params: scenario.params, realCrypto: scenario.realCrypto)
        let honest = (0..<scenario.n).map { scenario.byzantine[UInt16($0)] == nil }
        checker = Checker(n: scenario.n, honest: honest)
        loss = scenario.link.loss
        stats.meanDelay = scenario.link.meanDelay
        for i in 0..<scenario.n {
            let byz = scenario.byzantine[UInt16(i)]
            let offset = i < scenario.clockOffsets.count ? scenario.clockOffsets[i] : 0
            nodes.append(SimNode(id: UInt16(i), twins: byz == .twins ? 2 : 1, offset: offset, byz: byz))
        }
    }

    var n: Int { scenario.n }
    func isHonest(_ i: Int) -> Bool { nodes[i].byz == nil }

    func localTime(_ i: Int) -> UInt64 {
        let t = Int64(clamping: now) &+ nodes[i].clockOffset
        return t < 0 ? 0 : UInt64(t)
    }

    func makeCore(_ i: Int, twin: Int) -> ConsensusCore {
        let cfg = CoreConfig(committee: keys.committee, me: UInt16(i), local: scenario.local)
        return ConsensusCore(
            config: cfg, signer: keys.signers[i], verifier: keys.verifier, image: nodes[i].stores[twin].load())
    }

    // MARK: run

    public func run() -> SimResult {
        for i in 0..<n {
            for t in nodes[i].cores.indices {
                nodes[i].cores[t] = makeCore(i, twin: t)
                step(i, twin: t, .start)
            }
            queue.push(rng.below(scenario.submitInterval), .submit(node: i))
            if nodes[i].byz != nil { queue.push(rng.range(50_000_000, 100_000_000), .byzTick(node: i)) }
        }
        for (idx, f) in scenario.faults.enumerated() { queue.push(f.0, .fault(idx)) }
        if scenario.healTime > 0 && scenario.expectLiveness { queue.push(scenario.healTime, .livenessCheck) }
        // The scenario, then the settle period at rest (no client or fault input after `duration`).
        let end = scenario.duration.plusSaturating(scenario.settle)
        while let t = queue.peekTime, t <= end, checker.violations.isEmpty {
            let (time, ev) = queue.pop()!
            now = time
            events += 1
            handle(ev)
        }
        now = end
        finalChecks()
        return result()
    }

    func handle(_ ev: SimEvent) {
        switch ev {
        case .deliver(let to, let from, let bytes):
            guard nodes[to].up, !isCut(from, to) else { return }
            if nodes[to].byz != nil, bytes.count > 2, bytes[1] == 1, nodes[to].seenBlocks.count < 64 {
                nodes[to].seenBlocks.append(bytes)
            }
            if nodes[to].byz == .lyingSync || nodes[to].byz == .stateReplay, bytes.count > 2, bytes[1] == 8 {
                nodes[to].lastStateResponse = bytes
            }
            for t in nodes[to].cores.indices { step(to, twin: t, .message(from: UInt16(from), bytes: bytes)) }
        case .timer(let i, let t, let gen, let nodeGen):
            guard nodes[i].up, nodes[i].gen == nodeGen, nodes[i].timerGen[t] == gen else { return }
            step(i, twin: t, .tick)
        case .disk(let i, let t, let txn, let nodeGen):
            guard nodes[i].up, nodes[i].gen == nodeGen else { return }
            nodes[i].stores[t].sync(through: txn)
            step(i, twin: t, .persisted(txn: txn))
        case .submit(let i):
            if now < scenario.workloadEnd {
                if nodes[i].up {
                    bodyCounter += 1
                    var w = ByteWriter(); w.u64(UInt64(i)); w.u64(bodyCounter); w.u64(now)
                    for t in nodes[i].cores.indices { step(i, twin: t, .submit(kind: 1, body: w.bytes + [UInt8(t)])) }
                }
                queue.push(now + 1 + rng.below(2 * scenario.submitInterval), .submit(node: i))
            }
        case .fault(let idx):
            applyFault(scenario.faults[idx].1)
        case .byzTick(let i):
            byzantineTick(i)
            queue.push(now + rng.range(20_000_000, 80_000_000), .byzTick(node: i))
        case .livenessCheck:
            commitsAtHeal = checker.nodeCommits
            queue.push(now + scenario.livenessBound, .livenessVerify)
        case .livenessVerify:
            // Commits resume within the bound once faults heal (property 10).
            for i in 0..<n where isHonest(i) && nodes[i].up && nodes[i].cores[0]?.mode == .active {
                if checker.nodeCommits[i] <= (i < commitsAtHeal.count ? commitsAtHeal[i] : 0)
                    && now < scenario.workloadEnd + scenario.livenessBound
                {
                    checker.fail(
                        "liveness",
                        "node \(i) made no commit within \(Double(scenario.livenessBound) / 1e9)s of healing", now)
                }
            }
        }
    }

    var lastSubmitBody: [UInt8] = []

    func step(_ i: Int, twin: Int, _ input: Input) {
        let node = nodes[i]
        let lt = localTime(i)
        guard let outs = node.cores[twin]?.step(input, now: lt) else { return }
        var submittedBody: [UInt8]? = nil
        if case .submit(_, let body) = input { submittedBody = body }
        var appSnapshotsDue: [UInt64] = []
        var reads: [StoreRead] = []
        defer {
            // Sync served from the store (10.2): the host reads and hands the blocks back.
            for r in reads where node.up {
                step(i, twin: twin, .read(r, blocks: node.stores[twin].readBlocks(r.refs)))
            }
            // The host hands its application snapshot for each checkpoint commit (10.3).
            for k in appSnapshotsDue where node.up {
                var w = ByteWriter(); w.digest(node.appHash[twin][k] ?? .zero)
                step(i, twin: twin, .appSnapshot(commitIndex: k, bytes: w.bytes))
            }
        }
        for o in outs {
            switch o {
            case .send(let to, let bytes):
                transmit(from: i, twin: twin, to: Int(to), bytes)
            case .broadcast(let bytes):
                if isHonest(i), let ref = checker.honestSend(i, bytes, committee: keys.committee, time: now),
                    created[ref] == nil
                {
                    created[ref] = now
                }
                for j in 0..<n where j != i { transmit(from: i, twin: twin, to: j, bytes, checked: true) }
            case .persist(let batch):
                node.stores[twin].write(batch)
                let lat = rng.range(scenario.diskLatency.0, scenario.diskLatency.1)
                let at = max(now, node.diskBusyUntil[twin]) + lat
                node.diskBusyUntil[twin] = at
                queue.push(at, .disk(node: i, twin: twin, txn: batch.txn, nodeGen: node.gen))
            case .setTimer(let at):
                node.timerGen[twin] += 1
                let virt = Int64(clamping: at) &- node.clockOffset
                let when = virt <= Int64(clamping: now) ? now + 1 : UInt64(virt)
                queue.push(when, .timer(node: i, twin: twin, gen: node.timerGen[twin], nodeGen: node.gen))
            case .deliver(let d):
                applyToApp(i, twin: twin, d)
                if twin == 0 { delivered(i, d) }
                if d.checkpointDue { appSnapshotsDue.append(d.subDag.index) }
            case .stateSynced(let c, let app):
                var r = ByteReader(app)
                let h = (try? r.digest("app")) ?? .zero
                node.appHash[twin][c.commitIndex] = h
                trace?("t=\(now) node \(i) state-synced to commit \(c.commitIndex)")
                if twin == 0 { checker.stateSynced(i, c, appHash: h, time: now) }
            case .accepted(let id):
                if let b = submittedBody {
                    checker.submitted(id, body: b)
                    if twin == 0 {
                        accepted += 1
                        submitTime[id] = now
                        acceptedAt.append((id, i, now))
                    }
                }
            case .read(let r):
                reads.append(r)
            case .rejected:
                break
            case .recovered(let r):
                trace?("t=\(now) node \(i) recovered at lastOwnRound \(r)")
            case .halted(let why):
                trace?("t=\(now) node \(i) HALTED: \(why)")
                checker.halted(i, why, time: now)
            }
        }
    }

    /// Applies a commit to the node's abstract application state; honest nodes must agree on it
    /// at every commit index (property 7), also after a state sync.
    func applyToApp(_ i: Int, twin: Int, _ d: Delivery) {
        let k = d.subDag.index
        let prev: Digest
        if k == 1 {
            prev = .zero
        } else if let p = nodes[i].appHash[twin][k - 1] {
            prev = p
        } else {
            if isHonest(i) {
                checker.fail(
                    "determinism", "node \(i) applies commit \(k) without the application state of \(k - 1)", now)
            }
            return
        }
        var w = ByteWriter(); w.digest(prev)
        for e in d.applied { w.u16(e.id.origin); w.u64(e.id.incarnation); w.u64(e.id.seq); w.lengthPrefixed(e.body) }
        let h = Digest.sha256(w.bytes)
        nodes[i].appHash[twin][k] = h
        // Keep the last 64 indices. Not `k - 64`: after a restore from an old copy the replay
        // starts below indices still held, and k < 64 trapped (restore-backup n=4 seed 1013).
        if nodes[i].appHash[twin].count > 64 {
            for old in nodes[i].appHash[twin].keys where old.plusSaturating(64) <= k {
                nodes[i].appHash[twin][old] = nil
            }
        }
        if twin == 0 { checker.appState(i, k, h, time: now) }
    }

    func delivered(_ i: Int, _ d: Delivery) {
        checker.delivered(i, d, time: now)
        guard isHonest(i), !d.replayed else { return }
        for b in d.subDag.blocks where Int(b.author) == i {
            if let c = created[b] {
                let lat = now - c
                if keys.committee.leader(b.round) == b.author {
                    stats.leaderEmission.append(lat)
                } else {
                    stats.nonLeaderEmission.append(lat)
                }
            }
        }
        if Int(d.subDag.leader.author) == i, let c = created[d.subDag.leader] { stats.leaderCommit.append(now - c) }
    }

    // MARK: network

    func isCut(_ a: Int, _ b: Int) -> Bool { cut.contains(a * n + b) }

    func transmit(from: Int, twin: Int, to: Int, _ bytes: [UInt8], checked: Bool = false) {
        if !checked && isHonest(from) { _ = checker.honestSend(from, bytes, committee: keys.committee, time: now) }
        if let kind = nodes[from].byz {
            for (dest, b) in byzantineFilter(kind, from: from, twin: twin, to: to, bytes) {
                send(from: from, to: dest, b)
            }
        } else {
            send(from: from, to: to, bytes)
        }
    }

    func send(from: Int, to: Int, _ bytes: [UInt8]) {
        guard from != to, !isCut(from, to) else { return }
        messages += 1
        stats.lastMessageTime = now
        if isHonest(from) { lastHonestMessageTime = now }
        if rng.chance(loss) { return }
        let copies = rng.chance(scenario.link.duplicate) ? 2 : 1
        for _ in 0..<copies {
            var b = bytes
            if rng.chance(scenario.link.corrupt), !b.isEmpty {
                let pos = Int(rng.below(UInt64(b.count)))
                b[pos] ^= UInt8(1 << rng.below(8))
            }
            var delay = scenario.link.baseDelay + rng.below(scenario.link.jitter + 1)
            if rng.chance(scenario.link.tailChance) { delay += rng.below(scenario.link.tailDelay) }
            delay *= max(nodes[from].slow, nodes[to].slow)
            queue.push(now + delay, .deliver(to: to, from: from, bytes: b))
        }
    }

    // MARK: faults

    func applyFault(_ f: FaultAction) {
        trace?("t=\(now) fault \(f)")
        switch f {
        case .partition(let groups):
            cut = []
            var group = [Int](repeating: -1, count: n)
            for (g, members) in groups.enumerated() { for m in members { group[Int(m)] = g } }
            for a in 0..<n { for b in 0..<n where a != b && group[a] != group[b] { cut.insert(a * n + b) } }
        case .cut(let pairs):
            for (a, b) in pairs { cut.insert(Int(a) * n + Int(b)); cut.insert(Int(b) * n + Int(a)) }
        case .heal:
            cut = []
            loss = scenario.link.loss
        case .crash(let i):
            crash(Int(i))
        case .restart(let i):
            restart(Int(i))
        case .wipe(let i):
            crash(Int(i))
            for s in nodes[Int(i)].stores { s.wipe() }
            for t in nodes[Int(i)].appHash.indices { nodes[Int(i)].appHash[t] = [:] }
        case .backup(let i):
            nodes[Int(i)].backup = nodes[Int(i)].stores[0].copy()
        case .restoreBackup(let i):
            crash(Int(i))
            if let b = nodes[Int(i)].backup { nodes[Int(i)].stores[0].restore(from: b) }
            restart(Int(i))
        case .clockJump(let i, let delta):
            nodes[Int(i)].clockOffset &+= delta
        case .slow(let i, let factor):
            nodes[Int(i)].slow = factor
        case .crashAll:
            for i in 0..<n { crash(i) }
        case .restartAll:
            for i in 0..<n { restart(i) }
        case .setLoss(let p):
            loss = p
        }
        if case .heal = f {} else { return }
    }

    func crash(_ i: Int) {
        let node = nodes[i]
        guard node.up else { return }
        node.up = false
        node.gen += 1
        node.crashedAfter = now
        for s in node.stores { s.crash() }
        for t in node.cores.indices { node.cores[t] = nil }
    }

    func restart(_ i: Int) {
        let node = nodes[i]
        guard !node.up else { return }
        node.up = true
        node.gen += 1
        checker.restarted(i)
        for t in node.cores.indices {
            node.cores[t] = makeCore(i, twin: t)
            step(i, twin: t, .start)
        }
    }

    // MARK: final checks

    func finalChecks() {
        guard checker.violations.isEmpty else { return }
        // Liveness after healing (properties 10): commits resumed within the bound.
        let live = (0..<n).filter { isHonest($0) && nodes[$0].up && !(nodes[$0].cores[0]?.isHalted ?? true) }
        // Replay from the store reproduces the running hash (property 7).
        for i in live {
            let store = nodes[i].stores[0]
            store.sync()
            let cfg = CoreConfig(committee: keys.committee, me: UInt16(i), local: scenario.local)
            var core = ConsensusCore(config: cfg, signer: keys.signers[i], verifier: keys.verifier, image: store.load())
            let outs = core.step(.start, now: localTime(i))
            var replayed = false, newCommits = false
            for o in outs {
                if case .halted(let why) = o { checker.fail("replay", "node \(i) replay halted: \(why)", now) }
                // Only the commits recomputed from the store: the restarted core may also propose
                // at once (its idle-heartbeat count starts afresh), and its own new block can
                // decide a commit the cluster at rest never made (lossy n=4 seed 251, before the
                // status follow-ups).
                guard case .deliver(let d) = o else { continue }
                if !d.replayed { newCommits = true; continue }
                replayed = true
                checkReplayed(i, d.subDag.index, d.subDag.runningHash)
            }
            // No commit recomputed: the restored snapshot is the node's position.
            if !replayed && !newCommits && core.commitIndex > 0 { checkReplayed(i, core.commitIndex, core.runningHash) }
        }
        // The core's own readiness-bound counter (section 7) must stay at zero on honest nodes.
        for i in live where (nodes[i].cores[0]?.metrics.readinessBoundViolations ?? 0) > 0 {
            checker.fail(
                "readiness-bound",
                "node \(i) counted \(nodes[i].cores[0]!.metrics.readinessBoundViolations) readiness-bound violations",
                now)
        }
        guard scenario.expectLiveness else { return }
        // Every honest node that is up has finished recovering or catching up: one stuck
        // outside active mode would be left out of the convergence check below.
        for i in 0..<n where isHonest(i) && nodes[i].up {
            let mode = nodes[i].cores[0]?.mode
            if mode != .active {
                checker.fail(
                    "liveness", "node \(i) is up but not active at rest: \(mode.map { "\($0)" } ?? "no core")", now)
            }
        }
        checkConvergenceAtRest(live)
        // Everything accepted by an honest node that did not crash afterwards is committed.
        var missing = 0
        var example: EntryID? = nil
        for (id, node, t) in acceptedAt where isHonest(node) && t < scenario.workloadEnd {
            if let c = nodes[node].crashedAfter, c >= t { continue }
            if !checker.appliedSet.contains(id) { missing += 1; example = example ?? id }
        }
        if missing > 0 {
            checker.fail("liveness", "\(missing) accepted entries never committed, e.g. \(example!)", now)
        }
        // Fairness metric (11) over the canonical log.
        computeFairness()
    }

    func checkReplayed(_ i: Int, _ index: UInt64, _ runningHash: Digest) {
        let k = Int(index)
        if k > checker.global.count || checker.global[k - 1].runningHash != runningHash {
            checker.fail("replay", "node \(i) replayed commit \(k) with another running hash", now)
        }
    }

    /// At rest (after the settle period) every live honest node holds the same commit: index and
    /// running hash. A node that missed the last blocks before the cluster went idle must have
    /// learned of them. Without Byzantine nodes, the honest ones have also gone quiet.
    func checkConvergenceAtRest(_ live: [Int]) {
        let active = live.filter { nodes[$0].cores[0]?.mode == .active }
        let heads = active.map { i in (i, nodes[i].cores[0]!.commitIndex, nodes[i].cores[0]!.runningHash) }
        if let top = heads.max(by: { $0.1 < $1.1 }) {
            for (i, k, h) in heads where k != top.1 || h != top.2 {
                checker.fail(
                    "convergence",
                    "node \(i) at rest at commit \(k) (\(h)), node \(top.0) at commit \(top.1) (\(top.2))", now)
            }
        }
        if scenario.byzantine.isEmpty, lastHonestMessageTime.plusSaturating(scenario.quietWindow) > now {
            checker.fail(
                "quiet",
                "honest nodes still sending at rest: last message at \(Double(lastHonestMessageTime) / 1e9)s", now)
        }
    }

    func computeFairness() {
        let maxSkew = UInt64((0..<n).filter(isHonest).map { abs(nodes[$0].clockOffset) }.max() ?? 0)
        let delta = maxSkew + 2 * scenario.link.meanDelay
        let honestIDs = checker.appliedOrder.filter { isHonest(Int($0.origin)) && submitTime[$0] != nil }
        let times = honestIDs.map { submitTime[$0]! }
        var eligible = 0, inverted = 0
        let m = min(times.count, 4000)
        for i in 0..<m {
            for j in (i + 1)..<m where honestIDs[i].origin != honestIDs[j].origin {
                let (ti, tj) = (times[i], times[j])
                if ti > tj && ti - tj > delta {
                    eligible += 1; inverted += 1
                } else if tj > ti && tj - ti > delta {
                    eligible += 1
                }
            }
        }
        stats.inversions = inverted
        stats.eligiblePairs = eligible
    }

    /// One line per node (foxsim --verbose).
    public func describeNodes() -> [String] {
        nodes.map { node in
            guard let c = node.cores[0] else { return "node \(node.id): down" }
            return
                "node \(node.id)\(node.byz.map { " byz=\($0)" } ?? ""): mode=\(c.mode) lastOwn=\(c.lastOwnRound) dagHigh=\(c.dag.highestRound) "
                + "decided=\(c.decidedRound) commits=\(c.commitIndex) susp=\(c.suspendedCount) pending=\(c.pendingCount) P=\(c.pCount) "
                + "unemitted=[\(c.nonEmptyUnemittedDetail)] own=\(c.ownUnappliedCount) latest=\(c.dag.latestRound) timeouts=\(c.metrics.leaderTimeouts) invalid=\(c.metrics.invalidByRule) \(c.suspendedDetail)"
        }
    }

    func result() -> SimResult {
        var forced = 0, equiv = 0, invalid = 0, ready = 0, maxDag = 0, maxSusp = 0, requests = 0, served = 0
        var mismatches = 0, fromStore = 0, rejected = 0
        var minStable = UInt64.max
        for node in nodes where node.byz == nil {
            guard let c = node.cores[0] else { continue }
            if node.up { minStable = min(minStable, c.stableCheckpoint?.commitIndex ?? 0) }
            requests += c.metrics.stateRequestsSent; served += c.metrics.stateResponsesServed
            mismatches += c.metrics.stateEmittedMismatches
            rejected += c.metrics.stateResponsesRejected
            fromStore += c.metrics.blocksServedFromStore
            forced += c.metrics.forcedEmissions; equiv += c.metrics.equivocations; invalid += c.metrics.invalidBlocks
            ready += c.metrics.readinessBoundViolations
            maxDag = max(maxDag, c.metrics.maxDagBlocks); maxSusp = max(maxSusp, c.metrics.maxSuspended)
        }
        return SimResult(
            scenario: scenario.name, violations: checker.violations, commits: checker.global.count,
            entriesApplied: checker.appliedSet.count, entriesAccepted: accepted, events: events, messages: messages,
            simulatedSeconds: Double(scenario.duration) / 1e9, forcedEmissions: forced, equivocationsSeen: equiv,
            invalidBlocks: invalid, readinessViolations: ready, maxDagBlocks: maxDag, maxSuspended: maxSusp,
            stateSyncs: checker.stateSyncs, stateRequestsSent: requests, stateResponsesServed: served,
            stateEmittedMismatches: mismatches, stateResponsesRejected: rejected, blocksServedFromStore: fromStore,
            minStableCheckpoint: minStable == .max ? 0 : minStable, stats: stats,
            reproduce: "foxsim --scenario \(scenario.name) --nodes \(n) --seed \(scenario.seed) --seeds 1")
    }
}
