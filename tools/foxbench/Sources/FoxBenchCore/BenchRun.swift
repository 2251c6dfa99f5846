import FoxMQTT
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One foxbench run: connects the clients, drives them, collects the figures.
public final class BenchRun: Sendable {
    public let config: BenchConfig
    let group: MultiThreadedEventLoopGroup
    let counters: SharedCounters
    let registry: LoopStatsRegistry
    let runID: String
    /// Writes a progress line (stderr).
    let log: @Sendable (String) -> Void

    public init(config: BenchConfig, log: @escaping @Sendable (String) -> Void) {
        self.config = config
        self.log = log
        counters = SharedCounters(publishers: config.mode == .pubsub ? config.publishers : 1)
        group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        registry = LoopStatsRegistry(group: group)
        runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    public func run() async throws -> Report {
        do {
            let report = try await runMode()
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func runMode() async throws -> Report {
        switch config.mode {
        case .pubsub: try await runPubSub()
        case .retained: try await runRetained()
        case .idle: try await runIdle()
        }
    }

    var settings: Report.Settings {
        let c = config
        let filter: String =
            switch c.mode {
            case .pubsub: c.subscribers > 0 ? c.topics.subscriberFilter(0) + (c.subscribers > 1 ? ", ..." : "") : "-"
            case .retained: "\(c.topics.prefix)/retained/#"
            case .idle: "-"
            }
        return Report.Settings(
            mode: c.mode.rawValue, broker: "\(c.host):\(c.port)", protocolVersion: c.version.description,
            qos: Int(c.qos.rawValue), subscriberQoS: Int((c.subscriberQoS ?? c.qos).rawValue),
            publishers: c.mode == .pubsub ? c.publishers : (c.mode == .retained ? 1 : 0),
            subscribers: c.mode == .pubsub ? c.subscribers : (c.mode == .retained ? 1 : c.idleConnections),
            payloadBytes: c.payloadSize, topicMode: c.mode == .pubsub ? c.topics.mode.rawValue : c.mode.rawValue,
            subscriberFilter: filter, ratePerPublisher: c.ratePerPublisher, window: c.window,
            endToEndWindow: c.endToEndWindow,
            count: c.mode == .retained ? UInt64(c.retainedCount) : c.count,
            durationSeconds: c.count == nil && c.mode == .pubsub ? c.durationSeconds : nil,
            fairnessThresholdNanos: c.fairnessThresholdNanos)
    }

    private var rss: Int? { config.brokerPID.flatMap { residentSetKilobytes(pid: $0) } }

    // MARK: Connections

    func connect(role: BenchClient.Role, clientID: String, ordinal: Int = 0) async throws -> NIOLoopBound<BenchClient> {
        let brokers = [(host: config.host, port: config.port)] + config.moreBrokers
        let (host, port) = brokers[ordinal % brokers.count]
        let loop = group.next()
        let promise = loop.makePromise(of: NIOLoopBound<BenchClient>.self)
        let config = self.config
        let counters = self.counters
        let stats = registry.stats(for: loop)
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(
                .writeBufferWaterMark,
                value: .init(low: max(1, config.outstandingBytes / 2), high: max(2, config.outstandingBytes))
            )
            .connectTimeout(.seconds(config.connectionTimeoutSeconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        BenchClient(
                            config: config, role: role, clientID: clientID, counters: counters, stats: stats,
                            ready: promise))
                }
            }
        do {
            _ = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            promise.fail(error)
            throw BenchError.connectFailed("\(host):\(port)", describe(error))
        }
        return try await promise.futureResult.get()
    }

    /// Opens the connections in order, at most `connectConcurrency` handshakes at a time and at
    /// most `connectRate` per second.
    func connectAll(_ specs: [(BenchClient.Role, String)]) async throws -> [NIOLoopBound<BenchClient>] {
        let rate = config.connectRate
        let limit = max(1, config.connectConcurrency)
        return try await withThrowingTaskGroup(of: (Int, NIOLoopBound<BenchClient>).self) { tasks in
            var results = [NIOLoopBound<BenchClient>?](repeating: nil, count: specs.count)
            var inFlight = 0
            let start = monotonicNanos()
            for (i, spec) in specs.enumerated() {
                if let rate, rate > 0 {
                    let due = start + UInt64(Double(i) / rate * 1e9)
                    let now = monotonicNanos()
                    if due > now { try await Task.sleep(nanoseconds: due - now) }
                }
                if inFlight >= limit, let (j, client) = try await tasks.next() {
                    results[j] = client
                    inFlight -= 1
                }
                tasks.addTask { (i, try await self.connect(role: spec.0, clientID: spec.1, ordinal: i)) }
                inFlight += 1
            }
            for try await (j, client) in tasks { results[j] = client }
            return results.map { $0! }
        }
    }

    func disconnectAll(_ clients: [NIOLoopBound<BenchClient>]) async {
        var futures: [EventLoopFuture<Void>] = []
        for client in clients {
            futures.append(client.eventLoop.flatSubmit { client.value.disconnect() })
        }
        for future in futures { try? await future.get() }
    }

    /// A line on stderr every second until cancelled.
    func startProgress(_ line: @escaping @Sendable (Double) -> String) -> Task<Void, Never>? {
        guard config.progress else { return nil }
        let log = self.log
        let start = monotonicNanos()
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                if Task.isCancelled { break }
                log(line(Double(monotonicNanos() - start) / 1e9))
            }
        }
    }

