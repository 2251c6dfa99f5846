import Dispatch
import FoxBrokerCore
import FoxBrokerStore
import FoxConsensus
import FoxMQTT
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Where a cluster node's consensus messages go: the cluster transport, or an in-process link
/// in tests.
public protocol ClusterLink: Sendable {
    func send(to peer: UInt16, _ bytes: [UInt8])
    func broadcast(_ bytes: [UInt8])
}

/// The consensus orderer of a cluster node: the local orderer's place taken by the consensus
/// core, behind the same apply path, store and output commit ("one broker, two orderers").
///
/// Connections submit events; each becomes an entry of this node's next block. Nothing is
/// applied at submit: every node applies the same committed entries, in the commit order, at
/// the commit's time (consensus.md §13), so every subscriber on every node sees the same
/// sequence, and the broker log (`log` table) is the same on every node, record for record.
///
/// One core thread (never an event loop) runs the core: it takes submissions and peer
/// messages from the inbox, steps the core, applies delivered commits to the broker state, and
/// writes each round of work in one LMDB transaction with one sync: the core's persist batches
/// (blocks, commit records), the log records of the entries those commits applied, and the
/// rows of a checkpoint. Only then are the actions (CONNACK, PUBACK, deliveries…) released,
/// and the core's own blocks sent: nothing a client or peer sees depends on state a crash
/// could lose. Signature checks happen inside the core, on this thread.
public final class ConsensusOrderer: Orderer, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Bytes of own entries submitted and not yet applied; beyond it `submit` answers busy
        /// (the connection stops reading): backpressure when consensus falls behind.
        public var pendingBytesMax: Int = 32 << 20
        /// Log records kept below the last checkpoint.
        public var logRetentionRecords: UInt64 = 1_000_000
        /// Chunks of a state transfer (bytes of rows per message).
        public var transferChunkBytes: Int = 1 << 20
        /// A state transfer request unanswered this long is sent again (to another peer).
        public var transferRetryMillis: UInt64 = 2_000
        /// How often the consensus statistics line is logged (info level).
        public var statisticsIntervalMillis: UInt64 = 10_000
        /// How long `stop` waits for this node's last entries (the ends of its sessions) to
        /// commit and become durable.
        public var stopTimeoutSeconds: Double = 10
        /// A peer unreachable this long is lost: its clients' sessions end through an ordered
        /// `nodeLost` (wills, expiry), and they resume them on any other node.
        public var willFailoverMillis: UInt64 = 30_000
        /// Test only (`FOXMQ_TEST_BYZANTINE=equivocate`): signs with this node's key. When set,
        /// each of this node's blocks goes to peers of even index as the core made it, and to
        /// the others as a second block for the same round (one more nanosecond of timestamp),
        /// signed too: a node that equivocates on every round. Honest nodes must keep agreeing.
        public var equivocationSigner: (@Sendable (Digest) -> [UInt8])?
        public init() {}
    }

    /// The kind byte of an entry that holds a `BrokerEvent` (canonical encoding).
    public static let brokerEventKind: UInt8 = 1
    /// The kind byte of an entry that holds several acknowledgements (`AcknowledgementBatch`).
    public static let acknowledgementBatchKind: UInt8 = 2

    private enum Work {
        case submit(BrokerEvent, size: Int)
        case message(from: UInt16, bytes: [UInt8])
    }

    private enum Status {
        /// The core is not active yet (start, amnesia recovery), or the node is stopping.
        case starting
        case running
        case full(String)
        case failed
    }

    // `condition` guards the fields below it; its value is 1 while the inbox has work or the
    // core thread must notice `stopping`.
    private let condition = ConditionLock<Int>(value: 0)
    private var inbox: [Work] = []
    private var pendingBytes = 0
    private var status = Status.starting
    private var stopping = false
    private var tickSubmitted = false
    private var startApplied = false
    private var durableCommit: UInt64 = 0
    /// Since when each unreachable peer has been unreachable (local clock), and the
    /// incarnation a `nodeLost` was ordered for.
    private var unreachableSince: [UInt16: (since: UInt64, incarnation: UInt32?)] = [:]
    private var lossOrdered: [UInt16: UInt32] = [:]
    /// The peers the transport can send to now.
    private var reachablePeers: Set<UInt16> = []
    /// Since when (local clock) this node has reached a quorum without a break; nil while it
    /// does not. A peer is judged lost only for the time it was unreachable from a majority.
    private var majoritySince: UInt64?
    private var forging = false

    // The broker state, applied on the core thread; read by others under `stateLock`.
    private let stateLock = NIOLock()
    /// Replaced (under the lock) when a state transfer installs a peer's rows.
    private var state: BrokerState

    // Core thread only.
    private var core: ConsensusCore
    private var timerAt: UInt64?
    private var batches: [PersistBatch] = []
    private var records: [(index: UInt64, value: ByteBuffer)] = []
    private var checkpoints: [StateCheckpoint] = []
    private var heldActions: [BrokerAction] = []
    private var scratch: [BrokerAction] = []
    private var followUps: [Input] = []
    private var nextIndex: UInt64
    private var lastChain: [UInt8]
    private var appliedCommit: UInt64
    private var checkpointIndex: UInt64
    /// The position of the rows taken at the last checkpoint commit, written with them.
    private var rowsPosition: RowsPosition?
    /// A state transfer in progress (the core installed a checkpoint beyond this node's log):
    /// deliveries wait in `transferBuffer` until the rows are installed.
    private var transfer: StateTransfer?
    private var transferBuffer: [Delivery] = []
    /// Sizes of own entries accepted by the core and not yet applied, by sequence number.
    /// This node's entries not yet applied: their size (held against the pending bound) and
    /// when they were submitted (the commit latency metric).
    private var ownSizes: [UInt64: (size: Int, submittedNanos: UInt64)] = [:]
    private var ownIncarnation: UInt64 = 0

    /// This node's index in the committee.
    public let me: UInt16
    private let incarnation: UInt32
    // Copied from the committee at init: other threads must not read `core`, which the core
    // thread mutates.
    private let maxEventBytes: Int
    private let quorum: Int
    private let memberCount: Int
    /// Peer messages waiting in the inbox, and those dropped because it was full (the core
    /// fetches what it misses; the bound keeps a flood from growing memory).
    private var inboxMessages = 0
    public private(set) var droppedMessages: UInt64 = 0
    static let inboxMessagesMax = 65_536
    private let store: NodeStore
    private let metrics: OrdererMetrics
    /// The store it writes, for the node's metrics (read-only uses).
    public var nodeStore: NodeStore { store }
    private let link: any ClusterLink
    private let sink: any ActionSink
    private let clock: any BrokerClock
    private let configuration: Configuration
    private let logger: Logger
    private let onFatal: @Sendable (String) -> Void
    private let thread = NIOThreadPool(numberOfThreads: 1)

    /// Metrics (figures, logs, tests). Written on the core thread.
    public private(set) var syncCount: UInt64 = 0
    public private(set) var forgedEntries: UInt64 = 0
    /// Entries of this node that carried several acknowledgements (`AcknowledgementBatch`).
    public private(set) var acknowledgementBatches: UInt64 = 0
    public private(set) var malformedEntries: UInt64 = 0
    /// Entries applied, and time spent writing and syncing (statistics).
    public private(set) var appliedEntries: UInt64 = 0
    public private(set) var writeNanos: UInt64 = 0
    private var lastWriteNanos: UInt64 = 0
    private var lastStatistics:
        (atMillis: UInt64, commits: Int, blocks: Int, leaderTimeouts: Int, syncs: UInt64, entries: UInt64) = (
            0, 0, 0, 0, 0, 0
        )
    /// Broker states installed from peers (state transfers).
    public private(set) var stateTransfers: UInt64 = 0

    /// - Parameters:
    ///   - recovered: the broker state recovered from the rows and the log (the log holds the
    ///     entries of every commit up to `store.appliedCommitIndex()`).
    ///   - incarnation: this run's incarnation (connection identifiers of this node).
    public init(
        me: UInt16, incarnation: UInt32, core: ConsensusCore, recovered: RecoveredState, store: NodeStore,
        link: any ClusterLink, clock: any BrokerClock, sink: any ActionSink,
        configuration: Configuration = Configuration(),
        logger: Logger, metrics: OrdererMetrics = OrdererMetrics(), onFatal: @escaping @Sendable (String) -> Void
    ) throws(NodeStoreError) {
        self.metrics = metrics
        self.me = me
        self.incarnation = incarnation
        self.core = core
        maxEventBytes = core.committee.maxEntryBytes - 64
        quorum = core.committee.quorum
        memberCount = core.committee.n
        state = recovered.state
        nextIndex = recovered.lastIndex + 1
        lastChain = recovered.lastChain
        checkpointIndex = recovered.checkpointIndex
        appliedCommit = try store.appliedCommitIndex()
        durableCommit = appliedCommit
        self.store = store
        self.link = link
        self.sink = sink
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        self.onFatal = onFatal
    }

    /// Starts the core thread: the core replays its store, then recovers (a new, wiped or
    /// restored store asks its peers first) and becomes active; this node's start is then
    /// ordered. Returns at once; `waitUntilStarted` waits for that start to commit.
    public func start() {
        thread.start()
        thread.submit { [self] _ in run() }
    }

    // MARK: Orderer

    @discardableResult
    public func submit(_ event: BrokerEvent) -> SubmitResult {
        let size = DurableOrderer.approximateSize(event)
        if size > maxEventBytes { return .tooLarge }
        condition.lock()
        if !event.isNeverRefused {
            var refusal: SubmitResult?
            switch status {
            case .starting: refusal = .unavailable(.serverUnavailable)
            case .failed: refusal = .unavailable(.serverUnavailable)
            case .full: refusal = .unavailable(.quotaExceeded)
            case .running:
                if stopping {
                    refusal = .unavailable(.serverUnavailable)
                } else if pendingBytes + size > configuration.pendingBytesMax && pendingBytes > 0 {
                    refusal = .busy
                }
            }
            if let refusal {
                condition.unlock(withValue: wakeValue)
                return refusal
            }
        }
        pendingBytes += size
        inbox.append(.submit(event, size: size))
        condition.unlock(withValue: 1)
        return .accepted
    }

    /// Orders a tick when the earliest deadline of the state has come on this node's clock and
    /// no commit is coming to run it: each commit runs the due deadlines at its own time, so a
    /// busy cluster needs no tick entries, and an idle one stays quiet until something is due.
    public func tickIfDue() {
        let now = clock.nowMillis()
        orderNodeLossIfDue(now: now)
        if byzantineForgery { forgeEntries() }
        let due = stateLock.withLock { state.nextDeadlineMillis.map { $0 <= now } ?? false }
        guard due else { return }
        condition.lock()
        guard case .running = status, !tickSubmitted, !stopping else {
            condition.unlock(withValue: wakeValue)
            return
        }
        tickSubmitted = true
        inbox.append(.submit(.tick, size: 16))
        pendingBytes += 16
        condition.unlock(withValue: 1)
    }

    /// The transport reports a peer reachable or not (the start of the will failover time).
    /// For `/healthz`: running, with the store taking writes and a quorum reachable (this node
    /// and its reachable peers), and why not.
    public var health: (healthy: Bool, detail: String) {
        condition.lock()
        defer { condition.unlock(withValue: wakeValue) }
        let reachable = reachablePeers.count + 1
        switch status {
        case .starting: return (false, "starting")
        case .failed: return (false, "store failed")
        case .full(let detail): return (false, "store full: \(detail)")
        case .running:
            if stopping { return (false, "stopping") }
            if reachable < quorum { return (false, "\(reachable) of \(memberCount) nodes reachable; \(quorum) needed") }
            return (true, "ok: \(reachable) of \(memberCount) nodes reachable")
        }
    }

    /// The peers this node reaches now (a metric).
    public var reachablePeerCount: Int {
        condition.lock()
        defer { condition.unlock(withValue: wakeValue) }
        return reachablePeers.count
    }

    public func peerState(_ peer: UInt16, connected: Bool) {
        // Read before the condition lock (lock order: the state lock is never taken inside it).
        let attached = connected ? nil : stateLock.withLock { state.attachedIncarnation(of: UInt32(peer)) }
        condition.lock()
        var nudge = false
        if connected {
            nudge = !reachablePeers.contains(peer) && isRunning
            reachablePeers.insert(peer)
            unreachableSince[peer] = nil
            lossOrdered[peer] = nil
        } else {
            reachablePeers.remove(peer)
            if unreachableSince[peer] == nil { unreachableSince[peer] = (clock.nowMillis(), attached) }
        }
        updateMajority(now: clock.nowMillis())
        condition.unlock(withValue: wakeValue)
        if nudge {
            // A peer (re)joined: a no-op entry makes the cluster run a few rounds, so a node that
            // recovered by the amnesia rule (it may sign only above the last round it heard of)
            // finds blocks to build on even in an idle cluster.
            submit(.tick)
        }
    }

    /// Under `condition`.
    private func updateMajority(now: UInt64) {
        if reachablePeers.count + 1 < quorum {
            majoritySince = nil
        } else if majoritySince == nil {
            majoritySince = now
        }
    }

    /// Tests: checks for lost peers now, with another failover time.
    func tickIfDueAfter(failoverMillis: UInt64) {
        orderNodeLossIfDue(now: clock.nowMillis(), failoverMillis: failoverMillis)
    }

    /// Orders `nodeLost` for each peer unreachable for the will failover time that still has
    /// sessions attached (once per incarnation; duplicates from other nodes are no-ops).
    private func orderNodeLossIfDue(now: UInt64, failoverMillis: UInt64? = nil) {
        let failoverMillis = failoverMillis ?? configuration.willFailoverMillis
        condition.lock()
        // Only a node that reaches a quorum decides that a peer is lost: a node that is itself
        // cut off (or on the short side of a partition) would otherwise order the loss of the
        // healthy majority, and its entry would commit once the partition heals.
        // And only for the time it has been in the majority: a node back from isolation that
        // reaches a quorum again before its last link is back has seen every peer unreachable
        // for the whole partition; the straggler must not be lost for that (the others never
        // lost sight of it).
        updateMajority(now: now)
        let due =
            majoritySince.map { majoritySince in
                unreachableSince.filter { now >= max($0.value.since, majoritySince) &+ failoverMillis }
            } ?? [:]
        condition.unlock(withValue: wakeValue)
        for (peer, unreachable) in due.sorted(by: { $0.key < $1.key }) {
            // The loss names the incarnation whose sessions were attached when the peer went
            // away: a peer back with a new incarnation (its new clients) is never touched.
            guard let incarnation = unreachable.incarnation else { continue }
            condition.lock()
            let already = lossOrdered[peer] == incarnation
            if !already { lossOrdered[peer] = incarnation }
            condition.unlock(withValue: wakeValue)
            if already { continue }
            logger.warning(
                "node \(peer) unreachable for \(failoverMillis / 1000) s: ordering the end of its clients' sessions (wills, expiry); they can resume them on any node"
            )
            submit(.nodeLost(node: UInt32(peer), incarnation: incarnation))
        }
    }

    /// Test only (`FOXMQ_TEST_BYZANTINE=forge`): every second this node orders, for every
    /// connection another node holds, a close, a publish and an acknowledgement, as a node
    /// lying about its peers' clients would. Honest nodes, this one included, apply none of
    /// them (the origin check), so no session may notice.
    public var byzantineForgery: Bool {
        get { condition.lock(); defer { condition.unlock(withValue: wakeValue) }; return forging }
        set { condition.lock(); forging = newValue; condition.unlock(withValue: wakeValue) }
    }
    private func forgeEntries() {
        let victims = stateLock.withLock { state.attachedConnections(notOf: UInt32(me)) }
        for victim in victims {
            submit(
                .publish(
                    victim,
                    Publish(
                        topicName: "forged/by/\(me)", payload: ByteBuffer(string: "forged"), qos: .atLeastOnce,
                        packetIdentifier: 1)))
            submit(.pubAck(victim, packetIdentifier: 1))
            submit(.sessionClose(victim, SessionClose(cause: .normalDisconnect)))
        }
    }

    /// The equivocating twin of a message holding one of this node's blocks, or nil.
    private func twinBlock(_ bytes: [UInt8], sign: (Digest) -> [UInt8]) -> [UInt8]? {
        let committee = core.committee
        guard case .block(let encoded)? = try? Message.decode(bytes, maxBlockBytes: committee.params.maxBlockBytes),
            var block = try? BlockCodec.decode(
                encoded, maxParents: committee.maxParents, maxBlockBytes: committee.params.maxBlockBytes,
                maxEntryBytes: committee.maxEntryBytes),
            block.author == me
        else { return nil }
        block.timestamp += 1
        block.signature = sign(block.digest)
        return Message.block(BlockCodec.encode(block)).encode()
    }

    /// Test only (equivocation): the message without blocks of this node's own; nil when
    /// nothing is left.
    private func withoutOwnBlocks(_ bytes: [UInt8]) -> [UInt8]? {
        let committee = core.committee
        func own(_ encoded: [UInt8]) -> Bool {
            guard
                let block = try? BlockCodec.decode(
                    encoded, maxParents: committee.maxParents, maxBlockBytes: committee.params.maxBlockBytes,
                    maxEntryBytes: committee.maxEntryBytes)
            else { return false }
            return block.author == me
        }
        switch try? Message.decode(bytes, maxBlockBytes: committee.params.maxBlockBytes) {
        case .block(let encoded)?:
            return own(encoded) ? nil : bytes
        case .blocks(let list)?:
            let kept = list.filter { !own($0) }
            return kept.count == list.count ? bytes : Message.blocks(kept).encode()
        default:
            return bytes
        }
    }

    /// A message from peer `from` (the transport's receive path: only queues it).
    public func receive(from peer: UInt16, _ bytes: [UInt8]) {
        condition.lock()
        guard inboxMessages < Self.inboxMessagesMax else {
            droppedMessages += 1
            condition.unlock(withValue: 1)
            return
        }
        inboxMessages += 1
        inbox.append(.message(from: peer, bytes: bytes))
        condition.unlock(withValue: 1)
    }

    /// Reads the state under its lock (metrics, tests, digests).
    public func withState<T>(_ body: (BrokerState) -> T) -> T {
        stateLock.withLock { body(state) }
    }

    /// The applied commit and log index with the digest of the state there (tests compare
    /// nodes with it; the same digest as `foxdump verify`).
    public func stateDigest() -> (commitIndex: UInt64, logIndex: UInt64, digest: [UInt8]) {
        stateLock.withLock { (appliedCommit, nextIndex - 1, Array(state.stateDigest(appliedIndex: nextIndex - 1))) }
    }

    /// The last commit index whose entries are applied and durable.
    public var durableCommitIndex: UInt64 {
        condition.lock()
        defer { condition.unlock(withValue: wakeValue) }
        return durableCommit
    }

    /// Waits until this node's start (`nodeStarted`) is committed and durable, logging while it
    /// waits for its peers; false if the store failed, the node is stopping or the task is
    /// cancelled.
    public func waitUntilStarted(logEverySeconds: Double = 5) async -> Bool {
        var waited = 0.0
        while true {
            condition.lock()
            let started = startApplied
            let failed: Bool
            if case .failed = status { failed = true } else { failed = stopping }
            condition.unlock(withValue: wakeValue)
            if started { return true }
            // Cancelled: the node is stopping before its start (a signal, another service
            // that failed).
            if failed || Task.isCancelled { return false }
            try? await Task.sleep(nanoseconds: 20_000_000)
            waited += 0.02
            if waited >= logEverySeconds {
                waited = 0
                logger.notice(
                    "waiting for a quorum of the cluster to order this node's start",
                    metadata: ["quorum": "\(quorum) of \(memberCount)"])
            }
        }
    }

    /// Makes `waitUntilStarted` give up: the node is stopping before its start was ordered.
    /// `stop()` follows.
    public func abandonStart() {
        condition.lock()
        stopping = true
        condition.unlock(withValue: 1)
    }

    /// Refuses what grows the state, waits until this node's entries so far (the ends of its
    /// sessions) are applied and durable or the timeout passes, then stops the core thread.
    public func stop() async {
        condition.lock()
        stopping = true
        condition.unlock(withValue: 1)
        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(configuration.stopTimeoutSeconds * 1e9)
        while DispatchTime.now().uptimeNanoseconds < deadline {
            condition.lock()
            let drained = pendingBytes == 0
            condition.unlock(withValue: wakeValue)
            if drained { break }
            await pause(nanoseconds: 5_000_000)
        }
        condition.lock()
        let left = pendingBytes
        status = .failed  // the core thread exits at its next wake-up
        condition.unlock(withValue: 1)
        if left > 0 {
            logger.warning(
                "stopping with entries of this node not yet committed (no quorum?); their clients resend on reconnect",
                metadata: ["bytes": "\(left)"])
        }
        try? await thread.shutdownGracefully()
    }

    fileprivate var wakeValue: Int { inbox.isEmpty && !stopping ? 0 : 1 }

    /// Under the condition lock.
    private var isRunning: Bool { if case .running = status { !stopping } else { false } }

    // MARK: The core thread

    private func nowNanos() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private func run() {
        step(.start)
        if case .active = core.mode { becameActive() }
        guard flush() else { return }
        while true {
            var work: [Work] = []
            let waitSeconds = timerAt.map { at -> Double in
                let now = nowNanos()
                return at > now ? Double(at - now) / 1e9 : 0
            }
            let woken: Bool
            if let waitSeconds {
                woken = waitSeconds > 0 ? condition.lock(whenValue: 1, timeoutSeconds: waitSeconds) : false
                if !woken { condition.lock() }
            } else {
                condition.lock(whenValue: 1)
                woken = true
            }
            swap(&work, &inbox)
            inboxMessages = 0
            let exit: Bool
            if case .failed = status { exit = true } else { exit = false }
            condition.unlock(withValue: stopping && !exit ? 1 : 0)
            if exit { return }
            // Acknowledgements in a row go into one entry; any other submission ends the row,
            // so this node's events keep their order.
            var acknowledgements: [(event: BrokerEvent, size: Int)] = []
            for item in work {
                switch item {
                case .submit(let event, let size) where event.isBatchedAcknowledgement:
                    acknowledgements.append((event, size))
                    if acknowledgements.count == AcknowledgementBatch.countMax {
                        submitAcknowledgements(&acknowledgements)
                    }
                case .submit(let event, let size):
                    submitAcknowledgements(&acknowledgements)
                    submitToCore(event, size: size)
                case .message(let from, let bytes):
                    if bytes.first == StateTransferMessage.tag {
                        stateTransferMessage(from: from, bytes)
                    } else if configuration.equivocationSigner != nil {
                        // The liar hides its twins from its own core, whose tripwire would
                        // otherwise halt it at the first one: it keeps lying.
                        if let kept = withoutOwnBlocks(bytes) { step(.message(from: from, bytes: kept)) }
                    } else {
                        step(.message(from: from, bytes: bytes))
                    }
                }
            }
            submitAcknowledgements(&acknowledgements)
            if let at = timerAt, at <= nowNanos() {
                timerAt = nil
                step(.tick)
            }
            retryTransferIfDue()
            guard flush() else { return }
            logStatisticsIfDue()
            if stopping && work.isEmpty {
                // Nothing new: wait a little instead of spinning on the stop flag.
                usleep(1000)
            }
        }
    }

    /// Submits the acknowledgements gathered (one entry for two or more) and empties the list.
    private func submitAcknowledgements(_ acknowledgements: inout [(event: BrokerEvent, size: Int)]) {
        switch acknowledgements.count {
        case 0:
            return
        case 1:
            submitToCore(acknowledgements[0].event, size: acknowledgements[0].size)
        default:
            acknowledgementBatches += 1
            submitToCore(
                kind: Self.acknowledgementBatchKind, body: AcknowledgementBatch.encode(acknowledgements.map(\.event)),
                size: acknowledgements.reduce(0) { $0 + $1.size },
                describe: "\(acknowledgements.count) acknowledgements",
                isTick: false)
        }
        acknowledgements.removeAll(keepingCapacity: true)
    }

    private func submitToCore(_ event: BrokerEvent, size: Int) {
        var body = event.encoded
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        submitToCore(kind: Self.brokerEventKind, body: bytes, size: size, describe: "\(event)", isTick: event == .tick)
    }

    /// `describe` is only evaluated for a refusal: describing every event (Mirror) cost a tenth
    /// of a busy node's CPU.
    private func submitToCore(
        kind: UInt8, body bytes: [UInt8], size: Int, describe: @autoclosure () -> String, isTick: Bool
    ) {
        let outputs = core.step(.submit(kind: kind, body: bytes), now: nowNanos())
        for output in outputs {
            switch output {
            case .accepted(let id):
                if id.incarnation != ownIncarnation {
                    ownIncarnation = id.incarnation
                    ownSizes.removeAll()
                }
                ownSizes[id.seq] = (size, DispatchTime.now().uptimeNanoseconds)
            case .rejected(let reason):
                // The core's bounds lie above this orderer's, so this is rare: the event is lost
                // and its client resends on reconnect.
                logger.warning(
                    "consensus refused an entry", metadata: ["reason": "\(reason)", "event": "\(describe())"])
                release(size: size, tick: isTick)
            default:
                break
            }
        }
        handle(outputs)
    }

    private func step(_ input: Input) {
        handle(core.step(input, now: nowNanos()))
    }

    /// Runs the outputs of one step in order; inputs they call for (the application snapshot
    /// of a checkpoint) are stepped after.
    private func handle(_ outputs: [Output]) {
        for output in outputs {
            switch output {
            case .send(let to, let bytes):
                link.send(to: to, bytes)
            case .broadcast(let bytes):
                if let sign = configuration.equivocationSigner, let twin = twinBlock(bytes, sign: sign) {
                    for peer in 0..<UInt16(memberCount) where peer != me {
                        link.send(to: peer, peer % 2 == 0 ? bytes : twin)
                    }
                } else {
                    link.broadcast(bytes)
                }
            case .persist(let batch):
                batches.append(batch)
            case .setTimer(let at):
                timerAt = at
            case .deliver(let delivery):
                if transfer != nil {
                    transferBuffer.append(delivery)
                } else {
                    apply(delivery)
                }
            case .accepted, .rejected:
                break
            case .recovered(let lastOwnRound):
                logger.notice(
                    "recovered the own position from the peers (amnesia rule): never signing at or below round \(lastOwnRound)"
                )
                do {
                    try store.markRestored(false)
                } catch {
                    logger.error("could not clear the restored mark", metadata: ["error": "\(error)"])
                }
                becameActive()
            case .stateSynced(let checkpoint, _):
                beginTransfer(atLeast: checkpoint.commitIndex)
            case .read(let request):
                followUps.append(.read(request, blocks: store.readBlocks(request.refs)))
            case .halted(let why):
                fail("consensus halted: \(why)")
            }
        }
        while !followUps.isEmpty {
            let input = followUps.removeFirst()
            handle(core.step(input, now: nowNanos()))
        }
    }

    private func becameActive() {
        condition.lock()
        if case .starting = status { status = .running }
        // This node's start, ordered before anything of its clients: sessions its earlier
        // incarnation left attached end as after a network loss.
        pendingBytes += 16
        inbox.append(.submit(.nodeStarted(node: UInt32(me), incarnation: incarnation), size: 16))
        condition.unlock(withValue: 1)
    }

    private func release(size: Int, tick: Bool) {
        condition.lock()
        pendingBytes -= size
        if tick { tickSubmitted = false }
        condition.unlock(withValue: wakeValue)
    }

    /// Applies one committed sub-DAG's entries at the commit's time. Commits already in the log
    /// (replayed by the core at start) are skipped; actions wait for the write.
    fileprivate func apply(_ delivery: Delivery) {
        let index = delivery.subDag.index
        guard index > appliedCommit else { return }
        let timeMillis = delivery.subDag.commitTime / 1_000_000
        var releasedBytes = 0
        var releasedTick = false
        var started = false
        let actionsBefore = heldActions.count
        let applyStarted = DispatchTime.now().uptimeNanoseconds
        var eventCount = 0
        stateLock.lock()
        // Deadlines that came before this commit's time run first, at that time: every node
        // runs them at the same place in the log.
        if let due = state.nextDeadlineMillis, due <= timeMillis {
            applyLocked(.tick, atMillis: timeMillis)
        }
        for entry in delivery.applied {
            if entry.id.origin == me && entry.id.incarnation == ownIncarnation,
                let own = ownSizes.removeValue(forKey: entry.id.seq)
            {
                releasedBytes += own.size
                if !delivery.replayed {
                    metrics.commitLatencySeconds.recordNanoseconds(
                        Int64(clamping: DispatchTime.now().uptimeNanoseconds &- own.submittedNanos))
                }
            }
            let events: [BrokerEvent]
            switch entry.kind {
            case Self.brokerEventKind:
                guard let event = try? BrokerEvent.decode(ByteBuffer(bytes: entry.body)) else {
                    malformedEntries += 1
                    continue
                }
                events = [event]
            case Self.acknowledgementBatchKind:
                guard let batch = AcknowledgementBatch.decode(entry.body) else {
                    malformedEntries += 1
                    continue
                }
                events = batch
            default:
                malformedEntries += 1
                continue
            }
            eventCount += events.count
            for event in events {
                applyEntryEvent(
                    event, origin: entry.id.origin, atMillis: timeMillis, started: &started, releasedTick: &releasedTick
                )
            }
        }
        appliedCommit = index
        stateLock.unlock()
        metrics.batchEvents.record(eventCount)
        metrics.applySeconds.recordNanoseconds(Int64(clamping: DispatchTime.now().uptimeNanoseconds &- applyStarted))
        if delivery.checkpointDue {
            // The application state at commit k: its digest goes into checkpoint C_k, which
            // every honest node computes alike; the rows are written at exactly this commit
            // (and only at checkpoint commits), so that a peer that fell behind can fetch them
            // and check them against the digest f+1 nodes offer (state transfer).
            let digest = Array(stateLock.withLock { state.stateDigest(appliedIndex: nextIndex - 1) })
            followUps.append(.appSnapshot(commitIndex: index, bytes: digest))
            takeCheckpoint()
            rowsPosition = RowsPosition(commitIndex: index, logIndex: nextIndex - 1, digest: digest, chain: lastChain)
        }
        if releasedBytes > 0 || releasedTick || started {
            condition.lock()
            pendingBytes -= releasedBytes
            if releasedTick { tickSubmitted = false }
            condition.unlock(withValue: wakeValue)
            if started { startPending = true }
        }
        if delivery.replayed {
            // Applied at start for the state; what it produced was sent in the earlier life.
            heldActions.removeSubrange(actionsBefore...)
        }
    }

    /// Applies one event of an entry from node `origin`, under the state lock: an event that
    /// names another node's connection is a no-op (R3), counted and logged.
    private func applyEntryEvent(
        _ event: BrokerEvent, origin entryOrigin: UInt16, atMillis timeMillis: UInt64, started: inout Bool,
        releasedTick: inout Bool
    ) {
        if let origin = event.originNode, origin != UInt32(entryOrigin) {
            forgedEntries += 1
            // Every node applies the same log, so every node sees this: a faulty or lying
            // node. Logged at 1, 2, 4, 8... so that a flood stays readable.
            if forgedEntries & (forgedEntries - 1) == 0 {
                logger.warning(
                    "ignored an entry of node \(entryOrigin) for a connection of node \(origin) (a faulty or lying node)",
                    metadata: ["forgedEntries": "\(forgedEntries)"])
            }
            return
        }
        if entryOrigin == me {
            if event == .tick { releasedTick = true }
            if event == .nodeStarted(node: UInt32(me), incarnation: incarnation) { started = true }
        }
        applyLocked(event, atMillis: timeMillis)
        appliedEntries += 1
    }

    /// Every `statisticsIntervalMillis`, a line with what the core did since the last one (what
    /// an operator looks at first when the cluster is slow: rounds, commits, leader timeouts,
    /// syncs per second and entries per commit).
    private func logStatisticsIfDue() {
        let now = clock.nowMillis()
        guard now >= lastStatistics.atMillis &+ configuration.statisticsIntervalMillis else { return }
        let metrics = core.metrics
        let seconds = Double(max(1, now - lastStatistics.atMillis)) / 1000
        let commits = metrics.commits - lastStatistics.commits
        let entries = appliedEntries - lastStatistics.entries
        if commits > 0 || metrics.leaderTimeouts != lastStatistics.leaderTimeouts {
            logger.info(
                "consensus",
                metadata: [
                    "round": "\(core.dag.highestRound)", "commit": "\(appliedCommit)",
                    "blocksPerSecond": "\(Int(Double(metrics.blocksProposed - lastStatistics.blocks) / seconds))",
                    "commitsPerSecond": "\(Int(Double(commits) / seconds))",
                    "entriesPerCommit": "\(commits > 0 ? entries / UInt64(commits) : 0)",
                    "leaderTimeouts": "\(metrics.leaderTimeouts - lastStatistics.leaderTimeouts)",
                    "forgedEntriesIgnored": "\(forgedEntries)",
                    "equivocationsSeen": "\(metrics.equivocations)",
                    "syncsPerSecond": "\(Int(Double(syncCount - lastStatistics.syncs) / seconds))",
                    "writeMillisPerSync":
                        "\(syncCount > lastStatistics.syncs ? Double((writeNanos - lastWriteNanos) / 1000 / (syncCount - lastStatistics.syncs)) / 1000 : 0)",
                ])
        }
        lastWriteNanos = writeNanos
        lastStatistics = (
            now, metrics.commits, metrics.blocksProposed, metrics.leaderTimeouts, syncCount, appliedEntries
        )
    }

    /// Set when this node's own start is applied; published to waiters after the write.
    private var startPending = false

    private func applyLocked(_ event: BrokerEvent, atMillis timeMillis: UInt64) {
        scratch.removeAll(keepingCapacity: true)
        let index = nextIndex
        ApplyTrace.index = index
        state.apply(event, atMillis: timeMillis, into: &scratch)
        nextIndex += 1
        let encoded = LogRecord.encode(
            index: index, timeMillis: timeMillis, event: event.encoded, previousChain: lastChain)
        lastChain = encoded.chain
        records.append((index, encoded.value))
        heldActions.append(contentsOf: scratch)
    }

    private func takeCheckpoint() {
        let applied = nextIndex - 1
        let checkpoint = stateLock.withLock { state.takeCheckpoint(appliedIndex: applied) }
        checkpoints.append(checkpoint)
    }

    /// Writes what this round of work produced in one transaction and one sync, then tells the
    /// core (its own blocks may leave now) and releases the held actions. False when the store
    /// failed for good (the node stops).
    fileprivate func flush() -> Bool {
        while !batches.isEmpty || !records.isEmpty || !checkpoints.isEmpty {
            let written = (batches, records, checkpoints, heldActions)
            let position = rowsPosition
            batches = []
            records = []
            checkpoints = []
            heldActions = []
            rowsPosition = nil
            var attempt = 0
            let writeStarted = DispatchTime.now().uptimeNanoseconds
            defer { writeNanos &+= DispatchTime.now().uptimeNanoseconds &- writeStarted }
            while true {
                do {
                    let transactionStarted = DispatchTime.now().uptimeNanoseconds
                    try store.writeCluster(
                        batches: written.0, records: written.1, checkpoints: written.2, rowsAt: position,
                        appliedCommit: appliedCommit)
                    metrics.storeWriteSeconds.recordNanoseconds(
                        Int64(clamping: DispatchTime.now().uptimeNanoseconds &- transactionStarted))
                    if let commitNanos = store.lastCommitNanoseconds {
                        metrics.storeSyncSeconds.recordNanoseconds(Int64(clamping: commitNanos))
                    }
                    break
                } catch .full(let detail) {
                    attempt += 1
                    setStatus(.full(detail))
                    if attempt == 1 {
                        logger.error(
                            "store full: publishes, subscriptions and new sessions are refused (0x97) until space returns; nothing held is acknowledged",
                            metadata: ["detail": "\(detail)", "file": "\(store.dataFile)"])
                    }
                    condition.lock()
                    let giveUp = stopping
                    condition.unlock(withValue: wakeValue)
                    if giveUp { return false }
                    usleep(500_000)
                } catch {
                    fail("store write failed: \(error)")
                    return false
                }
            }
            if attempt > 0 {
                logger.notice("store has space again: accepting publishes")
                setStatus(.running)
            }
            syncCount += 1
            if let last = written.2.last {
                checkpointIndex = last.appliedIndex
                trimLog()
            }
            condition.lock()
            durableCommit = appliedCommit
            if startPending {
                startApplied = true
                startPending = false
            }
            condition.unlock(withValue: wakeValue)
            if let txn = written.0.map(\.txn).max() {
                step(.persisted(txn: txn))
            }
            if !written.3.isEmpty {
                var wakeups = PendingWakeups()
                sink.dispatch(written.3, wakeups: &wakeups)
                wakeups.wake()
            }
        }
        return true
    }

    private func setStatus(_ newStatus: Status) {
        condition.lock()
        if case .failed = status {
        } else {
            status = newStatus
        }
        condition.unlock(withValue: wakeValue)
    }

    fileprivate func fail(_ why: String) {
        logger.critical("\(why); nothing more is acknowledged and the node stops")
        condition.lock()
        status = .failed
        condition.unlock(withValue: 1)
        onFatal(why)
    }

    private func trimLog() {
        guard checkpointIndex > configuration.logRetentionRecords else { return }
        let below = checkpointIndex - configuration.logRetentionRecords + 1
        do {
            for _ in 0..<1000 {
                guard try store.trimLog(below: below, limit: 10_000) == 10_000 else { break }
            }
        } catch {
            logger.warning("log trim failed; retried at the next checkpoint", metadata: ["error": "\(error)"])
        }
    }
}

