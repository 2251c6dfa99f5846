import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// The retained-message tree (MQTT 5.0 §3.3.1.3, §4.7): it must find exactly what the reference
/// rule `topicMatches` accepts, in topic byte order, and cleared topics must leave nothing behind.
@Suite struct RetainedMessagesTests {
    static func message(_ topic: String, _ payload: String, expiry: UInt64? = nil) -> ApplicationMessage {
        ApplicationMessage(
            topicName: topic, payload: ByteBuffer(string: payload), qos: .atMostOnce, retain: true,
            properties: Properties(), expiryDeadlineMillis: expiry, originClientIdentifier: nil)
    }

    // Goal: for random topics and filters ($-topics, empty levels, `+`, `#`), the tree walk
    // returns the same topics as filtering every retained topic with `topicMatches`, sorted.
    @Test(arguments: 0..<20)
    func agreesWithBruteForce(seed: UInt64) {
        var random = SplitMix64(seed: seed &+ 0x5EED)
        func randomTopic() -> String { random.topicName() }
        func randomFilter() -> String { random.topicFilter() }

        let retained = RetainedMessages()
        var stored: [String: String] = [:]
        for index in 0..<80 {
            let topic = randomTopic()
            if random.chance(20) {
                retained.store(Self.message(topic, ""))  // clears
                stored[topic] = nil
            } else {
                retained.store(Self.message(topic, "p\(index)"))
                stored[topic] = "p\(index)"
            }
        }
        #expect(retained.count == stored.count)

        for _ in 0..<200 {
            let filter = randomFilter()
            let found = retained.matching(filter: filter, nowMillis: 0)
            let expected = stored.keys.filter { topicMatches(filter: filter, topicName: $0) }
                .sorted { ExactString($0) < ExactString($1) }
            #expect(found.map(\.topicName) == expected, "filter \(filter)")
            #expect(found.map { String(buffer: $0.payload) } == expected.map { stored[$0]! }, "filter \(filter)")
        }
    }

    // Goal: `#` matches the parent level, `+` one level; a leading wildcard skips `$` topics.
    @Test func wildcardEdges() {
        let retained = RetainedMessages()
        for topic in ["sport", "sport/tennis", "sport/tennis/player1", "$SYS/load", "/lead"] {
            retained.store(Self.message(topic, topic))
        }
        #expect(
            retained.matching(filter: "sport/#", nowMillis: 0).map(\.topicName) == [
                "sport", "sport/tennis", "sport/tennis/player1",
            ])
        #expect(retained.matching(filter: "sport/+", nowMillis: 0).map(\.topicName) == ["sport/tennis"])
        #expect(
            retained.matching(filter: "#", nowMillis: 0).map(\.topicName) == [
                "/lead", "sport", "sport/tennis", "sport/tennis/player1",
            ])
        #expect(retained.matching(filter: "+/+", nowMillis: 0).map(\.topicName) == ["/lead", "sport/tennis"])
        #expect(retained.matching(filter: "$SYS/#", nowMillis: 0).map(\.topicName) == ["$SYS/load"])
    }

    // Goal: clearing a topic removes its branch, replacing keeps one entry, expired ones are not sent.
    @Test func clearReplaceAndExpiry() {
        let retained = RetainedMessages()
        retained.store(Self.message("a/b/c", "1"))
        retained.store(Self.message("a/b/c", "2"))
        #expect(retained.count == 1)
        #expect(retained.matching(filter: "a/b/c", nowMillis: 0).map { String(buffer: $0.payload) } == ["2"])
        retained.store(Self.message("a/b/c", ""))
        #expect(retained.count == 0)
        #expect(retained.matching(filter: "#", nowMillis: 0).isEmpty)
        // Clearing a topic that was never set changes nothing.
        retained.store(Self.message("x/y", ""))
        #expect(retained.count == 0)

        retained.store(Self.message("e", "soon", expiry: 1000))
        #expect(retained.matching(filter: "e", nowMillis: 999).count == 1)
        #expect(retained.matching(filter: "e", nowMillis: 1000).count == 1)
        #expect(retained.matching(filter: "#", nowMillis: 1001).isEmpty)
    }
}
