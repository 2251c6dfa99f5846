import FoxBrokerCore
import FoxBrokerStore
import FoxMQTT
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Configuration of a node's listeners and limits.
public struct NodeConfiguration: Sendable {
    public var mqttHost = "0.0.0.0"
    public var mqttPort = 1883
    /// The WebSocket listener (path-independent, subprotocol `mqtt`); nil for none.
    public var webSocketHost: String? = nil
    public var webSocketPort = 8080
    /// MQTT over TLS (`--mqtts-addr`); nil for none. Needs `tls`.
    public var secureMQTTHost: String? = nil
    public var secureMQTTPort = 8883
    /// WebSockets over TLS (`--wss-addr`); nil for none. Needs `tls`.
    public var secureWebSocketHost: String? = nil
    public var secureWebSocketPort = 8081
    /// The certificate of the TLS listeners.
    public var tls: ClientTLS? = nil
    public var connectionLimits = ConnectionLimits()
    public var brokerLimits = BrokerLimits()
    /// Event loop threads; defaults to one per core.
    public var eventLoopThreadCount = System.coreCount
    /// How often time-driven rules (will delay, session expiry) are evaluated.
    public var tickIntervalMillis: Int64 = 1000
    /// `$SYS` topics every this many seconds (`--sys-interval`); 0 for none.
    public var systemTopicsIntervalSeconds = 10
    /// `$SYS/broker/version`.
    public var softwareVersion = "foxmq"
    /// How often the state gauges of the metrics (sessions, retained, in flight, queued) are
    /// sampled.
    public var metricsSampleIntervalMillis: Int64 = 5000
    /// Every this many seconds the heap's free memory goes back to the kernel
    /// (`--memory-trim-interval`, `MemoryTrim`); 0 for never.
    public var memoryTrimIntervalSeconds = 60

    public init() {}
}

/// Where a node keeps its state.
public enum NodeStorage: Sendable {
    /// In memory only: lost at exit (tests).
    case memory
    /// The node's LMDB store, recovered (rows plus log replay) before the node is made; the
    /// incarnation was bumped for this run.
    case durable(
        store: NodeStore, recovered: RecoveredStateBox, incarnation: UInt32, configuration: DurableOrderer.Configuration
    )
    /// A member of a cluster: the node's store holds the consensus tables too, and every event
    /// is ordered by the consensus core.
    case cluster(ClusterRole)
}

/// What a cluster node brings to `BrokerNode`: its committee position, its incarnation, the
/// consensus orderer (made over the node's connection registry, which routes the actions of
/// this node's connections), and the transport to start before and stop after it.
public struct ClusterRole: Sendable {
    public var me: UInt16
    public var incarnation: UInt32
    /// Makes the orderer over the node's connection registry, with the node's fatal-stop handler.
    public var makeOrderer:
        @Sendable (_ sink: any ActionSink, _ onFatal: @escaping @Sendable (String) -> Void) throws -> ConsensusOrderer
    public var transport: any ClusterService

    public init(
        me: UInt16, incarnation: UInt32, transport: any ClusterService,
        makeOrderer:
            @escaping @Sendable (_ sink: any ActionSink, _ onFatal: @escaping @Sendable (String) -> Void) throws ->
            ConsensusOrderer
    ) {
        self.me = me
        self.incarnation = incarnation
        self.transport = transport
        self.makeOrderer = makeOrderer
    }
}

/// The cluster transport's lifecycle, as the node drives it.
public protocol ClusterService: Sendable {
    func start() async throws
    func stop() async
}

/// Carries the recovered state (a class graph) into the node once.
public final class RecoveredStateBox: @unchecked Sendable {
    public let value: RecoveredState
    public init(_ value: RecoveredState) { self.value = value }
}

