import ArgumentParser
import CoreMetrics
import Dispatch
import FoxBroker
import FoxBrokerCore
import FoxBrokerStore
import FoxCluster
import FoxStore
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start a broker node.",
        discussion: """
            Reads users.toml from DIR (default foxmq.d, created when missing). Without an \
            address book the node runs alone. SIGINT or SIGTERM stop it gracefully: MQTT 5.0 \
            clients receive DISCONNECT 0x8B (Server shutting down).
            """
    )

    @Argument(help: "The configuration directory.")
    var directory: String = "foxmq.d"

    @Option(
        name: [.customShort("f"), .long],
        help: ArgumentHelp("This node's secret key (PEM); default DIR/key_0.pem. Used by clusters.", valueName: "PEM"))
    var secretKeyFile: String?

    @Option(
        name: [.customShort("L"), .long], help: ArgumentHelp("Address of the MQTT listener.", valueName: "HOST:PORT"))
    var mqttAddr: String = "0.0.0.0:1883"

    @Option(
        name: [.customShort("C"), .long],
        help: ArgumentHelp(
            "Address of the cluster listener (peers connect here; see address-book.toml).", valueName: "HOST:PORT"))
    var clusterAddr: String = "0.0.0.0:19793"

    @Option(
        help: ArgumentHelp(
            "Cluster: milliseconds a node waits for a round's leader before it moves on (doubling while leaders stay missing, up to 1 s); 5-20 on one machine or a LAN.",
            valueName: "MS"))
    var leaderTimeoutMillis: UInt64 = 250

    @Option(
        help: ArgumentHelp(
            "Cluster: seconds a peer may be unreachable before its clients' sessions end (wills, expiry) so they can resume on another node.",
            valueName: "SECONDS"))
    var willFailoverSeconds: UInt64 = 30

    @Flag(help: "Accept clients that send no user name (refused otherwise).")
    var allowAnonymousLogin = false

    @Flag(help: "Also listen for MQTT over WebSockets (subprotocol mqtt).")
    var websockets = false

    @Option(help: ArgumentHelp("Address of the WebSocket listener.", valueName: "HOST:PORT"))
    var websocketsAddr: String = "0.0.0.0:8080"

    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics on http://HOST:PORT/metrics and a health check on /healthz.",
            valueName: "HOST:PORT"))
    var metricsAddr: String?

    @Option(
        help: ArgumentHelp(
            "Publish the $SYS topics (retained) every this many seconds; 0 for none.", valueName: "SECONDS"))
    var sysInterval: Int = 10

    @Option(
        help: ArgumentHelp(
            "Return the heap's free memory to the kernel every this many seconds (after a flood of "
                + "connections or messages has gone); 0 for never.", valueName: "SECONDS"))
    var memoryTrimInterval: Int = 60

    @Option(
        help: ArgumentHelp(
            "Also listen for MQTT over TLS here (needs --tls-cert and --tls-key).", valueName: "HOST:PORT"))
    var mqttsAddr: String?

    @Option(
        help: ArgumentHelp(
            "Also listen for MQTT over WebSockets over TLS here (needs --tls-cert and --tls-key).",
            valueName: "HOST:PORT"))
    var wssAddr: String?

    @Option(
        help: ArgumentHelp(
            "Certificate (chain, PEM) of the TLS listeners; read again on SIGHUP.", valueName: "PEM"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("Private key (PEM) of --tls-cert; read again on SIGHUP.", valueName: "PEM"))
    var tlsKey: String?

    @Option(
        help: ArgumentHelp(
            "Require client certificates on the TLS listeners, issued by these CA certificates.", valueName: "PEM"))
    var tlsClientCa: String?

    @Flag(
        help: ArgumentHelp(
            "With --tls-client-ca: the client certificate's common name is the user name, and the certificate authenticates the client (Mosquitto's use_identity_as_username)."
        ))
    var tlsCertAsUsername = false

    @Option(
        help: ArgumentHelp(
            "Log format: json (one object per line), full or compact. Level from FOXMQ_LOG or RUST_LOG.",
            valueName: "FORMAT"))
    var log: LogFormat = .full

    @Option(
        help: ArgumentHelp(
            "Encrypt cluster traffic with TLS: this node's certificate (chain) for its address-book key (--secret-key-file is the TLS key). Every node of the cluster needs one.",
            valueName: "PEM"))
    var clusterCert: String?

    @Option(
        help: ArgumentHelp(
            "With --cluster-cert: accept peers whose certificates chain to these CA certificates. Without it (and without --cluster-accept-peer-with-cert), a peer's certificate is accepted when its key is the peer's address-book key.",
            valueName: "PEM"))
    var clusterRootCert: String?

    @Option(
        help: ArgumentHelp(
            "With --cluster-cert: accept a peer presenting this (self-signed) certificate; repeatable.",
            valueName: "PEM"))
    var clusterAcceptPeerWithCert: [String] = []

    @Option(
        help: ArgumentHelp(
            "Largest packet accepted from a client, in bytes (announced in CONNACK).", valueName: "BYTES"))
    var maxPacketSize: Int = 1_048_576

    @Option(help: ArgumentHelp("Open client connections at most.", valueName: "N"))
    var maxConnections: Int = 100_000

    @Option(
        help: ArgumentHelp(
            "Inbound QoS 1/2 messages a client may leave unacknowledged (Receive Maximum).", valueName: "N"))
    var receiveMaximum: UInt16 = 1024

    @Option(
        help: ArgumentHelp("Outbound QoS 1/2 messages unacknowledged per client, whatever it allows.", valueName: "N"))
    var maxInflight: Int = 1024

    @Option(help: ArgumentHelp("Messages queued per session beyond the in-flight window.", valueName: "N"))
    var maxQueuedMessages: Int = 10_000

    @Option(help: ArgumentHelp("Levels of a topic name or filter at most.", valueName: "N"))
    var maxTopicLevels: Int = 128

    @Option(help: ArgumentHelp("Subscriptions per client at most.", valueName: "N"))
    var maxSubscriptionsPerClient: Int = 1000

    @Option(help: ArgumentHelp("Topic aliases a client may define (Topic Alias Maximum).", valueName: "N"))
    var topicAliasMaximum: UInt16 = 1024

    @Option(
        help: ArgumentHelp(
            "Keep alive granted at most, in seconds (0 = whatever the client asks, also none). A 5.0 client asking for none or more gets this as Server Keep Alive, so no connection stays silent for ever (as Mosquitto's max_keepalive).",
            valueName: "SECONDS"))
    var maxKeepAlive: UInt16 = 65535

    @Option(help: ArgumentHelp("Seconds a new socket has to complete CONNECT.", valueName: "SECONDS"))
    var connectTimeout: Int = 10

    @Option(
        help: ArgumentHelp(
            "Bytes waiting to be written to a client above which its QoS 0 messages are dropped.",
            valueName: "BYTES"))
    var maxOutboundBuffer: Int = 2_097_152

    @Option(
        help: ArgumentHelp(
            "Bytes of client events taken but not yet on disk (in a cluster: not yet ordered) above which "
                + "clients are not read until the store catches up; 0 = 64 MiB (32 MiB in a cluster).",
            valueName: "BYTES"))
    var maxPendingBytes: Int = 0

    @Option(help: ArgumentHelp("Network threads (event loops); 0 = one per core.", valueName: "N"))
    var threads: Int = 0

    @Option(
        help: ArgumentHelp(
            "The node's store (LMDB: log, sessions, retained messages); default DIR/data.", valueName: "PATH"))
    var dataDir: String?

    @Option(
        help: ArgumentHelp(
            "sync: every acknowledgement waits for its batch to be synced to disk. none: no sync (a crash of the machine may lose acknowledged messages), for throwaway nodes and benchmarks.",
            valueName: "MODE"))
    var durability: Durability = .sync

    @Option(
        help: ArgumentHelp(
            "Also drop log records older than this many seconds (0 = keep by count only); never what recovery needs.",
            valueName: "SECONDS"))
    var logRetentionAge: UInt64 = 0

    @Flag(help: "Replay the log even though the previous start died while replaying it.")
    var retryReplay = false

    @Option(help: ArgumentHelp("Log records kept below the last checkpoint (foxdump, audits).", valueName: "N"))
    var logRetentionRecords: UInt64 = 1_000_000

    @Option(
        help: ArgumentHelp(
            "Log records after which the changed sessions and retained messages are written (a checkpoint); a restart replays at most this many.",
            valueName: "N"))
    var checkpointRecords: Int = DurableOrderer.Configuration().checkpointRecordCount

    @Option(
        help: ArgumentHelp("Milliseconds after which a checkpoint is written if anything changed.", valueName: "MS"))
    var checkpointInterval: UInt64 = DurableOrderer.Configuration().checkpointIntervalMillis

    @Option(help: ArgumentHelp("Retained messages kept at most (more -> 0x97).", valueName: "N"))
    var maxRetainedMessages: Int = 1_000_000

    @Option(help: ArgumentHelp("Bytes of retained messages (topics and payloads) kept at most.", valueName: "BYTES"))
    var maxRetainedBytes: Int = 1 << 30

    @Option(help: ArgumentHelp("Largest size the store's map may grow to (0 = the free disk).", valueName: "BYTES"))
    var maxStoreSize: Int = 0

    enum Durability: String, ExpressibleByArgument, CaseIterable {
        case sync, none
    }

    func validate() throws {
        _ = try HostPort(mqttAddr, option: "--mqtt-addr")
        _ = try HostPort(websocketsAddr, option: "--websockets-addr")
        _ = try HostPort(clusterAddr, option: "--cluster-addr")
        guard maxPacketSize >= 64 && maxPacketSize <= 268_435_460 else {
            throw ValidationError("--max-packet-size must be between 64 and 268435460 bytes.")
        }
        guard receiveMaximum >= 1 else { throw ValidationError("--receive-maximum must be at least 1.") }
        guard (1...65535).contains(maxInflight) else { throw ValidationError("--max-inflight must be 1...65535.") }
        guard maxQueuedMessages >= 0 else { throw ValidationError("--max-queued-messages must not be negative.") }
        guard maxTopicLevels >= 1 else { throw ValidationError("--max-topic-levels must be at least 1.") }
        guard maxSubscriptionsPerClient >= 1 else {
            throw ValidationError("--max-subscriptions-per-client must be at least 1.")
        }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1.") }
        guard connectTimeout >= 1 else { throw ValidationError("--connect-timeout must be at least 1 second.") }
        guard maxOutboundBuffer >= 4096 else { throw ValidationError("--max-outbound-buffer must be at least 4096.") }
        guard maxPendingBytes == 0 || maxPendingBytes >= 65536 else {
            throw ValidationError("--max-pending-bytes must be 0 (the default) or at least 65536.")
        }
        guard (0...1024).contains(threads) else { throw ValidationError("--threads must be 0...1024.") }
        guard checkpointRecords >= 1, checkpointInterval >= 1 else {
            throw ValidationError("--checkpoint-records and --checkpoint-interval must be at least 1.")
        }
        if mqttsAddr != nil || wssAddr != nil {
            guard tlsCert != nil && tlsKey != nil else {
                throw ValidationError("--mqtts-addr and --wss-addr need --tls-cert and --tls-key.")
            }
        } else if tlsCert != nil || tlsKey != nil || tlsClientCa != nil {
            throw ValidationError("--tls-cert, --tls-key and --tls-client-ca need --mqtts-addr or --wss-addr.")
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key go together.")
        }
        if tlsCertAsUsername && tlsClientCa == nil {
            throw ValidationError("--tls-cert-as-username needs --tls-client-ca (client certificates).")
        }
        if let mqttsAddr { _ = try HostPort(mqttsAddr, option: "--mqtts-addr") }
        if let metricsAddr { _ = try HostPort(metricsAddr, option: "--metrics-addr") }
        guard (0...86_400).contains(sysInterval) else { throw ValidationError("--sys-interval must be 0...86400.") }
        guard (0...86_400).contains(memoryTrimInterval) else {
            throw ValidationError("--memory-trim-interval must be 0...86400.")
        }
        if let wssAddr { _ = try HostPort(wssAddr, option: "--wss-addr") }
        if clusterCert == nil && (clusterRootCert != nil || !clusterAcceptPeerWithCert.isEmpty) {
            // Refused rather than ignored: a user who asked for TLS must not run without it.
            throw ValidationError(
                "--cluster-root-cert and --cluster-accept-peer-with-cert need --cluster-cert (this node's certificate)."
            )
        }
        guard (1...1000).contains(leaderTimeoutMillis) else {
            throw ValidationError("--leader-timeout-millis must be 1...1000.")
        }
        guard willFailoverSeconds >= 1 else { throw ValidationError("--will-failover-seconds must be at least 1.") }
        guard maxRetainedMessages >= 0, maxRetainedBytes >= 0, maxStoreSize >= 0 else {
            throw ValidationError(
                "--max-retained-messages, --max-retained-bytes and --max-store-size must not be negative.")
        }
    }

    func run() async throws {
        let level = FoxLogHandler.level(from: ProcessEnvironment.all())
        let format = log
        LoggingSystem.bootstrap { label in FoxLogHandler(label: label, format: format, logLevel: level) }
        let logger = Logger(label: "foxmq")

        let admin: AdminDatabase
        let directoryOfUsers: AdminDirectory
        do {
            try makeDirectory(directory)
            admin = try AdminDatabase.open(directory: directory)
            if let imported = admin.firstOpenImport { logger.notice("\(imported)") }
            directoryOfUsers = AdminDirectory(try admin.snapshot())
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(2)
        }
        let users = directoryOfUsers.current.userDirectory
        if users.isEmpty && !allowAnonymousLogin {
            logger.warning(
                "no users in \(admin.path) and anonymous login is off: every client will be refused. Add one with `foxmq user add` or pass --allow-anonymous-login."
            )
        }

        var configuration = NodeConfiguration()
        let mqtt = try HostPort(mqttAddr, option: "--mqtt-addr")
        configuration.mqttHost = mqtt.host
        configuration.mqttPort = mqtt.port
        if websockets {
            let webSocket = try HostPort(websocketsAddr, option: "--websockets-addr")
            configuration.webSocketHost = webSocket.host
            configuration.webSocketPort = webSocket.port
        }
        if let tlsCert, let tlsKey {
            do {
                let tls = try ClientTLS(
                    files: ClientTLS.Files(certificatePath: tlsCert, keyPath: tlsKey, clientCAPath: tlsClientCa))
                configuration.tls = tls
                if tls.notValidAfter < Int64(time(nil)) {
                    logger.warning(
                        "--tls-cert \(tlsCert) has expired: clients that check it will refuse the connection")
                }
            } catch {
                logger.critical("cannot start: \(error.description)")
                writeStandardError("foxmq: \(error.description)\n")
                throw ExitCode(2)
            }
            if let mqttsAddr {
                let secure = try HostPort(mqttsAddr, option: "--mqtts-addr")
                configuration.secureMQTTHost = secure.host
                configuration.secureMQTTPort = secure.port
            }
            if let wssAddr {
                let secure = try HostPort(wssAddr, option: "--wss-addr")
                configuration.secureWebSocketHost = secure.host
                configuration.secureWebSocketPort = secure.port
            }
        }
        configuration.systemTopicsIntervalSeconds = sysInterval
        configuration.memoryTrimIntervalSeconds = memoryTrimInterval
        configuration.softwareVersion = "foxmq \(FoxMQCommand.configuration.version)"
        // Before anything makes a metric: swift-metrics binds each to the factory it finds.
        let registry = PrometheusCollectorRegistry()
        if metricsAddr != nil {
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.durationHistogramBuckets = OrdererMetrics.durationBuckets
            factory.valueHistogramBuckets = OrdererMetrics.valueBuckets
            MetricsSystem.bootstrap(factory)
        }
        var limits = ConnectionLimits()
        limits.maximumPacketSizeBytes = maxPacketSize
        limits.connectionCountMax = maxConnections
        limits.receiveMaximum = receiveMaximum
        limits.topicAliasMaximum = topicAliasMaximum
        limits.keepAliveMaximumSeconds = maxKeepAlive == 0 ? nil : maxKeepAlive
        limits.connectTimeoutSeconds = connectTimeout
        limits.outboundBufferBytesMax = maxOutboundBuffer
        limits.topicLevelCountMax = maxTopicLevels
        limits.allowAnonymousLogin = allowAnonymousLogin
        limits.certificateAsUsername = tlsCertAsUsername
        configuration.connectionLimits = limits
        if threads > 0 { configuration.eventLoopThreadCount = threads }
        configuration.brokerLimits.inflightCountMax = maxInflight
        configuration.brokerLimits.queuedMessageCountMax = maxQueuedMessages
        configuration.brokerLimits.subscriptionCountMax = maxSubscriptionsPerClient
        configuration.brokerLimits.retainedMessageCountMax = maxRetainedMessages
        configuration.brokerLimits.retainedBytesMax = maxRetainedBytes
        configuration.brokerLimits.topicLevelCountMax = maxTopicLevels

        // Settings of the admin database win over the flags (foxmq config set).
        let flagLimits = configuration.brokerLimits
        let settled = BrokerSetting.limits(directoryOfUsers.current.settings, over: flagLimits)
        for problem in settled.problems { logger.warning("admin database setting ignored: \(problem)") }
        configuration.brokerLimits = settled.limits
        let storage: (node: NodeStorage, store: NodeStore)
        let mailbox = OrdererMailbox()
        do {
            storage = try openStorage(limits: configuration.brokerLimits, mailbox: mailbox, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(2)
        }
        let fatal = FatalStop()
        let node = try BrokerNode(
            configuration: configuration, authenticator: directoryOfUsers, logger: logger,
            storage: storage.node,
            onFatal: { reason in fatal.stop(reason, logger: logger) })
        var metrics: MetricsService?
        if let metricsAddr {
            let address = try HostPort(metricsAddr, option: "--metrics-addr")
            let endpoint = MetricsEndpoint(render: { registry.emitToBuffer() }, health: { node.health })
            metrics = MetricsService(endpoint: endpoint, host: address.host, port: address.port, logger: logger)
        }
        // Changes made with `foxmq user`/`foxmq acl` reach this node within a second; in a
        // cluster they are ordered, and reach every node.
        var background: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(
                service: AdminReloadService(
                    admin: admin, directory: directoryOfUsers, mailbox: mailbox, flagLimits: flagLimits, node: node,
                    logger: logger),
                serviceName: "admin-reload")
        ]
        // SIGHUP: the TLS certificate and key are read again; open connections keep theirs.
        // Trapped without TLS too: a reload signal must not stop the node.
        background.append(
            .init(service: HangupService(tls: configuration.tls, logger: logger), serviceName: "sighup"))
        let services = NodeServices.make(
            node: node, store: storage.store, metrics: metrics, background: background, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // A drain that hangs (a full disk) is cancelled; the services still stop in order.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(60)
        let group = ServiceGroup(configuration: groupConfiguration)
        fatal.group = group
        logger.info(
            "foxmq starting",
            metadata: [
                "directory": "\(directory)", "users": "\(users.count)", "anonymous": "\(allowAnonymousLogin)",
                "durability": "\(durability.rawValue)",
            ])
        do {
            try await group.run()
        } catch {
            if let reason = fatal.reason {
                logger.critical("stopped: \(reason)")
                throw ExitCode(3)
            }
            logger.critical("cannot start or run: \(error)")
            writeStandardError("foxmq: \(error)\n")
            throw ExitCode(2)
        }
        if fatal.reason != nil { throw ExitCode(3) }
        logger.info("shut down")
    }
}

/// Reloads users, access rules and settings from the admin database (every second), or, in a
/// cluster, turns the operator's changes into ordered entries and copies the ordered ones back
/// (every 500 ms). Stops at the shutdown.
struct AdminReloadService: Service {
    let admin: AdminDatabase
    let directory: AdminDirectory
    let mailbox: OrdererMailbox
    let flagLimits: BrokerLimits
    let node: BrokerNode
    let logger: Logger

    func run() async throws {
        let clusterAdmin = mailbox.current.map { orderer in
            ClusterAdminSync(
                me: UInt32(orderer.me), database: admin, directory: directory, orderer: orderer,
                clock: SystemClock(), logger: logger)
        }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(nanoseconds: clusterAdmin == nil ? 1_000_000_000 : 500_000_000)
                if let clusterAdmin {
                    if let settings = clusterAdmin.poll() { apply(settings) }
                    continue
                }
                do {
                    if let changed = try directory.reload(from: admin) {
                        logger.info(
                            "admin database changed: users and access rules reloaded",
                            metadata: ["users": "\(changed.users.count)", "rules": "\(changed.rules.rules.count)"])
                        apply(changed.settings)
                    }
                } catch {
                    logger.warning(
                        "admin database reload failed; the previous users and rules stay",
                        metadata: ["error": "\(error)"])
                }
            }
        }
    }

    private func apply(_ settings: [String: String]) {
        let settled = BrokerSetting.limits(settings, over: flagLimits)
        for problem in settled.problems { logger.warning("admin database setting ignored: \(problem)") }
        if node.reconfigure(settled.limits) {
            logger.notice("settings changed: the new limits are ordered and take effect now")
        }
    }
}

