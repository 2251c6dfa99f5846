/// The result of a run: printed as a summary, or as JSON with `--json`.
public struct Report: Codable, Sendable {
    public struct Settings: Codable, Sendable {
        public var mode: String
        public var broker: String
        public var protocolVersion: String
        public var qos: Int
        public var subscriberQoS: Int
        public var publishers: Int
        public var subscribers: Int
        public var payloadBytes: Int
        public var topicMode: String
        public var subscriberFilter: String
        public var ratePerPublisher: Double?
        public var window: Int
        public var endToEndWindow: Int
        public var count: UInt64?
        public var durationSeconds: Double?
        public var fairnessThresholdNanos: UInt64 = 5_000_000

        enum CodingKeys: String, CodingKey {
            case mode, broker, qos, publishers, subscribers, window, count
            case protocolVersion = "protocol_version"
            case subscriberQoS = "subscriber_qos"
            case payloadBytes = "payload_bytes"
            case topicMode = "topic_mode"
            case subscriberFilter = "subscriber_filter"
            case endToEndWindow = "e2e_window"
            case ratePerPublisher = "rate_per_publisher"
            case durationSeconds = "duration_seconds"
            case fairnessThresholdNanos = "fairness_threshold_ns"
        }
    }

    public struct Retained: Codable, Sendable {
        public var topics: Int
        public var publishSeconds: Double
        /// From SUBSCRIBE sent to the last of the retained messages received; nil if they did not all arrive.
        public var subscribeToAllSeconds: Double?
        public var received: UInt64
        public var messagesPerSecond: Double?

        enum CodingKeys: String, CodingKey {
            case topics, received
            case publishSeconds = "publish_seconds"
            case subscribeToAllSeconds = "subscribe_to_all_seconds"
            case messagesPerSecond = "messages_per_second"
        }
    }

    public struct Idle: Codable, Sendable {
        public var requested: Int
        public var connected: Int
        public var connectSeconds: Double
        public var holdSeconds: Double
        /// Still connected at the end of the hold.
        public var survived: Int
        public var bytesPerConnection: Double?

        enum CodingKeys: String, CodingKey {
            case requested, connected, survived
            case connectSeconds = "connect_seconds"
            case holdSeconds = "hold_seconds"
            case bytesPerConnection = "bytes_per_connection"
        }
    }

    public var settings: Settings
    public var sent: UInt64 = 0
    /// Messages published per second, all publishers, over the publishing time.
    public var sentPerSecond: Double = 0
    public var publishSeconds: Double = 0
    public var delivered: UInt64 = 0
    /// Messages received per second, all subscribers, from the first publish to the last delivery.
    public var deliveredPerSecond: Double = 0
    public var deliverySeconds: Double = 0
    public var delivery = DeliveryCounts()
    /// Received payloads that were not foxbench's (or from an unknown publisher).
    public var foreign: UInt64 = 0
    public var acked: UInt64 = 0
    public var unacked: UInt64 = 0
    public var ackErrors: UInt64 = 0
    public var disconnects: UInt64 = 0
    public var latencyMicroseconds: LatencySummary?
    public var ackLatencyMicroseconds: LatencySummary?
    /// Deliveries overtaken by a message of another publisher sent more than the fairness
    /// threshold later, summed over the subscribers.
    public var fairnessInversions: UInt64 = 0
    public var retained: Retained?
    public var idle: Idle?
    public var brokerRSSKilobytesBefore: Int?
    public var brokerRSSKilobytesAfter: Int?

    enum CodingKeys: String, CodingKey {
        case settings, sent, delivered, delivery, foreign, acked, unacked, disconnects, retained, idle
        case sentPerSecond = "sent_per_second"
        case publishSeconds = "publish_seconds"
        case deliveredPerSecond = "delivered_per_second"
        case deliverySeconds = "delivery_seconds"
        case ackErrors = "ack_errors"
        case latencyMicroseconds = "latency_us"
        case ackLatencyMicroseconds = "ack_latency_us"
        case fairnessInversions = "fairness_inversions"
        case brokerRSSKilobytesBefore = "broker_rss_kb_before"
        case brokerRSSKilobytesAfter = "broker_rss_kb_after"
    }
}

