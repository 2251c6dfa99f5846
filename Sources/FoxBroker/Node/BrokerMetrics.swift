import Atomics
import CoreMetrics
import FoxMQTT

/// What a node counts, as swift-metrics counters, gauges and timers (the binary chooses the
/// backend: Prometheus on `--metrics-addr`; without one they cost a no-op call), plus the few
/// totals `$SYS` publishes, kept readable in atomics.
///
/// Names follow Prometheus conventions: `foxmq_` prefix, `_total` on counters, base units
/// (bytes, seconds). Every label set is made here, once: nothing on a hot path builds a name.
public final class BrokerMetrics: Sendable {
    // Connections.
    let connectionsOpen: Meter
    let connectionsTotal: Counter
    private let connectionsRefused: [ReasonCode: Counter]
    private let connectionsRefusedOther: Counter
    private let tlsHandshakeRefused: Counter
    // Packets, bytes and messages, by direction.
    private let packetsReceived: [Counter]
    private let packetsSent: [Counter]
    private let bytesReceived: [Counter]
    private let bytesSent: [Counter]
    private let messagesReceived: [Counter]
    private let messagesSent: [Counter]
    // Dropped messages, by reason.
    let droppedSlowSubscriber: Counter
    let droppedUnauthorized: Counter
    let droppedQueueFull: Counter
    let droppedExpired: Counter
    /// Events the orderer answered busy (its pending bytes at `--max-pending-bytes`): each
    /// held its connection unread until the orderer took it.
    let ordererBusy: Counter
    // The state, sampled.
    let retainedMessages: Gauge
    let sessionsConnected: Gauge
    let sessionsOffline: Gauge
    let messagesInflight: Gauge
    let messagesQueued: Gauge
    let subscriptions: Gauge
    // The orderer and the cluster, sampled.
    let peersConnected: Gauge
    let commitIndex: Gauge
    let logIndex: Gauge
    let logEntries: Gauge
    let logBytes: Gauge
    // The store, sampled.
    let storeUsedBytes: Gauge
    let storeMapBytes: Gauge

    /// Totals for `$SYS` (swift-metrics handlers cannot be read back).
    let totals = Totals()

    final class Totals: Sendable {
        let messagesReceived = ManagedAtomic<UInt64>(0)
        let messagesSent = ManagedAtomic<UInt64>(0)
        let bytesReceived = ManagedAtomic<UInt64>(0)
        let bytesSent = ManagedAtomic<UInt64>(0)
        let connectionsOpen = ManagedAtomic<Int>(0)
        let connectionsTotal = ManagedAtomic<UInt64>(0)
    }

    public init() {
        connectionsOpen = Meter(label: "foxmq_connections")
        connectionsTotal = Counter(label: "foxmq_connections_total")
        var refused: [ReasonCode: Counter] = [:]
        for (code, name) in Self.refusalNames {
            refused[code] = Counter(label: "foxmq_connections_refused_total", dimensions: [("reason", name)])
        }
        connectionsRefused = refused
        connectionsRefusedOther = Counter(label: "foxmq_connections_refused_total", dimensions: [("reason", "other")])
        tlsHandshakeRefused = Counter(
            label: "foxmq_connections_refused_total", dimensions: [("reason", "tls_handshake")])
        func byType(_ name: String) -> [Counter] {
            (0..<16).map { raw in
                Counter(label: name, dimensions: [("type", Self.packetTypeName(UInt8(raw)))])
            }
        }
        packetsReceived = byType("foxmq_packets_received_total")
        packetsSent = byType("foxmq_packets_sent_total")
        bytesReceived = byType("foxmq_bytes_received_total")
        bytesSent = byType("foxmq_bytes_sent_total")
        messagesReceived = (0..<3).map {
            Counter(label: "foxmq_messages_received_total", dimensions: [("qos", "\($0)")])
        }
        messagesSent = (0..<3).map { Counter(label: "foxmq_messages_sent_total", dimensions: [("qos", "\($0)")]) }
        droppedSlowSubscriber = Counter(
            label: "foxmq_messages_dropped_total", dimensions: [("reason", "slow_subscriber")])
        droppedUnauthorized = Counter(label: "foxmq_messages_dropped_total", dimensions: [("reason", "unauthorized")])
        droppedQueueFull = Counter(label: "foxmq_messages_dropped_total", dimensions: [("reason", "queue_full")])
        droppedExpired = Counter(label: "foxmq_messages_dropped_total", dimensions: [("reason", "expired")])
        ordererBusy = Counter(label: "foxmq_orderer_busy_total")
        retainedMessages = Gauge(label: "foxmq_retained_messages")
        sessionsConnected = Gauge(label: "foxmq_sessions", dimensions: [("state", "connected")])
        sessionsOffline = Gauge(label: "foxmq_sessions", dimensions: [("state", "offline")])
        messagesInflight = Gauge(label: "foxmq_messages_inflight")
        messagesQueued = Gauge(label: "foxmq_messages_queued")
        subscriptions = Gauge(label: "foxmq_subscriptions")
        peersConnected = Gauge(label: "foxmq_cluster_peers_connected")
        commitIndex = Gauge(label: "foxmq_consensus_applied_commit")
        logIndex = Gauge(label: "foxmq_log_durable_index")
        logEntries = Gauge(label: "foxmq_log_entries")
        logBytes = Gauge(label: "foxmq_log_bytes")
        storeUsedBytes = Gauge(label: "foxmq_store_used_bytes")
        storeMapBytes = Gauge(label: "foxmq_store_map_bytes")
    }