/// One broker node: its listeners, its orderer and broker state, its timers. Start it, then
/// `shutdown()` for a graceful stop (5.0 clients get DISCONNECT 0x8B).
public final class BrokerNode: Sendable {
    public let configuration: NodeConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let services: BrokerServices
    private let orderer: any Orderer
    private let durableOrderer: DurableOrderer?
    private let consensusOrderer: ConsensusOrderer?
    private let cluster: ClusterRole?
    /// The node's store, for the metrics' reading of its size (nil in memory).
    private let store: NodeStore?
    private let nodeIndex: UInt32
    private let incarnation: UInt32
    private let serverChannels = NIOLockedValueBox<[any Channel]>([])
    private let tickTask = NIOLockedValueBox<RepeatedTask?>(nil)
    private let statisticsTasks = NIOLockedValueBox<[RepeatedTask]>([])
    private let systemTopics: NIOLockedValueBox<SystemTopics>
    private let startedAt = NIODeadline.now()
    /// The sampler's last reading of the state (under the orderer's lock, one pass over the
    /// sessions): the metrics and `$SYS` share it rather than each taking the lock.
    private let lastStateSample = NIOLockedValueBox<StateSample?>(nil)
    /// The queue-full drops already counted into the metrics (the state's total is read).
    private let droppedQueueFullCounted = NIOLockedValueBox<UInt64>(0)
    /// The expired drops already counted into the metrics.
    private let droppedExpiredCounted = NIOLockedValueBox<UInt64>(0)
    private let connectionCounter = NIOLockedValueBox<UInt64>(0)
    /// Where the node is in its life, for `/healthz`.
    private let phase = NIOLockedValueBox(Phase.starting)
    private enum Phase { case starting, serving, stopping }
    private let logger: Logger