/// SIGHUP reads the client TLS certificate and key again; open connections keep theirs. Users,
/// access rules and settings need no signal: the admin database is watched.
struct HangupService: Service {
    let tls: ClientTLS?
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            guard let tls else {
                logger.notice("SIGHUP: nothing to reload (no TLS listener; the admin database is watched)")
                continue
            }
            do {
                try tls.reload()
                logger.notice("SIGHUP: TLS certificate and key read again; new connections use them")
            } catch {
                logger.error("SIGHUP: TLS files not reloaded, the previous certificate stays: \(error)")
            }
        }
    }
}

extension RunCommand {
    /// Opens the store, recovers the state (rows plus log replay) and bumps the incarnation,
    /// all before any listener opens.
    func openStorage(
        limits: BrokerLimits, mailbox: OrdererMailbox, logger: Logger
    ) throws -> (node: NodeStorage, store: NodeStore) {
        // The address book, first: a malformed one, or a key not in it, stops the start.
        let cluster = try ClusterConfiguration.load(directory: directory, secretKeyFile: secretKeyFile)
        let path = dataDir ?? directory + "/data"
        var options = LMDBOptions()
        options.sync = durability == .sync
        if maxStoreSize > 0 { options.mapSizeMaxBytes = maxStoreSize }
        if durability == .none {
            logger.warning(
                "durability none: the store is not synced; a crash of the machine may lose acknowledged messages. For throwaway nodes and benchmarks only."
            )
            writeStandardError("foxmq: --durability none: acknowledged messages may be lost in a crash\n")
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let marker = ReplayMarker(dataDirectory: path)
        if let range = marker.pending() {
            if retryReplay {
                logger.warning("replaying log records \(range) again, as asked (--retry-replay)")
                marker.clear()
            } else {
                throw ValidationError(
                    "the previous start stopped while replaying log records \(range) of \(path): one of them fails to apply. Inspect them with `foxdump log \(directory) --from \(range.split(separator: ".").first ?? "")`; start with --retry-replay to try once more (after an upgrade that fixes it), or restore a snapshot"
                )
            }
        }
        CrashReport.install()
        let store = try NodeStore(directory: path, options: options)
        let recovered = try store.recover(defaultLimits: limits) { line in
            logger.info("recovering: \(line)", metadata: ["store": "\(path)"])
        }
        if let cluster, !cluster.isSingleNode {
            let node = try clusterStorage(
                cluster: cluster, store: store, recovered: recovered, mailbox: mailbox, logger: logger)
            return (node, store)
        }
        if try store.appliedCommitIndex() > 0 {
            throw ArgumentParser.ValidationError(
                "\(path) holds the store of a cluster member (\(try store.appliedCommitIndex()) commits) but \(directory) has no address book of several nodes; start it with its cluster's address-book.toml and key, or from an empty data directory"
            )
        }
        let incarnation = try store.nextIncarnation()
        let elapsedMillis = (DispatchTime.now().uptimeNanoseconds - started) / 1_000_000
        logger.info(
            "store open",
            metadata: [
                "store": "\(path)", "durability": "\(durability.rawValue)", "incarnation": "\(incarnation)",
                "sessions": "\(recovered.state.sessionCount)", "retained": "\(recovered.state.retainedMessageCount)",
                "checkpointSessionRows": "\(recovered.sessionRowCount)",
                "checkpoint": "\(recovered.checkpointIndex)", "replayed": "\(recovered.replayedCount)",
                "lastIndex": "\(recovered.lastIndex)", "millis": "\(elapsedMillis)",
            ])
        var ordererConfiguration = DurableOrderer.Configuration()
        ordererConfiguration.logRetentionRecords = logRetentionRecords
        if logRetentionAge > 0 {
            ordererConfiguration.logRetentionMillis = logRetentionAge.multipliedReportingOverflow(by: 1000).partialValue
        }
        ordererConfiguration.checkpointRecordCount = checkpointRecords
        ordererConfiguration.checkpointIntervalMillis = checkpointInterval
        if maxPendingBytes > 0 { ordererConfiguration.pendingBytesMax = maxPendingBytes }
        let node = NodeStorage.durable(
            store: store, recovered: RecoveredStateBox(recovered), incarnation: incarnation,
            configuration: ordererConfiguration)
        return (node, store)
    }
}

/// `HOST:PORT` of a listener option, with IPv6 as `[::1]:1883`.
struct HostPort {
    var host: String
    var port: Int