    static let refusalNames: [(ReasonCode, String)] = [
        (.notAuthorized, "not_authorized"), (.badUserNameOrPassword, "bad_credentials"),
        (.clientIdentifierNotValid, "client_identifier_not_valid"),
        (.unsupportedProtocolVersion, "unsupported_protocol_version"), (.serverUnavailable, "server_unavailable"),
        (.serverBusy, "server_busy"), (.quotaExceeded, "quota_exceeded"), (.protocolError, "protocol_error"),
        (.malformedPacket, "malformed_packet"), (.badAuthenticationMethod, "bad_authentication_method"),
        (.packetTooLarge, "packet_too_large"), (.topicNameInvalid, "topic_name_invalid"),
    ]

    static func packetTypeName(_ raw: UInt8) -> String {
        PacketType(rawValue: raw).map { "\($0)".lowercased() } ?? "reserved"
    }

    // MARK: Recording (event loops)

    func connectionOpened() {
        connectionsOpen.increment()
        connectionsTotal.increment()
        totals.connectionsOpen.wrappingIncrement(ordering: .relaxed)
        totals.connectionsTotal.wrappingIncrement(ordering: .relaxed)
    }

    func connectionClosed() {
        connectionsOpen.decrement()
        totals.connectionsOpen.wrappingDecrement(ordering: .relaxed)
    }

    /// A connection refused before its session: a failing CONNACK, the connection limit, or
    /// (`tls_handshake`) a TLS handshake that failed.
    func connectionRefused(_ reasonCode: ReasonCode) {
        (connectionsRefused[reasonCode] ?? connectionsRefusedOther).increment()
    }

    func tlsHandshakeFailed() {
        tlsHandshakeRefused.increment()
    }

    /// Bytes read from a client, whole packets or not (`$SYS/broker/bytes/received`).
    func received(bytes: Int) {
        totals.bytesReceived.wrappingIncrement(by: UInt64(bytes), ordering: .relaxed)
    }

    /// Bytes written to a client (`$SYS/broker/bytes/sent`).
    func sent(bytes: Int) {
        totals.bytesSent.wrappingIncrement(by: UInt64(bytes), ordering: .relaxed)
    }

    /// A packet decoded from `bytes` bytes (its fixed header included).
    func received(_ packet: Packet, bytes: Int) {
        let type = Int(packet.packetType.rawValue & 0x0F)
        packetsReceived[type].increment()
        bytesReceived[type].increment(by: Int64(bytes))
        if case .publish(let publish) = packet {
            messagesReceived[Int(publish.qos.rawValue)].increment()
            totals.messagesReceived.wrappingIncrement(ordering: .relaxed)
        }
    }

    /// A packet encoded to `bytes` bytes.
    func sent(_ packet: Packet, bytes: Int) {
        let type = Int(packet.packetType.rawValue & 0x0F)
        packetsSent[type].increment()
        bytesSent[type].increment(by: Int64(bytes))
        switch packet {
        case .publish(let publish):
            messagesSent[Int(publish.qos.rawValue)].increment()
            totals.messagesSent.wrappingIncrement(ordering: .relaxed)
        case .connAck(let connAck) where connAck.reasonCode.isFailure:
            connectionRefused(connAck.reasonCode)
        default:
            break
        }
    }
}

/// What an orderer measures: events per batch (durable) or per commit (cluster), the time to
/// apply them, the store's write transaction with its sync, and, in a cluster, how long this
/// node's own entries take from submission to their applied commit.
public struct OrdererMetrics: Sendable {
    /// `foxmq_orderer_batch_events`: events written in one store transaction (durable), or
    /// applied from one commit (cluster).
    let batchEvents: Recorder
    /// `foxmq_orderer_apply_seconds`: the time to apply one batch or one commit to the state.
    let applySeconds: Timer
    /// `foxmq_store_write_seconds`: one write transaction, its sync included.
    let storeWriteSeconds: Timer
    /// `foxmq_store_sync_seconds`: the commit of that transaction, where LMDB writes the pages
    /// and syncs them (fdatasync) before and after the meta page.
    let storeSyncSeconds: Timer
    /// `foxmq_consensus_commit_latency_seconds`: from submitting an entry to applying the
    /// commit that holds it (this node's entries only).
    let commitLatencySeconds: Timer

    /// Histogram buckets for these metrics, for the binary's Prometheus factory (its defaults
    /// start at 5 ms and at 5 events: too coarse for an apply or a small batch).
    public static let durationBuckets: [String: [Duration]] = [
        "foxmq_orderer_apply_seconds": [
            .microseconds(10), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
            .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100),
        ],
        "foxmq_store_write_seconds": storeBuckets,
        "foxmq_store_sync_seconds": storeBuckets,
        "foxmq_consensus_commit_latency_seconds": [
            .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5),
        ],
    ]
    private static let storeBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .seconds(1),
    ]
    public static let valueBuckets: [String: [Double]] = [
        "foxmq_orderer_batch_events": [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]
    ]

    public init() {
        batchEvents = Recorder(label: "foxmq_orderer_batch_events")
        applySeconds = Timer(label: "foxmq_orderer_apply_seconds")
        storeWriteSeconds = Timer(label: "foxmq_store_write_seconds")
        storeSyncSeconds = Timer(label: "foxmq_store_sync_seconds")
        commitLatencySeconds = Timer(label: "foxmq_consensus_commit_latency_seconds")
    }
}
