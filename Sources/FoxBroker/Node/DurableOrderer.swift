import Dispatch
import FoxBrokerCore
import FoxBrokerStore
import FoxMQTT
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Orders the events of one node into a durable log, with group commit and output commit.
///
/// `submit` applies an event at once, under one lock, at the ordered time (the clock, never
/// running backwards), and appends the event and the actions it produced to the open batch.
/// One writer thread (never an event loop) takes the open batch, writes its records, and the
/// changed rows when a checkpoint is due, in one LMDB transaction with one sync, and only then
/// releases the batch's actions to the connections, in order. So memory runs ahead of the
/// disk, but nothing a client sees (CONNACK, SUBACK, PUBACK, PUBREC, PUBCOMP, deliveries)
/// depends on state that a crash could lose; the more clients wait on a sync, the more events
/// share it.
///
/// When a write fails because the disk or the map is full, the batch stays held (nothing is
/// acknowledged), events that grow the state are refused with 0x97 and the write is retried
/// until space returns. Any other write failure is fatal: the node stops (`onFatal`), and a
/// restart recovers from what is on disk.
public final class DurableOrderer: Orderer, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Records after which the changed rows are written (a checkpoint), whichever of this
        /// and `checkpointIntervalMillis` comes first.
        public var checkpointRecordCount: Int = 100_000
        public var checkpointIntervalMillis: UInt64 = 2_000
        /// Bytes of events waiting for their sync; beyond it `submit` answers busy.
        public var pendingBytesMax: Int = 64 << 20
        /// Largest event (a PUBLISH with its payload) one record may hold.
        public var recordBytesMax: Int = 256 << 20
        /// Log records kept below the last checkpoint (for foxdump and audits); recovery needs none.
        public var logRetentionRecords: UInt64 = 1_000_000
        /// Log records older than this are dropped too, if set (never past the last checkpoint).
        public var logRetentionMillis: UInt64? = nil
        /// How long `stop` waits for what is pending to become durable (a full disk may never
        /// take it) before it gives up; a restart recovers what is on disk.
        public var stopTimeoutSeconds: Double = 10

        public init() {}
    }

    private struct PendingRecord {
        var index: UInt64
        var timeMillis: UInt64
        var event: BrokerEvent
    }

    private struct Batch {
        var records: [PendingRecord] = []
        var actions: [BrokerAction] = []
        var checkpoint: StateCheckpoint?
        var bytes = 0
        /// Time spent applying its events (a metric).
        var applyNanos: UInt64 = 0
    }

    private enum Status {
        case running
        /// The last write found no space; retried until it succeeds.
        case full(String)
        case failed
    }

    // `condition` guards everything below it; its value is 1 while the open batch has records.
    private let condition = ConditionLock<Int>(value: 0)
    private let state: BrokerState
    private var open = Batch()
    private var writingBytes = 0
    private var nextIndex: UInt64
    private var lastTimeMillis: UInt64
    private var recordsSinceCheckpoint = 0
    private var lastCheckpointMillis: UInt64
    private var status = Status.running
    private var durableIndex: UInt64
    private var stopping = false
    /// Set when `stop` gave up waiting for a full store: the writer stops retrying and exits
    /// without releasing what it holds (nothing held was acknowledged).
    private var abandoned = false
    private var scratch: [BrokerAction] = []

    private let clock: any BrokerClock
    private let sink: any ActionSink
    private let store: any OrderedLogStore
    private let metrics: OrdererMetrics
    private let configuration: Configuration
    private let logger: Logger
    private let onFatal: @Sendable (String) -> Void
    private let writerThread = NIOThreadPool(numberOfThreads: 1)
    // Touched by the writer thread only.
    private var lastChain: [UInt8]
    private var checkpointIndex: UInt64

    /// Metrics for the closing figures and the logs.
    public private(set) var syncCount: UInt64 = 0
    public private(set) var syncedRecordCount: UInt64 = 0

    public init(
        recovered: RecoveredState, store: any OrderedLogStore, clock: any BrokerClock, sink: any ActionSink,
        configuration: Configuration = Configuration(), logger: Logger, metrics: OrdererMetrics = OrdererMetrics(),
        onFatal: @escaping @Sendable (String) -> Void
    ) {
        self.metrics = metrics
        state = recovered.state
        nextIndex = recovered.lastIndex + 1
        durableIndex = recovered.lastIndex
        lastChain = recovered.lastChain
        checkpointIndex = recovered.checkpointIndex
        lastTimeMillis = recovered.state.nowMillis
        lastCheckpointMillis = clock.nowMillis()
        self.clock = clock
        self.sink = sink
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.onFatal = onFatal
        writerThread.start()
        writerThread.submit { [self] _ in writeLoop() }
    }

    // MARK: Ordering

    @discardableResult
    public func submit(_ event: BrokerEvent) -> SubmitResult {
        let size = Self.approximateSize(event)
        if size > configuration.recordBytesMax { return .tooLarge }
        condition.lock()
        if !event.isNeverRefused {
            var refusal: SubmitResult?
            switch status {
            case .failed:
                refusal = .unavailable(.serverUnavailable)
            case .full:
                refusal = .unavailable(.quotaExceeded)
            case .running:
                if stopping {
                    refusal = .unavailable(.serverUnavailable)
                } else if open.bytes + writingBytes + size > configuration.pendingBytesMax
                    && open.bytes + writingBytes > 0
                {
                    // (An event larger than the bound alone is taken when nothing waits.)
                    refusal = .busy
                }
            }
            if let refusal {
                condition.unlock(withValue: wakeValue)
                return refusal
            }
        }
        applyLocked(event, size: size)
        condition.unlock(withValue: 1)
        return .accepted
    }

    /// Applies under the lock and adds the record and its actions to the open batch.
    private func applyLocked(_ event: BrokerEvent, size: Int) {
        let timeMillis = max(clock.nowMillis(), lastTimeMillis)
        lastTimeMillis = timeMillis
        scratch.removeAll(keepingCapacity: true)
        ApplyTrace.index = nextIndex
        let applyStarted = DispatchTime.now().uptimeNanoseconds
        state.apply(event, atMillis: timeMillis, into: &scratch)
        open.applyNanos &+= DispatchTime.now().uptimeNanoseconds &- applyStarted
        let index = nextIndex
        nextIndex += 1
        open.records.append(PendingRecord(index: index, timeMillis: timeMillis, event: event))
        open.actions.append(contentsOf: scratch)
        open.bytes += size
        recordsSinceCheckpoint += 1
        if open.checkpoint == nil
            && (recordsSinceCheckpoint >= configuration.checkpointRecordCount
                || (timeMillis >= lastCheckpointMillis
                    && timeMillis - lastCheckpointMillis >= configuration.checkpointIntervalMillis))
        {
            open.checkpoint = state.takeCheckpoint(appliedIndex: index)
            recordsSinceCheckpoint = 0
            lastCheckpointMillis = timeMillis
        }
    }

    /// Orders a tick if the earliest deadline of the state has come on the clock: an idle
    /// broker with nothing due writes nothing.
    public func tickIfDue() {
        condition.lock()
        let now = clock.nowMillis()
        if let next = state.nextDeadlineMillis, next <= max(now, lastTimeMillis) {
            applyLocked(.tick, size: 16)
            condition.unlock(withValue: 1)
        } else {
            condition.unlock(withValue: wakeValue)
        }
    }

    /// Reads the state under the lock (metrics, tests, digests). The state may be ahead of the disk.
    public func withState<T>(_ body: (BrokerState) -> T) -> T {
        condition.lock()
        defer { condition.unlock(withValue: wakeValue) }
        return body(state)
    }

    /// The index of the last event submitted, and of the last one on disk.
    public var indices: (ordered: UInt64, durable: UInt64) {
        condition.lock()
        defer { condition.unlock(withValue: wakeValue) }
        return (nextIndex - 1, durableIndex)
    }

    /// Waits until everything submitted so far is durable (start-up, shutdown, tests), or the
    /// store failed, or `timeoutSeconds` passed (a full disk that does not come back); returns
    /// whether it all is durable.
    @discardableResult
    public func flush(timeoutSeconds: Double = .infinity) async -> Bool {
        let target = indices.ordered
        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(min(timeoutSeconds, 1e9) * 1e9)
        while indices.durable < target {
            if case .failed = currentStatus { return false }
            if DispatchTime.now().uptimeNanoseconds >= deadline { return false }
            await pause(nanoseconds: 2_000_000)
        }
        return true
    }

    /// The wake-up value of the condition: 1 while the writer has work, or has to notice that
    /// it is to stop.
    private var wakeValue: Int { open.records.isEmpty && !stopping ? 0 : 1 }

    /// For `/healthz`: whether the store takes writes, and why not.
    public var health: (healthy: Bool, detail: String) {
        switch currentStatus {
        case .running: (true, "ok")
        case .full(let detail): (false, "store full: \(detail)")
        case .failed: (false, "store failed")
        }
    }

    private var currentStatus: Status {
        condition.lock()
        defer { condition.unlock(withValue: wakeValue) }
        return status
    }

    /// Refuses what grows the state from now on, writes what is pending, stops the writer.
    public func stop() async {
        condition.lock()
        stopping = true
        condition.unlock(withValue: wakeValue)
        if !(await flush(timeoutSeconds: configuration.stopTimeoutSeconds)) {
            logger.error(
                "stopping with events not yet durable (the store is full or failed); a restart recovers what is on disk"
            )
            condition.lock()
            abandoned = true
            condition.unlock(withValue: wakeValue)
        }
        try? await writerThread.shutdownGracefully()
    }

    // MARK: The writer

    private func writeLoop() {
        while true {
            condition.lock(whenValue: 1)
            if open.records.isEmpty && stopping {
                condition.unlock(withValue: wakeValue)
                return
            }
            let batch = open
            open = Batch()
            writingBytes = batch.bytes
            condition.unlock(withValue: wakeValue)
            if batch.records.isEmpty { continue }
            // After a failed write nothing more is written: a later batch on disk without the
            // failed one would leave a gap in the log.
            guard write(batch) else { return }
        }
    }

    /// Writes a batch and releases its actions; false when the store failed for good.
    private func write(_ batch: Batch) -> Bool {
        var chain = lastChain
        var values: [(index: UInt64, value: ByteBuffer)] = []
        values.reserveCapacity(batch.records.count)
        for record in batch.records {
            let encoded = LogRecord.encode(
                index: record.index, timeMillis: record.timeMillis, event: record.event.encoded, previousChain: chain)
            values.append((record.index, encoded.value))
            chain = encoded.chain
        }
        metrics.batchEvents.record(batch.records.count)
        metrics.applySeconds.recordNanoseconds(Int64(clamping: batch.applyNanos))
        var attempt = 0
        while true {
            do {
                let writeStarted = DispatchTime.now().uptimeNanoseconds
                try store.write(records: values, checkpoint: batch.checkpoint)
                metrics.storeWriteSeconds.recordNanoseconds(
                    Int64(clamping: DispatchTime.now().uptimeNanoseconds &- writeStarted))
                if let commitNanos = store.lastCommitNanoseconds {
                    metrics.storeSyncSeconds.recordNanoseconds(Int64(clamping: commitNanos))
                }
                break
            } catch .full(let detail) {
                condition.lock()
                let giveUp = abandoned
                condition.unlock(withValue: wakeValue)
                if giveUp { return false }
                attempt += 1
                setStatus(.full(detail))
                if attempt == 1 {
                    logger.error(
                        "store full: publishes, subscriptions and new sessions are refused (0x97) until space returns; nothing held is acknowledged",
                        metadata: ["detail": "\(detail)", "file": "\(store.dataFile)"])
                }
                usleep(500_000)
            } catch {
                setStatus(.failed)
                logger.critical(
                    "store write failed; nothing more is acknowledged and the node stops (a restart recovers from disk)",
                    metadata: ["error": "\(error)"])
                onFatal("store write failed: \(error)")
                return false
            }
        }
        if attempt > 0 {
            logger.notice("store has space again: accepting publishes")
            setStatus(.running)
        }
        lastChain = chain
        syncCount += 1
        syncedRecordCount += UInt64(batch.records.count)
        let lastIndex = batch.records.last!.index
        condition.lock()
        durableIndex = lastIndex
        writingBytes = 0
        condition.unlock(withValue: wakeValue)

        // Output commit: the batch is on disk, its actions may be seen. Only this thread
        // dispatches, batch after batch, so each connection gets its actions in apply order.
        if !batch.actions.isEmpty {
            var wakeups = PendingWakeups()
            sink.dispatch(batch.actions, wakeups: &wakeups)
            wakeups.wake()
        }
        if let checkpoint = batch.checkpoint {
            checkpointIndex = checkpoint.appliedIndex
            trimLog()
        }
        return true
    }

    private func setStatus(_ newStatus: Status) {
        condition.lock()
        status = newStatus
        condition.unlock(withValue: wakeValue)
    }

    /// Drops log records older than the retention, in bounded steps, never past the last
    /// checkpoint (recovery replays from there).
    private func trimLog() {
        do {
            // Bounded transactions until caught up (one per 10,000 records), so trimming keeps
            // pace with any event rate; each is a short write of its own.
            if checkpointIndex > configuration.logRetentionRecords {
                let below = checkpointIndex - configuration.logRetentionRecords + 1
                for _ in 0..<1000 {
                    guard try store.trimLog(below: below, limit: 10_000) == 10_000 else { break }
                }
            }
            if let retentionMillis = configuration.logRetentionMillis {
                let now = clock.nowMillis()
                let cutoff = now > retentionMillis ? now - retentionMillis : 0
                for _ in 0..<1000 {
                    let trimmed = try store.trimLog(below: checkpointIndex + 1, olderThanMillis: cutoff, limit: 10_000)
                    guard trimmed == 10_000 else { break }
                }
            }
        } catch {
            logger.warning("log trim failed; retried at the next checkpoint", metadata: ["error": "\(error)"])
        }
    }

    static func approximateSize(_ event: BrokerEvent) -> Int {
        switch event {
        case .publish(_, let publish): 64 + publish.topicName.utf8.count + publish.payload.readableBytes
        case .sessionOpen(let open): 96 + open.clientIdentifier.utf8.count + (open.will?.payload.readableBytes ?? 0)
        case .subscribe(_, let subscribe, _):
            32 + subscribe.subscriptions.reduce(0) { $0 + 8 + $1.topicFilter.utf8.count }
        case .unsubscribe(_, let unsubscribe): 32 + unsubscribe.topicFilters.reduce(0) { $0 + 4 + $1.utf8.count }
        default: 32
        }
    }
}