/// The requester's side of a state transfer (see `StateTransferMessage`).
struct StateTransfer {
    enum Phase {
        /// Asking every peer where its rows stand; waiting for f+1 equal positions ≥ `atLeast`.
        case collecting(offers: [UInt16: RowsPosition])
        /// Fetching the rows of `position` from `server`, table by table.
        case fetching(position: RowsPosition, server: UInt16, table: TransferRow.Table, after: [UInt8]?)
    }

    var atLeast: UInt64
    var phase: Phase
    var rows: [TransferRow] = []
    var askedAtMillis: UInt64
    /// Servers whose rows did not match the digest they offered (never asked again).
    var refused: Set<UInt16> = []
}

extension ConsensusOrderer {
    private var peers: [UInt16] { (0..<UInt16(core.committee.n)).filter { $0 != me } }

    fileprivate func beginTransfer(atLeast commitIndex: UInt64) {
        logger.notice(
            "this node is behind the blocks its peers keep: fetching the broker state at commit \(commitIndex) or later from them"
        )
        transfer = StateTransfer(
            atLeast: commitIndex, phase: .collecting(offers: [:]), askedAtMillis: clock.nowMillis())
        link.broadcast(StateTransferMessage.offerRequest.encoded)
    }

    fileprivate func retryTransferIfDue() {
        guard var current = transfer else { return }
        let now = clock.nowMillis()
        guard now >= current.askedAtMillis &+ configuration.transferRetryMillis else { return }
        current.askedAtMillis = now
        current.rows = []
        current.phase = .collecting(offers: [:])
        transfer = current
        link.broadcast(StateTransferMessage.offerRequest.encoded)
    }