    /// Sleeps in steps until `finished()` or until `progress()` has not changed for `stall` seconds.
    /// Returns whether it finished.
    func wait(stall: Double, finished: () -> Bool, progress: () -> UInt64) async -> Bool {
        var last = progress()
        var lastChange = monotonicNanos()
        while !finished() {
            try? await Task.sleep(nanoseconds: 20_000_000)
            let now = progress()
            if now != last {
                last = now
                lastChange = monotonicNanos()
            } else if Double(monotonicNanos() - lastChange) / 1e9 >= stall {
                return finished()
            }
        }
        return true
    }

    // MARK: Publish/subscribe

    private func publish(_ publishers: [NIOLoopBound<BenchClient>], start: UInt64) async -> [PublisherResult] {
        let finished = Atomic<Int>(0)
        var futures: [EventLoopFuture<PublisherResult>] = []
        for publisher in publishers {
            let promise = publisher.eventLoop.makePromise(of: PublisherResult.self)
            publisher.eventLoop.execute { publisher.value.startPublishing(at: start, done: promise) }
            futures.append(promise.futureResult)
        }
        // The futures count themselves as they complete.
        let counter = FinishCounter()
        for future in futures { future.whenComplete { _ in counter.increment() } }
        _ = finished
        let total = futures.count
        let counters = self.counters
        let ended = await wait(
            stall: config.drainSeconds + (config.count == nil ? config.durationSeconds : 0),
            finished: { counter.value >= total },
            progress: { counters.sent.load(ordering: .relaxed) &+ counters.acked.load(ordering: .relaxed) })
        if !ended {
            for publisher in publishers { publisher.eventLoop.execute { publisher.value.abandon() } }
        }
        var results: [PublisherResult] = []
        for future in futures { if let r = try? await future.get() { results.append(r) } }
        return results
    }

