import NIOCore
import Testing

@testable import FoxBroker

/// The `$SYS` rounds: Mosquitto's names, only changed values, load averages.
@Suite struct SystemTopicsTests {
    static func sample(received: UInt64, uptime: Int = 10) -> SystemTopics.Sample {
        SystemTopics.Sample(
            uptimeSeconds: uptime, clientsConnected: 2, sessions: 3, subscriptions: 4, retained: 5, inflight: 6,
            queued: 7, messagesReceived: received, messagesSent: 0, bytesReceived: 0, bytesSent: 0)
    }

    // Goal: the first round publishes every value under $SYS/broker/ (a single node) or
    // $SYS/nodes/N/broker/ (a cluster member); the next only what changed, with the 1-minute
    // load average of the rate between them.
    @Test func roundsPublishWhatChanged() {
        var single = SystemTopics(node: nil, version: "foxmq 9")
        let first = Dictionary(
            uniqueKeysWithValues: single.round(Self.sample(received: 0), atSeconds: 0).map {
                ($0.0, String(buffer: $0.1))
            })
        #expect(first["$SYS/broker/version"] == "foxmq 9")
        #expect(first["$SYS/broker/uptime"] == "10 seconds")
        #expect(first["$SYS/broker/clients/connected"] == "2")
        #expect(first["$SYS/broker/retained messages/count"] == "5")
        #expect(first["$SYS/broker/messages/received"] == "0")
        #expect(first.keys.allSatisfy { !$0.contains("load/") }, "no rate before two samples")

        let second = single.round(Self.sample(received: 600, uptime: 70), atSeconds: 60).map {
            ($0.0, String(buffer: $0.1))
        }
        let names = Set(second.map(\.0))
        #expect(!names.contains("$SYS/broker/version"), "unchanged values are not published again")
        #expect(names.contains("$SYS/broker/uptime"))
        // 600 messages in 60 s: 600 per minute.
        #expect(second.first { $0.0 == "$SYS/broker/load/messages/received/1min" }?.1 == "600.00")

        var member = SystemTopics(node: 3, version: "foxmq 9")
        #expect(
            member.round(Self.sample(received: 0), atSeconds: 0).allSatisfy { $0.0.hasPrefix("$SYS/nodes/3/broker/") })
    }
}