    fileprivate func stateTransferMessage(from peer: UInt16, _ bytes: [UInt8]) {
        guard let message = StateTransferMessage.decode(bytes) else { return }
        switch message {
        case .offerRequest:
            link.send(to: peer, StateTransferMessage.offer(store.rowsPosition()).encoded)
        case .chunkRequest(let position, let table, let after):
            let answer = store.transferRows(
                at: position, table: table, after: after, maxBytes: configuration.transferChunkBytes)
            link.send(
                to: peer,
                StateTransferMessage.chunk(
                    position, table: table, rows: answer?.rows, complete: answer?.complete ?? false
                )
                .encoded)
        case .offer(let position):
            received(offer: position, from: peer)
        case .chunk(let position, let table, let rows, let complete):
            received(chunk: rows, complete: complete, table: table, at: position, from: peer)
        }
    }

    private func received(offer position: RowsPosition?, from peer: UInt16) {
        guard var current = transfer, case .collecting(var offers) = current.phase, let position,
            position.commitIndex >= current.atLeast, !current.refused.contains(peer)
        else { return }
        offers[peer] = position
        // f+1 peers offering the same position: one of them is honest, so its digest is right.
        let vouched = offers.filter { $0.value == position }.keys.sorted()
        if vouched.count >= core.committee.validity {
            current.phase = .fetching(position: position, server: vouched[0], table: .sessions, after: nil)
            current.askedAtMillis = clock.nowMillis()
            transfer = current
            link.send(to: vouched[0], StateTransferMessage.chunkRequest(position, table: .sessions, after: nil).encoded)
        } else {
            current.phase = .collecting(offers: offers)
            transfer = current
        }
    }