    private func runPubSub() async throws -> Report {
        let c = config
        var report = Report(settings: settings)
        report.brokerRSSKilobytesBefore = rss
        let subscribers = try await connectAll(
            (0..<c.subscribers).map { (.subscriber($0), "\(c.clientIDPrefix)-\(runID)-s\($0)") })
        let publishers = try await connectAll(
            (0..<c.publishers).map { (.publisher($0), "\(c.clientIDPrefix)-\(runID)-p\($0)") })

        let counters = self.counters
        let previous = Mutex<(UInt64, UInt64, Double)>((0, 0, 0))
        let progress = startProgress { elapsed in
            let sent = counters.sent.load(ordering: .relaxed)
            let delivered = counters.delivered.load(ordering: .relaxed)
            let acked = counters.acked.load(ordering: .relaxed)
            let (lastSent, lastDelivered, lastElapsed) = previous.withLock { p in
                defer { p = (sent, delivered, elapsed) }
                return p
            }
            let interval = max(elapsed - lastElapsed, 0.001)
            return
                "[\(fmt(elapsed, 0))s] sent \(sent) (\(fmt(Double(sent - lastSent) / interval, 0))/s), delivered \(delivered) (\(fmt(Double(delivered - lastDelivered) / interval, 0))/s)"
                + (c.qos != .atMostOnce ? ", acked \(acked)" : "")
        }
        defer { progress?.cancel() }

        let start = monotonicNanos()
        let results = await publish(publishers, start: start)
        let publishEnd = results.map(\.lastSendTime).max() ?? start

        // Expected deliveries, from what each publisher sent.
        var sentBy = [UInt64](repeating: 0, count: c.publishers)
        for r in results { sentBy[r.index] = r.sent }
        var expectedTotal: UInt64 = 0
        for s in 0..<c.subscribers {
            for p in 0..<c.publishers {
                expectedTotal += c.topics.expectedCount(subscriber: s, publisher: p, sent: sentBy[p])
            }
        }
        if c.subscribers > 0 {
            _ = await wait(
                stall: c.drainSeconds,
                finished: { counters.delivered.load(ordering: .relaxed) >= expectedTotal },
                progress: { counters.delivered.load(ordering: .relaxed) })
        }
        progress?.cancel()
        report.brokerRSSKilobytesAfter = rss

        var subscriberResults: [SubscriberResult] = []
        for subscriber in subscribers {
            subscriberResults.append(
                try await subscriber.eventLoop.submit { subscriber.value.subscriberResult() }.get())
        }
        // Publishers that finished by abandon: their unacked count at the end.
        var unacked: UInt64 = 0
        for publisher in publishers {
            let r = try await publisher.eventLoop.submit { publisher.value.publisherResult() }.get()
            unacked += UInt64(r.unacked)
        }
        let (latency, ackLatency) = try await registry.merged()
        await disconnectAll(publishers + subscribers)

        report.sent = sentBy.reduce(0, +)
        report.publishSeconds = Double(publishEnd - start) / 1e9
        report.sentPerSecond = report.publishSeconds > 0 ? Double(report.sent) / report.publishSeconds : 0
        var lastReceive = start
        for r in subscriberResults {
            report.delivered += r.delivered
            report.foreign += r.foreign
            report.fairnessInversions += r.fairnessInversions
            lastReceive = max(lastReceive, r.lastReceiveTime)
            for p in 0..<c.publishers {
                report.delivery.add(
                    r.trackers[p], expected: c.topics.expectedCount(subscriber: r.index, publisher: p, sent: sentBy[p]))
            }
        }
        report.deliverySeconds = Double(lastReceive - start) / 1e9
        report.deliveredPerSecond = report.deliverySeconds > 0 ? Double(report.delivered) / report.deliverySeconds : 0
        report.acked = counters.acked.load(ordering: .relaxed)
        report.unacked = unacked
        report.ackErrors = counters.ackErrors.load(ordering: .relaxed)
        report.disconnects = counters.disconnects.load(ordering: .relaxed)
        report.latencyMicroseconds = LatencySummary(latency)
        report.ackLatencyMicroseconds = c.qos == .atMostOnce ? nil : LatencySummary(ackLatency)
        return report
    }

    // MARK: Retained storm

