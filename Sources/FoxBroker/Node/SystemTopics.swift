import Foundation
import FoxBrokerCore
import NIOCore

/// The `$SYS` tree of one node, in Mosquitto's layout where a name exists there
/// (`$SYS/broker/version`, `uptime`, `clients/connected`, `messages/received`, `load/...`): the
/// topics and payloads to publish now, only those whose value changed since the last round.
/// A cluster member publishes under `$SYS/nodes/N/broker/...`, so that every node's values sit
/// side by side in the one ordered tree.
struct SystemTopics {
    /// What one round reads.
    struct Sample {
        var uptimeSeconds: Int
        var clientsConnected: Int
        var sessions: Int
        var subscriptions: Int
        var retained: Int
        var inflight: Int
        var queued: Int
        var messagesReceived: UInt64
        var messagesSent: UInt64
        var bytesReceived: UInt64
        var bytesSent: UInt64
    }

    let prefix: String
    let version: String
    private var published: [String: String] = [:]
    private var previous: (sample: Sample, seconds: Double)?
    /// Per-minute rates, averaged over about a minute (as Mosquitto's `load/.../1min`).
    private var load: [String: Double] = [:]

    init(node: UInt32?, version: String) {
        prefix = node.map { "$SYS/nodes/\($0)/broker/" } ?? "$SYS/broker/"
        self.version = version
    }

    /// The messages of this round: `(topic, payload)`, in a fixed order.
    mutating func round(_ sample: Sample, atSeconds seconds: Double) -> [(String, ByteBuffer)] {
        var values: [(String, String)] = [
            ("version", version),
            ("uptime", "\(sample.uptimeSeconds) seconds"),
            ("clients/connected", "\(sample.clientsConnected)"),
            ("clients/total", "\(sample.sessions)"),
            ("subscriptions/count", "\(sample.subscriptions)"),
            ("retained messages/count", "\(sample.retained)"),
            ("messages/inflight", "\(sample.inflight)"),
            ("messages/stored", "\(sample.queued)"),
            ("messages/received", "\(sample.messagesReceived)"),
            ("messages/sent", "\(sample.messagesSent)"),
            ("bytes/received", "\(sample.bytesReceived)"),
            ("bytes/sent", "\(sample.bytesSent)"),
        ]
        if let previous, seconds > previous.seconds {
            let elapsed = seconds - previous.seconds
            let weight = 1 - exp(-elapsed / 60)
            func average(_ name: String, _ now: UInt64, _ before: UInt64) {
                let perMinute = Double(now &- before) / elapsed * 60
                let averaged = load[name].map { $0 + weight * (perMinute - $0) } ?? perMinute
                load[name] = averaged
                values.append(("load/\(name)/1min", String(format: "%.2f", averaged)))
            }
            average("messages/received", sample.messagesReceived, previous.sample.messagesReceived)
            average("messages/sent", sample.messagesSent, previous.sample.messagesSent)
            average("bytes/received", sample.bytesReceived, previous.sample.bytesReceived)
            average("bytes/sent", sample.bytesSent, previous.sample.bytesSent)
        }
        previous = (sample, seconds)
        var out: [(String, ByteBuffer)] = []
        for (name, value) in values where published[name] != value {
            published[name] = value
            out.append((prefix + name, ByteBuffer(string: value)))
        }
        return out
    }
}