    init(_ text: String, option: String) throws {
        guard let colon = text.lastIndex(of: ":") else {
            throw ValidationError("\(option) must be HOST:PORT, got '\(text)'.")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(option) must be HOST:PORT with a port of 0...65535, got '\(text)'.")
        }
        self.host = host
        self.port = port
    }

    /// Whether an address-book address is on this machine's loopback (a dev cluster), where
    /// unencrypted traffic is no exposure.
    static func isLoopback(_ address: String) -> Bool {
        guard let parsed = try? HostPort(address, option: "address") else { return false }
        return parsed.host.hasPrefix("127.") || parsed.host == "::1" || parsed.host == "localhost"
    }
}

enum ProcessEnvironment {
    static func all() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

private func makeDirectory(_ path: String) throws {
    var info = stat()
    if stat(path, &info) == 0 {
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ValidationError("\(path) exists and is not a directory.")
        }
        return
    }
    guard mkdir(path, 0o700) == 0 else {
        throw ValidationError("cannot create the configuration directory \(path): \(String(cString: strerror(errno)))")
    }
}

/// Stops the node when its store fails for good: nothing more is acknowledged, clients are
/// told (5.0: DISCONNECT 0x8B) and closed through the service group's shutdown, and the process
/// exits with code 3 so that a supervisor restarts it and recovery starts again from what is on
/// disk.
final class FatalStop: @unchecked Sendable {
    private let stopped = Mutex<String?>(nil)
    var group: ServiceGroup?

    var reason: String? { stopped.withLock { $0 } }

    func stop(_ reason: String, logger: Logger) {
        let first = stopped.withLock { stopped in
            defer { if stopped == nil { stopped = reason } }
            return stopped == nil
        }
        guard first else { return }
        logger.critical("stopping: \(reason); a restart recovers from the store")
        // If closing the clients hangs, the process still ends.
        DispatchQueue.global().asyncAfter(deadline: .now() + 5) { Glibc.exit(3) }
        let group = self.group
        Task.detached { await group?.triggerGracefulShutdown() }
    }
}