    private func runRetained() async throws -> Report {
        let c = config
        var report = Report(settings: settings)
        report.brokerRSSKilobytesBefore = rss
        let publishers = try await connectAll([(.publisher(0), "\(c.clientIDPrefix)-\(runID)-p0")])
        let counters = self.counters
        var phase = "publishing"
        _ = phase
        let progress = startProgress { elapsed in
            "[\(fmt(elapsed, 0))s] retained sent \(counters.sent.load(ordering: .relaxed)), received \(counters.delivered.load(ordering: .relaxed))"
        }
        defer { progress?.cancel() }
        let start = monotonicNanos()
        let results = await publish(publishers, start: start)
        let published = results.first?.sent ?? 0
        report.sent = published
        report.publishSeconds = Double((results.first?.lastSendTime ?? start) - start) / 1e9
        report.sentPerSecond = report.publishSeconds > 0 ? Double(published) / report.publishSeconds : 0
        await disconnectAll(publishers)
        phase = "subscribing"

        let subscriber = try await connect(role: .subscriber(0), clientID: "\(c.clientIDPrefix)-\(runID)-s0")
        let target = UInt64(c.retainedCount)
        let promise = subscriber.eventLoop.makePromise(of: UInt64.self)
        subscriber.eventLoop.execute { subscriber.value.notifyWhenReceived(target, promise: promise) }
        let counter = FinishCounter()
        promise.futureResult.whenComplete { _ in counter.increment() }
        _ = await wait(
            stall: c.drainSeconds, finished: { counter.value > 0 },
            progress: { counters.delivered.load(ordering: .relaxed) })
        let allAt = counter.value > 0 ? try? await promise.futureResult.get() : nil
        let result = try await subscriber.eventLoop.submit { subscriber.value.subscriberResult() }.get()
        report.brokerRSSKilobytesAfter = rss
        await disconnectAll([subscriber])
        if counter.value == 0 { promise.fail(BenchError.protocolViolation("retained", "timed out")) }

        report.delivered = result.delivered
        report.delivery.add(result.trackers[0], expected: published)
        report.foreign = result.foreign
        let seconds = allAt.map { Double($0 - result.subscribeSentTime) / 1e9 }
        report.retained = Report.Retained(
            topics: c.retainedCount, publishSeconds: report.publishSeconds, subscribeToAllSeconds: seconds,
            received: result.trackers[0].unique, messagesPerSecond: seconds.map { Double(target) / $0 })
        report.disconnects = counters.disconnects.load(ordering: .relaxed)
        return report
    }

    // MARK: Idle connections

    private func runIdle() async throws -> Report {
        let c = config
        var report = Report(settings: settings)
        report.brokerRSSKilobytesBefore = rss
        let connected = Atomic<Int>(0)
        _ = connected
        let start = monotonicNanos()
        let counters = self.counters
        let progress = startProgress { elapsed in
            "[\(fmt(elapsed, 0))s] idle connections, disconnects \(counters.disconnects.load(ordering: .relaxed))"
        }
        defer { progress?.cancel() }
        let clients = try await connectAll(
            (0..<c.idleConnections).map { (.idle, "\(c.clientIDPrefix)-\(runID)-i\($0)") })
        let connectSeconds = Double(monotonicNanos() - start) / 1e9
        log("\(clients.count) idle connections up in \(fmt(connectSeconds)) s; holding \(fmt(c.holdSeconds)) s")
        // Let the broker settle before reading its memory.
        try await Task.sleep(nanoseconds: UInt64(min(1.0, c.holdSeconds) * 1e9))
        report.brokerRSSKilobytesAfter = rss
        if c.holdSeconds > 1 { try await Task.sleep(nanoseconds: UInt64((c.holdSeconds - 1) * 1e9)) }
        progress?.cancel()
        let disconnects = Int(counters.disconnects.load(ordering: .relaxed))
        await disconnectAll(clients)
        var bytesPerConnection: Double?
        if let before = report.brokerRSSKilobytesBefore, let after = report.brokerRSSKilobytesAfter, !clients.isEmpty {
            bytesPerConnection = Double(after - before) * 1024 / Double(clients.count)
        }
        report.idle = Report.Idle(
            requested: c.idleConnections, connected: clients.count, connectSeconds: connectSeconds,
            holdSeconds: c.holdSeconds, survived: clients.count - disconnects, bytesPerConnection: bytesPerConnection)
        report.disconnects = UInt64(disconnects)
        return report
    }
}

final class FinishCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

func describe(_ error: any Error) -> String {
    if let io = error as? IOError {
        return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
    }
    if let connectionError = error as? NIOConnectionError {
        if let first = connectionError.connectionErrors.first {
            return describe(first.error)
        }
        return "\(connectionError)"
    }
    if error is ChannelError, case ChannelError.connectTimeout = error as! ChannelError {
        return "connection timed out"
    }
    return "\(error)"
}

/// Raises the open file limit to the hard limit (10,000 idle connections need as many descriptors).
public func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