extension Report {
    /// The human-readable summary.
    public var summary: String {
        var lines: [String] = []
        let s = settings
        lines.append(
            "foxbench \(s.mode) against \(s.broker), MQTT \(s.protocolVersion)"
                + (s.mode == "idle"
                    ? "" : ", QoS \(s.qos)\(s.subscriberQoS != s.qos ? " (subscribers \(s.subscriberQoS))" : "")"))
        switch s.mode {
        case "idle":
            if let idle {
                lines.append(
                    "  connections   \(idle.connected) of \(idle.requested) in \(fmt(idle.connectSeconds)) s, \(idle.survived) still up after \(fmt(idle.holdSeconds)) s"
                )
                if let b = brokerRSSKilobytesBefore, let a = brokerRSSKilobytesAfter {
                    lines.append(
                        "  broker RSS    \(b) kB -> \(a) kB"
                            + (idle.bytesPerConnection.map { ", \(fmt($0, 0)) bytes per connection" } ?? ""))
                }
            }
        case "retained":
            if let r = retained {
                lines.append("  published     \(r.topics) retained topics in \(fmt(r.publishSeconds)) s")
                if let t = r.subscribeToAllSeconds {
                    lines.append(
                        "  # subscribe   all \(r.received) received in \(fmt(t)) s (\(fmt(r.messagesPerSecond ?? 0, 0)) msg/s)"
                    )
                } else {
                    lines.append("  # subscribe   only \(r.received) of \(r.topics) received (timed out)")
                }
            }
        default:
            lines.append(
                "  clients       \(s.publishers) publishers, \(s.subscribers) subscribers, \(s.payloadBytes)-byte payloads, topics \(s.topicMode) (\(s.subscriberFilter))"
            )
            lines.append(
                "  offered       "
                    + (s.ratePerPublisher.map { "\(fmt($0, 0)) msg/s per publisher" } ?? "as fast as possible ("
                        + (s.qos > 0 ? "window \(s.window), " : "") + "end-to-end window \(s.endToEndWindow))"))
            lines.append("  sent          \(sent) in \(fmt(publishSeconds)) s = \(fmt(sentPerSecond, 0)) msg/s")
            lines.append(
                "  delivered     \(delivered) in \(fmt(deliverySeconds)) s = \(fmt(deliveredPerSecond, 0)) msg/s")
            lines.append(
                "  expected      \(delivery.expected): lost \(delivery.lost), duplicated \(delivery.duplicates), out of order \(delivery.orderViolations)"
                    + (foreign > 0 ? ", foreign \(foreign)" : ""))
            if let l = latencyMicroseconds, l.count > 0 {
                lines.append(
                    "  latency (ms)  p50 \(ms(l.p50))  p90 \(ms(l.p90))  p99 \(ms(l.p99))  p99.9 \(ms(l.p999))  max \(ms(l.max))"
                )
            }
            if fairnessInversions > 0 || s.publishers > 1 {
                lines.append(
                    "  fairness      \(fairnessInversions) deliveries overtaken by another publisher's message sent more than \(fmt(Double(s.fairnessThresholdNanos) / 1e6, 1)) ms later"
                )
            }
            if s.qos > 0, let a = ackLatencyMicroseconds, a.count > 0 {
                lines.append(
                    "  \(s.qos == 1 ? "PUBACK " : "PUBCOMP") (ms)  p50 \(ms(a.p50))  p90 \(ms(a.p90))  p99 \(ms(a.p99))  p99.9 \(ms(a.p999))  max \(ms(a.max))"
                )
            }
            if unacked > 0 || ackErrors > 0 || disconnects > 0 {
                lines.append(
                    "  problems      unacknowledged \(unacked), error acks \(ackErrors), disconnects \(disconnects)")
            }
            if let b = brokerRSSKilobytesBefore, let a = brokerRSSKilobytesAfter {
                lines.append("  broker RSS    \(b) kB -> \(a) kB")
            }
        }
        return lines.joined(separator: "\n")
    }
}

func fmt(_ value: Double, _ decimals: Int = 2) -> String {
    guard value.isFinite else { return "\(value)" }
    var factor = 1.0
    for _ in 0..<decimals { factor *= 10 }
    let rounded = (value * factor).rounded() / factor
    if decimals == 0 { return String(Int64(rounded)) }
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let have = text.distance(from: dot, to: text.endIndex) - 1
        if have < decimals { text += String(repeating: "0", count: decimals - have) }
    }
    return text
}

func ms(_ microseconds: UInt64) -> String { fmt(Double(microseconds) / 1000, 3) }