    private func received(
        chunk: [TransferRow]?, complete: Bool, table: TransferRow.Table, at position: RowsPosition, from peer: UInt16
    ) {
        guard var current = transfer,
            case .fetching(let wanted, let server, let wantedTable, _) = current.phase,
            wanted == position, server == peer, wantedTable == table
        else { return }
        guard let chunk else {
            // The server's rows moved on to a newer checkpoint: ask again.
            current.askedAtMillis = 0
            transfer = current
            retryTransferIfDue()
            return
        }
        current.rows.append(contentsOf: chunk)
        current.askedAtMillis = clock.nowMillis()
        var next: (TransferRow.Table, [UInt8]?)? = nil
        if !complete {
            next = (table, chunk.last?.key)
        } else if let following = TransferRow.Table(rawValue: table.rawValue + 1) {
            next = (following, nil)
        }
        if let (nextTable, after) = next {
            current.phase = .fetching(position: position, server: server, table: nextTable, after: after)
            transfer = current
            link.send(to: server, StateTransferMessage.chunkRequest(position, table: nextTable, after: after).encoded)
            return
        }
        transfer = current
        install(current.rows, at: position, from: server)
    }

    /// Writes the rows, loads them, checks the digest the peers vouched for, and goes on with
    /// the deliveries that waited.
    private func install(_ rows: [TransferRow], at position: RowsPosition, from server: UInt16) {
        // Nothing unwritten may stay behind the replaced state.
        guard flush() else { return }
        do {
            try store.installTransferredState(rows, at: position)
            let recovered = try store.recover(defaultLimits: BrokerLimits()) { _ in }
            let digest = Array(recovered.state.stateDigest(appliedIndex: position.logIndex))
            guard digest == position.digest, recovered.lastIndex == position.logIndex else {
                logger.error(
                    "the broker state fetched from node \(server) does not match the digest its peers vouched for; asking another"
                )
                transfer?.refused.insert(server)
                transfer?.askedAtMillis = 0
                retryTransferIfDue()
                return
            }
            stateLock.withLock {
                state = recovered.state
                nextIndex = position.logIndex + 1
                appliedCommit = position.commitIndex
            }
            lastChain = position.chain
            checkpointIndex = position.logIndex
        } catch {
            fail("installing the fetched broker state failed: \(error)")
            return
        }
        logger.notice(
            "broker state installed at \(position) from node \(server): \(rows.count) rows; catching up with the commits since"
        )
        transfer = nil
        stateTransfers += 1
        let waiting = transferBuffer
        transferBuffer = []
        for delivery in waiting { apply(delivery) }
        condition.lock()
        durableCommit = appliedCommit
        condition.unlock(withValue: wakeValue)
    }
}
