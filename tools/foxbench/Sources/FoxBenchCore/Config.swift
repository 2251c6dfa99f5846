import FoxMQTT

/// Everything a run needs; built by the command line, validated there.
public struct BenchConfig: Sendable {
    public enum Mode: String, Sendable, Codable {
        /// Publishers and subscribers exchanging stamped messages.
        case pubsub
        /// Publish N retained messages, then time a `#` subscription receiving them all.
        case retained
        /// Open connections that only CONNECT, and hold them.
        case idle
    }

    public var mode: Mode = .pubsub
    public var host = "127.0.0.1"
    public var port = 1883
    /// More brokers (the nodes of a cluster): connection i goes to broker i modulo the count,
    /// the first being `host:port`, so publishers and subscribers spread over the nodes.
    public var moreBrokers: [(host: String, port: Int)] = []
    public var version: ProtocolVersion = .v311
    public var username: String?
    public var password: String?
    public var keepAliveSeconds: UInt16 = 60
    public var clientIDPrefix = "foxbench"

    public var publishers = 1
    public var subscribers = 1
    public var qos: QoS = .atMostOnce
    /// The QoS subscribers ask for; nil: the same as `qos`.
    public var subscriberQoS: QoS?
    public var payloadSize = 64
    public var topics = TopicPlan(prefix: "bench", mode: .single, publishers: 1)
    /// Offered rate per publisher in messages per second; nil: as fast as the broker allows.
    public var ratePerPublisher: Double?
    /// Unacknowledged QoS 1/2 messages per publisher (capped by the broker's Receive Maximum).
    public var window = 64
    /// QoS 0 with no rate: stop writing while this many bytes wait in the publisher's outbound
    /// buffer (the channel's high write watermark).
    public var outstandingBytes = 64 * 1024
    /// Fairness: a delivery after a message of another publisher sent more than this later
    /// counts as an inversion (publishers share this process's clock).
    public var fairnessThresholdNanos: UInt64 = 5_000_000
    /// Without --rate: deliveries outstanding (messages sent times the subscribers that should
    /// get them, not yet received) at most, all publishers together (each gets an equal share; 0: no such bound, only the QoS 1/2 window and the QoS 0 write buffer). Keeps a broker
    /// that buffers without limit from turning the run into a measure of its backlog.
    public var endToEndWindow = 2000
    /// Messages per publisher, or nil to run for `durationSeconds`.
    public var count: UInt64?
    public var durationSeconds: Double = 10
    /// After publishing: how long to wait for acks and deliveries that stopped coming.
    public var drainSeconds: Double = 3

    /// Connections opened per second (nil: as fast as `connectConcurrency` allows).
    public var connectRate: Double?
    public var connectConcurrency = 128

    /// Retained storm: how many retained topics to publish.
    public var retainedCount = 100_000
    /// Idle mode: connections to open, and how long to hold them once all are up.
    public var idleConnections = 0
    public var holdSeconds: Double = 10

    /// Read this process's VmRSS before and after (the broker's, when on this machine).
    public var brokerPID: Int32?
    public var progress = true

    public init() {}

    public var connectionTimeoutSeconds: Int64 = 10
}
