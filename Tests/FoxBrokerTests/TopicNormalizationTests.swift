import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Topic names are compared as UTF-8 bytes, never normalized.
@Suite struct TopicNormalizationTests {
    /// "café" with a precomposed é (U+00E9) and with e + combining acute (U+0301): canonically
    /// equivalent for Swift's String ==, different UTF-8 bytes for MQTT.
    static let precomposed = "caf\u{E9}"
    static let decomposed = "cafe\u{301}"

    // Goal: matching does not normalize Unicode: a filter matches only the same bytes (MQTT 5.0
    // §4.7.3 [MQTT-4.7.3-4] "MUST NOT perform any normalization").
    @Test func topicMatchesComparesBytes() {
        #expect(Array(Self.precomposed.utf8) != Array(Self.decomposed.utf8))
        #expect(!topicMatches(filter: Self.precomposed, topicName: Self.decomposed))
        #expect(!topicMatches(filter: "a/" + Self.precomposed, topicName: "a/" + Self.decomposed))
    }

    // Goal: the topic tree does not normalize either (MQTT 5.0 §4.7.3 [MQTT-4.7.3-4]).
    @Test func topicTreeComparesBytes() {
        let tree = TopicTree()
        tree.insert(
            filter: Self.precomposed, shareName: nil, clientIdentifier: "x",
            entry: SubscriptionEntry(options: SubscriptionOptions(qos: .atMostOnce), subscriptionIdentifier: nil))
        var matched: [String] = []
        tree.match(
            topicName: Self.decomposed, subscriber: { client, _ in matched.append(client.value) }, sharedGroup: { _ in }
        )
        #expect(matched.isEmpty)
    }

    // Goal: end to end, a subscriber to one spelling does not get messages, live or retained,
    // published to the other (MQTT 5.0 §4.7.3 [MQTT-4.7.3-4], §3.3.1.3).
    @Test func brokerDoesNotDeliverAcrossNormalizationForms() {
        let broker = BrokerHarness()
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, Self.decomposed, "retained", retain: true)
        broker.connect("s", conn: 1)
        #expect(broker.subscribe(conn: 1, Self.precomposed, qos: .atMostOnce).publishes(to: 1).isEmpty)
        #expect(broker.publish(conn: 5, Self.decomposed, "live").publishes(to: 1).isEmpty)
        broker.publish(conn: 5, Self.precomposed, "other retained", retain: true)
        #expect(broker.state.retainedMessageCount == 2)
    }
}