    public init(
        configuration: NodeConfiguration, authenticator: any Authenticator, logger: Logger,
        clock: any BrokerClock = SystemClock(), storage: NodeStorage = .memory,
        onFatal: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        configuration.connectionLimits.checkInvariants()
        self.configuration = configuration
        self.logger = logger
        var member: UInt32?
        if case .cluster(let role) = storage { member = UInt32(role.me) }
        systemTopics = NIOLockedValueBox(SystemTopics(node: member, version: configuration.softwareVersion))
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreadCount))
        threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        var brokerLimits = configuration.brokerLimits
        brokerLimits.topicLevelCountMax = configuration.connectionLimits.topicLevelCountMax
        let registry: ConnectionRegistry
        switch storage {
        case .memory:
            registry = ConnectionRegistry(node: 0)
            nodeIndex = 0
            incarnation = 0
            durableOrderer = nil
            consensusOrderer = nil
            cluster = nil
            self.store = nil
            orderer = LocalOrderer(state: BrokerState(limits: brokerLimits), clock: clock, sink: registry)
        case .durable(let store, let recovered, let incarnation, let ordererConfiguration):
            registry = ConnectionRegistry(node: 0)
            nodeIndex = 0
            self.incarnation = incarnation
            let durable = DurableOrderer(
                recovered: recovered.value, store: store, clock: clock, sink: registry,
                configuration: ordererConfiguration, logger: logger, onFatal: onFatal)
            durableOrderer = durable
            consensusOrderer = nil
            cluster = nil
            self.store = store
            orderer = durable
        case .cluster(let role):
            registry = ConnectionRegistry(node: UInt32(role.me))
            nodeIndex = UInt32(role.me)
            incarnation = role.incarnation
            durableOrderer = nil
            cluster = role
            let consensus = try role.makeOrderer(registry, onFatal)
            consensusOrderer = consensus
            self.store = consensus.nodeStore
            orderer = consensus
        }
        services = BrokerServices(
            limits: configuration.connectionLimits, orderer: orderer, registry: registry,
            authenticator: authenticator, threadPool: threadPool, logger: logger)
    }

    /// Orders new limits, if they differ from the state's: from that event on they decide, on
    /// this node and in every replay. Returns whether anything changed.
    @discardableResult
    public func reconfigure(_ limits: BrokerLimits) -> Bool {
        var limits = limits
        limits.topicLevelCountMax = configuration.connectionLimits.topicLevelCountMax
        let current: BrokerLimits
        if let durableOrderer {
            current = durableOrderer.withState { $0.limits }
        } else if let consensusOrderer {
            current = consensusOrderer.withState { $0.limits }
        } else if let local = orderer as? LocalOrderer {
            current = local.withState { $0.limits }
        } else {
            return false
        }
        guard current != limits else { return false }
        orderer.submit(.configure(limits))
        return true
    }

    /// The durable orderer, when the node has a store (figures, tests).
    public var durable: DurableOrderer? { durableOrderer }

    /// The consensus orderer, when the node is a cluster member.
    public var consensus: ConsensusOrderer? { consensusOrderer }

    /// The addresses actually bound (port 0 resolves to a free port).
    public var localAddresses: [SocketAddress] {
        serverChannels.withLockedValue { $0.compactMap(\.localAddress) }
    }

    /// Starts the node: `startOrdering()`, then `startListeners()`.
    public func start() async throws {
        try await startOrdering()
        try await startListeners()
    }

    /// Orders the start of this run: the limits of this run and the end of every session the
    /// previous process left attached (durable), or the consensus core, the transport and this
    /// node's start ordered by a quorum (cluster). Listeners open only after it.
    public func startOrdering() async throws {
        if let durableOrderer {
            // Before any listener opens: the limits of this run, then the end of every session
            // the previous process left attached, both ordered and durable.
            var limits = configuration.brokerLimits
            limits.topicLevelCountMax = configuration.connectionLimits.topicLevelCountMax
            if durableOrderer.withState({ $0.limits }) != limits {
                durableOrderer.submit(.configure(limits))
                logger.info("limits changed since the last run: ordered in the log")
            }
            durableOrderer.submit(.nodeStarted(node: 0, incarnation: incarnation))
            guard await durableOrderer.flush(timeoutSeconds: 30) else {
                throw NodeStartError(
                    message:
                        "the store could not write the start of this run within 30 s (disk or map full, or a failed write); nothing was opened"
                )
            }
        }
        if let consensusOrderer, let cluster {
            // The core replays its store, the transport connects the peers, and this node's
            // start is ordered by a quorum before any listener opens.
            consensusOrderer.start()
            try await cluster.transport.start()
            guard await consensusOrderer.waitUntilStarted() else {
                throw NodeStartError(message: "the node stopped before its start was ordered by the cluster")
            }
            var limits = configuration.brokerLimits
            limits.topicLevelCountMax = configuration.connectionLimits.topicLevelCountMax
            if consensusOrderer.withState({ $0.limits }) != limits {
                consensusOrderer.submit(.configure(limits))
                logger.info("limits differ from the cluster's: ordered in the log (every node applies them)")
            }
        }
    }

    /// Gives up a start that waits (a cluster node waiting for a quorum): `startOrdering()`
    /// then fails. Any thread.
    public func abandonStart() {
        consensusOrderer?.abandonStart()
    }

    /// Opens the listeners (MQTT, WebSocket, and their TLS forms) and starts the tick and the
    /// statistics. Call after `startOrdering()`.
    public func startListeners() async throws {
        let mqtt = try await bootstrap { channel in
            // The initializer runs on the channel's loop: the handler is added there, not sent.
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    MQTTConnectionHandler(connection: self.nextConnectionID(), services: self.services))
            }
        }.bind(host: configuration.mqttHost, port: configuration.mqttPort).get()
        serverChannels.withLockedValue { $0.append(mqtt) }
        logger.info("MQTT listener started", metadata: ["address": "\(mqtt.localAddress.map { "\($0)" } ?? "?")"])

        if let webSocketHost = configuration.webSocketHost {
            let webSocket = try await bootstrap { channel in
                self.configureWebSocket(channel)
            }.bind(host: webSocketHost, port: configuration.webSocketPort).get()
            serverChannels.withLockedValue { $0.append(webSocket) }
            logger.info(
                "WebSocket listener started", metadata: ["address": "\(webSocket.localAddress.map { "\($0)" } ?? "?")"])
        }

        if let tls = configuration.tls, let host = configuration.secureMQTTHost {
            let secure = try await bootstrap { channel in
                channel.eventLoop.makeCompletedFuture {
                    try tls.addHandlers(to: channel.pipeline.syncOperations, metrics: self.services.metrics)
                    try channel.pipeline.syncOperations.addHandler(
                        MQTTConnectionHandler(connection: self.nextConnectionID(), services: self.services))
                }
            }.bind(host: host, port: configuration.secureMQTTPort).get()
            serverChannels.withLockedValue { $0.append(secure) }
            logger.info(
                "MQTT over TLS listener started", metadata: ["address": "\(secure.localAddress.map { "\($0)" } ?? "?")"]
            )
        }
        if let tls = configuration.tls, let host = configuration.secureWebSocketHost {
            let secure = try await bootstrap { channel in
                channel.eventLoop.makeCompletedFuture {
                    try tls.addHandlers(to: channel.pipeline.syncOperations, metrics: self.services.metrics)
                }.flatMap { self.configureWebSocket(channel) }
            }.bind(host: host, port: configuration.secureWebSocketPort).get()
            serverChannels.withLockedValue { $0.append(secure) }
            logger.info(
                "WebSocket over TLS listener started",
                metadata: ["address": "\(secure.localAddress.map { "\($0)" } ?? "?")"])
        }

        let orderer = self.orderer
        let task = group.next().scheduleRepeatedTask(
            initialDelay: .milliseconds(configuration.tickIntervalMillis),
            delay: .milliseconds(configuration.tickIntervalMillis)
        ) { _ in orderer.tickIfDue() }
        tickTask.withLockedValue { $0 = task }
        startStatistics()
        phase.withLockedValue { $0 = .serving }
    }

    // MARK: Metrics and $SYS

    /// For `/healthz`: the node takes publishes (its store writes; in a cluster, a quorum is
    /// reachable).
    public var health: (healthy: Bool, detail: String) {
        switch phase.withLockedValue({ $0 }) {
        case .starting: return (false, "starting: the listeners are not open yet")
        case .stopping: return (false, "stopping")
        case .serving: break
        }
        if let durableOrderer { return durableOrderer.health }
        if let consensusOrderer { return consensusOrderer.health }
        return (true, "ok (in memory)")
    }

    typealias StateSample = (
        retained: Int, subscriptions: Int, sessions: Int, connected: Int, offline: Int, inflight: Int, queued: Int,
        droppedQueueFull: UInt64, droppedExpired: UInt64
    )

    /// The state as the metrics and `$SYS` see it; nil for the in-memory test orderer.
    private func stateSample() -> StateSample? {
        func read(_ state: BrokerState) -> (Int, Int, Int, Int, Int, Int, Int, UInt64, UInt64) {
            let delivery = state.deliveryStatistics()
            return (
                state.retainedMessageCount, state.subscriptionCount, state.sessionCount, delivery.connected,
                delivery.offline, delivery.inflight, delivery.queued, state.droppedQueueFullCount,
                delivery.droppedExpired
            )
        }
        if let durableOrderer { return durableOrderer.withState(read) }
        if let consensusOrderer { return consensusOrderer.withState(read) }
        if let local = orderer as? LocalOrderer { return local.withState(read) }
        return nil
    }

    private func startStatistics() {
        let metrics = services.metrics
        // What recovery replayed was counted in the earlier life: only drops from now on count.
        if let first = stateSample() {
            droppedQueueFullCounted.withLockedValue { $0 = first.droppedQueueFull }
            droppedExpiredCounted.withLockedValue { $0 = first.droppedExpired }
        }
        let sampler = group.next().scheduleRepeatedTask(
            initialDelay: .zero, delay: .milliseconds(configuration.metricsSampleIntervalMillis)
        ) { [self] _ in
            guard let sample = stateSample() else { return }
            lastStateSample.withLockedValue { $0 = sample }
            metrics.retainedMessages.record(sample.retained)
            metrics.subscriptions.record(sample.subscriptions)
            metrics.sessionsConnected.record(sample.connected)
            metrics.sessionsOffline.record(sample.offline)
            metrics.messagesInflight.record(sample.inflight)
            metrics.messagesQueued.record(sample.queued)
            let newDrops = droppedQueueFullCounted.withLockedValue { counted in
                defer { counted = sample.droppedQueueFull }
                return sample.droppedQueueFull &- counted
            }
            if newDrops > 0 { metrics.droppedQueueFull.increment(by: Int64(newDrops)) }
            // The expired total can go down (a state transfer replaces the sessions and counts).
            let newExpired = droppedExpiredCounted.withLockedValue { counted in
                defer { counted = sample.droppedExpired }
                return sample.droppedExpired > counted ? sample.droppedExpired - counted : 0
            }
            if newExpired > 0 { metrics.droppedExpired.increment(by: Int64(newExpired)) }
            if let consensusOrderer {
                metrics.peersConnected.record(consensusOrderer.reachablePeerCount)
                metrics.commitIndex.record(consensusOrderer.durableCommitIndex)
            }
            if let durableOrderer {
                let indices = durableOrderer.indices
                metrics.logIndex.record(indices.durable)
            }
            if let store {
                let info = store.environment.info
                metrics.storeUsedBytes.record(info.usedBytes)
                metrics.storeMapBytes.record(info.mapSizeBytes)
                if let log = try? store.logStatistics() {
                    metrics.logEntries.record(log.entries)
                    metrics.logBytes.record(log.bytes)
                }
            }
        }
        statisticsTasks.withLockedValue { $0.append(sampler) }
        if configuration.memoryTrimIntervalSeconds > 0 {
            let interval = TimeAmount.seconds(Int64(configuration.memoryTrimIntervalSeconds))
            let (threadPool, logger) = (self.threadPool, self.logger)
            let trimmer = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                // It holds each arena's lock while it walks it: off the event loops.
                threadPool.submit { state in
                    guard case .active = state else { return }
                    MemoryTrim.run(logger: logger)
                }
            }
            statisticsTasks.withLockedValue { $0.append(trimmer) }
        }
        guard configuration.systemTopicsIntervalSeconds > 0 else { return }
        let interval = Int64(configuration.systemTopicsIntervalSeconds)
        let publisher = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(interval)) {
            [self] _ in publishSystemTopics()
        }
        statisticsTasks.withLockedValue { $0.append(publisher) }
    }

    /// One round of `$SYS`: the values that changed, ordered as retained QoS 0 messages.
    private func publishSystemTopics() {
        guard let state = lastStateSample.withLockedValue({ $0 }) ?? stateSample() else { return }
        let totals = services.metrics.totals
        let seconds = Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9
        let sample = SystemTopics.Sample(
            uptimeSeconds: Int(seconds), clientsConnected: totals.connectionsOpen.load(ordering: .relaxed),
            sessions: state.sessions, subscriptions: state.subscriptions, retained: state.retained,
            inflight: state.inflight, queued: state.queued,
            messagesReceived: totals.messagesReceived.load(ordering: .relaxed),
            messagesSent: totals.messagesSent.load(ordering: .relaxed),
            bytesReceived: totals.bytesReceived.load(ordering: .relaxed),
            bytesSent: totals.bytesSent.load(ordering: .relaxed))
        let messages = systemTopics.withLockedValue { $0.round(sample, atSeconds: seconds) }
        for (topicName, payload) in messages {
            orderer.submit(.systemPublish(node: nodeIndex, topicName: topicName, payload: payload))
        }
    }

    private func bootstrap(_ initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) -> ServerBootstrap
    {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Unwritable above the limit: the handler then drops QoS 0 for a slow subscriber.
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(
                    low: configuration.connectionLimits.outboundBufferBytesMax / 4,
                    high: configuration.connectionLimits.outboundBufferBytesMax)
            )
            // Small first reads: NIO keeps each channel's last receive buffer for reuse, and most
            // connections are idle after a CONNECT that fits in 128 bytes; the allocator grows
            // the buffer of the busy ones.
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 128, maximum: 65536)
            )
            .childChannelInitializer(initializer)
    }

    private func nextConnectionID() -> ConnectionID {
        connectionCounter.withLockedValue { counter in
            counter += 1
            return ConnectionID(node: nodeIndex, incarnation: incarnation, local: counter)
        }
    }

    private func configureWebSocket(_ channel: any Channel) -> EventLoopFuture<Void> {
        let services = self.services
        let maxFrameSize = min(Int(UInt32.max), configuration.connectionLimits.maximumPacketSizeBytes + 16)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: maxFrameSize,
            shouldUpgrade: { channel, head in
                // MQTT 5.0 §6: the subprotocol is "mqtt"; older clients say "mqttv3.1".
                let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map { String($0).lowercased() }
                var headers = HTTPHeaders()
                if let chosen = offered.first(where: { $0 == "mqtt" || $0 == "mqttv3.1" }) {
                    headers.add(name: "Sec-WebSocket-Protocol", value: chosen)
                } else if !offered.isEmpty {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { channel, _ in
                channel.pipeline.removeHandler(name: PlainHTTPRefusal.name).flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(WebSocketMQTTHandler())
                        try channel.pipeline.syncOperations.addHandler(
                            MQTTConnectionHandler(connection: self.nextConnectionID(), services: services))
                    }
                }
            })
        return channel.pipeline.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
        ).flatMap {
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(PlainHTTPRefusal(), name: PlainHTTPRefusal.name)
            }
        }
    }

    /// Stops accepting, tells every client (0x8B for 5.0), waits briefly for the sockets to
    /// close, then stops the threads.
    /// A graceful stop, in order: `stopListeners()`, `stopOrdering()`, `releaseThreads()`.
    public func shutdown() async {
        await stopListeners()
        await stopOrdering()
        await releaseThreads()
    }

    /// Stops accepting connections, then ends every session through the log (5.0 clients get
    /// DISCONNECT 0x8B), waiting up to 2 s for the connections to close.
    public func stopListeners() async {
        phase.withLockedValue { $0 = .stopping }
        tickTask.withLockedValue { $0?.cancel() }
        statisticsTasks.withLockedValue { tasks in
            for task in tasks { task.cancel() }
        }
        let channels = serverChannels.withLockedValue { $0 }
        for channel in channels { try? await channel.close() }
        for handle in services.registry.all {
            handle.eventLoop.execute { handle.handler.value.shutdown() }
        }
        for _ in 0..<40 {
            guard services.registry.count > 0 else { break }
            await pause(nanoseconds: 50_000_000)
        }
        logger.info("listeners closed, sessions ended", metadata: ["open": "\(services.registry.count)"])
    }

    /// Drains the writer: the ends of the sessions are in the log, made durable before the
    /// writer stops (durable); the consensus orderer and the cluster transport stop (cluster).
    public func stopOrdering() async {
        await durableOrderer?.stop()
        if let consensusOrderer, let cluster {
            await consensusOrderer.stop()
            await cluster.transport.stop()
        }
        logger.info("orderer drained and stopped")
    }

    /// Shuts the event loops and the blocking-work pool down: after it nothing of the node
    /// runs, so the store can be closed.
    public func releaseThreads() async {
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
        logger.info("stopped")
    }
}

/// Answers a plain HTTP request on the WebSocket port (no upgrade) with 400.
private final class PlainHTTPRefusal: ChannelInboundHandler, RemovableChannelHandler {
    static let name = "foxmq-plain-http-refusal"
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            loopBoundContext.value.close(promise: nil)
        }
    }
}

/// Why a node did not open its listeners.
public struct NodeStartError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
