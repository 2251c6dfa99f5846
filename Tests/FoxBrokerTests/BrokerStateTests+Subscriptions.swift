import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Subscriptions in the broker core: wildcards, overlapping subscriptions, subscription
/// options, retained messages, shared subscriptions, SUBACK and UNSUBACK codes.
@Suite struct BrokerStateSubscriptionTests {
    // Goal: '+' matches exactly one level, '#' the parent and every level below (MQTT 5.0
    // §4.7.1.2, §4.7.1.3).
    @Test func wildcardsDeliver() {
        let broker = BrokerHarness()
        broker.connect("plus", conn: 1)
        broker.subscribe(conn: 1, "a/+/c", qos: .atMostOnce)
        broker.connect("hash", conn: 2)
        broker.subscribe(conn: 2, "a/#", qos: .atMostOnce)
        broker.connect("p", conn: 5)

        let abc = broker.publish(conn: 5, "a/b/c", "abc")
        #expect(abc.payloads(to: 1) == ["abc"])
        #expect(abc.payloads(to: 2) == ["abc"])
        let a = broker.publish(conn: 5, "a", "a")
        #expect(a.payloads(to: 1).isEmpty)
        #expect(a.payloads(to: 2) == ["a"])  // "a/#" matches "a" itself
        let abcd = broker.publish(conn: 5, "a/b/c/d", "abcd")
        #expect(abcd.payloads(to: 1).isEmpty)
        #expect(abcd.payloads(to: 2) == ["abcd"])
        let ac = broker.publish(conn: 5, "a//c", "empty level")
        #expect(ac.payloads(to: 1) == ["empty level"])
        #expect(broker.publish(conn: 5, "ab", "ab").publishes(to: 2).isEmpty)
    }

    // Goal: topics beginning with '$' are not matched by a filter beginning with a wildcard,
    // but are matched by one that names the '$' level (MQTT 5.0 §4.7.2 [MQTT-4.7.2-1]).
    @Test func dollarTopicsAreNotMatchedByLeadingWildcards() {
        let broker = BrokerHarness()
        broker.connect("all", conn: 1)
        broker.subscribe(conn: 1, "#", qos: .atMostOnce)
        broker.connect("plus", conn: 2)
        broker.subscribe(conn: 2, "+/info", qos: .atMostOnce)
        broker.connect("sys", conn: 3)
        broker.subscribe(conn: 3, "$SYS/#", qos: .atMostOnce)
        broker.connect("p", conn: 5)
        let actions = broker.publish(conn: 5, "$SYS/info")
        #expect(actions.publishes(to: 1).isEmpty)
        #expect(actions.publishes(to: 2).isEmpty)
        #expect(actions.payloads(to: 3) == ["m"])
        let plain = broker.publish(conn: 5, "x/info")
        #expect(plain.publishes(to: 1).count == 1)
        #expect(plain.publishes(to: 2).count == 1)
    }

    // Goal: a message matching several subscriptions of one client is delivered once, at the
    // greatest granted QoS, with every matching subscription identifier (MQTT 5.0 §3.3.4
    // [MQTT-3.3.4-2], [MQTT-3.3.4-3], [MQTT-3.3.4-5]).
    @Test func overlappingSubscriptionsGiveOneDelivery() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1)
        broker.subscribe(conn: 1, "a/+", qos: .atLeastOnce, identifier: 7)
        broker.subscribe(conn: 1, "a/b", qos: .exactlyOnce, identifier: 3)
        broker.subscribe(conn: 1, "#", qos: .atMostOnce)
        broker.connect("p", conn: 5)
        let delivered = broker.publish(conn: 5, "a/b", qos: .exactlyOnce, packetIdentifier: 1).publishes(to: 1)
        #expect(delivered.count == 1)
        #expect(delivered.first?.qos == .exactlyOnce)
        #expect(delivered.first?.properties.subscriptionIdentifiers == [3, 7])
        // The PUBLISH sent carries no identifiers for a match without one.
        let other = broker.publish(conn: 5, "z").publishes(to: 1)
        #expect(other.first?.properties.subscriptionIdentifiers == [])
    }

    // Goal: a resubscription replaces the options of the old subscription, the count stays
    // (MQTT 5.0 §3.8.4 [MQTT-3.8.4-3]).
    @Test func resubscribeReplacesTheSubscription() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1)
        broker.subscribe(conn: 1, "t", qos: .exactlyOnce, identifier: 1)
        broker.subscribe(conn: 1, "t", qos: .atMostOnce, identifier: 2)
        #expect(broker.state.subscriptionCount == 1)
        broker.connect("p", conn: 5)
        let delivered = broker.publish(conn: 5, "t", qos: .exactlyOnce, packetIdentifier: 1).publishes(to: 1)
        #expect(delivered.first?.qos == .atMostOnce)
        #expect(delivered.first?.properties.subscriptionIdentifiers == [2])
    }

    // Goal: No Local keeps a client's own messages from it, not from others (MQTT 5.0 §3.8.3.1
    // [MQTT-3.8.3-3]).
    @Test func noLocal() {
        let broker = BrokerHarness()
        broker.connect("me", conn: 1)
        broker.subscribe(conn: 1, "t", qos: .atMostOnce, noLocal: true)
        broker.connect("other", conn: 2)
        broker.subscribe(conn: 2, "t", qos: .atMostOnce)
        let own = broker.publish(conn: 1, "t", "mine")
        #expect(own.publishes(to: 1).isEmpty)
        #expect(own.payloads(to: 2) == ["mine"])
        #expect(broker.publish(conn: 2, "t", "theirs").payloads(to: 1) == ["theirs"])
    }

    // Goal: Retain As Published keeps the RETAIN flag of a live message; without it the flag is
    // cleared (MQTT 5.0 §3.8.3.1, §3.3.1.3 [MQTT-3.3.1-12], [MQTT-3.3.1-13]).
    @Test func retainAsPublished() {
        let broker = BrokerHarness()
        broker.connect("keeps", conn: 1)
        broker.subscribe(conn: 1, "t", qos: .atMostOnce, retainAsPublished: true)
        broker.connect("clears", conn: 2)
        broker.subscribe(conn: 2, "t", qos: .atMostOnce, retainAsPublished: false)
        broker.connect("p", conn: 5)
        let retained = broker.publish(conn: 5, "t", "r", retain: true)
        #expect(retained.publishes(to: 1).map(\.retain) == [true])
        #expect(retained.publishes(to: 2).map(\.retain) == [false])
        let plain = broker.publish(conn: 5, "t", "p", retain: false)
        #expect(plain.publishes(to: 1).map(\.retain) == [false])
    }

    // Goal: retained messages are set, replaced, cleared by an empty payload, and sent after
    // the SUBACK of a matching subscription with RETAIN 1 (MQTT 5.0 §3.3.1.3 [MQTT-3.3.1-5..11]).
    @Test func retainedSetReplaceClearAndSendOnSubscribe() {
        let broker = BrokerHarness()
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "r/1", "first", qos: .atLeastOnce, retain: true)
        broker.publish(conn: 5, "r/1", "second", qos: .atLeastOnce, retain: true)
        broker.publish(conn: 5, "r/2", "other", qos: .atMostOnce, retain: true)
        broker.publish(conn: 5, "r/3", "not retained", qos: .atMostOnce, retain: false)
        #expect(broker.state.retainedMessageCount == 2)

        broker.connect("s", conn: 1)
        let subscribed = broker.subscribe(conn: 1, "r/+", qos: .exactlyOnce, packetIdentifier: 4)
        let packets = subscribed.packets(to: 1)
        #expect(packets.first == .subAck(SubAck(packetIdentifier: 4, reasonCodes: [.grantedQoS2])))
        let retained = subscribed.publishes(to: 1)
        #expect(retained.map(\.payloadString) == ["second", "other"])  // sorted by topic
        #expect(retained.allSatisfy { $0.retain })
        #expect(retained.map(\.qos) == [.atLeastOnce, .atMostOnce])

        // An empty retained payload clears and is itself delivered, not stored.
        let cleared = broker.publish(conn: 5, "r/1", "", retain: true)
        #expect(cleared.publishes(to: 1).map(\.payloadString) == [""])
        #expect(broker.state.retainedMessageCount == 1)
        broker.connect("late", conn: 2)
        #expect(broker.subscribe(conn: 2, "r/1").publishes(to: 2).isEmpty)
        #expect(broker.subscribe(conn: 2, "r/2", packetIdentifier: 2).payloads(to: 2) == ["other"])
    }

    // Goal: an expired retained message is not sent to a new subscription (MQTT 5.0 §3.3.2.3.3),
    // and an unexpired one carries its remaining interval.
    @Test func retainedMessageExpiry() {
        let broker = BrokerHarness()
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "r/short", "short", retain: true, expiry: 5)
        broker.publish(conn: 5, "r/long", "long", retain: true, expiry: 60)
        broker.advance(seconds: 10)
        broker.connect("s", conn: 1)
        let retained = broker.subscribe(conn: 1, "r/#").publishes(to: 1)
        #expect(retained.map(\.payloadString) == ["long"])
        #expect(retained.first?.properties.messageExpiryIntervalSeconds == 50)
    }

    // Goal: Retain Handling 0 sends retained messages on every subscribe, 1 only when the
    // subscription is new, 2 never (MQTT 5.0 §3.8.3.1 [MQTT-3.3.1-9], [MQTT-3.3.1-10]).
    @Test(arguments: [
        (RetainHandling.sendOnSubscribe, 1, 1),
        (RetainHandling.sendOnNewSubscribe, 1, 0),
        (RetainHandling.doNotSend, 0, 0),
    ])
    func retainHandling(handling: RetainHandling, onFirst: Int, onRepeat: Int) {
        let broker = BrokerHarness()
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "r", "kept", retain: true)
        broker.connect("s", conn: 1)
        #expect(broker.subscribe(conn: 1, "r", retainHandling: handling).publishes(to: 1).count == onFirst)
        #expect(broker.subscribe(conn: 1, "r", retainHandling: handling).publishes(to: 1).count == onRepeat)
    }

    // Goal: retained messages go to the subscriber at min(retained QoS, granted QoS), with the
    // subscription identifier of the SUBSCRIBE (MQTT 5.0 §3.3.1.3, §3.8.2.1.2).
    @Test func retainedDeliveryQoSAndIdentifier() {
        let broker = BrokerHarness()
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "r", "kept", qos: .exactlyOnce, retain: true, packetIdentifier: 1)
        broker.connect("s", conn: 1)
        let retained = broker.subscribe(conn: 1, "r", qos: .atLeastOnce, identifier: 42).publishes(to: 1)
        #expect(retained.first?.qos == .atLeastOnce)
        #expect(retained.first?.packetIdentifier != nil)
        #expect(retained.first?.properties.subscriptionIdentifiers == [42])
    }

    // Goal: members of a shared subscription receive the group's messages in turn (MQTT 5.0
    // §4.8.2: each message goes to one member).
    @Test func sharedSubscriptionRoundRobin() {
        let broker = BrokerHarness()
        broker.connect("a", conn: 1)
        broker.subscribe(conn: 1, "$share/g/t", qos: .atMostOnce)
        broker.connect("b", conn: 2)
        broker.subscribe(conn: 2, "$share/g/t", qos: .atMostOnce)
        broker.connect("p", conn: 5)
        var receivers: [UInt64] = []
        for index in 0..<6 {
            let actions = broker.publish(conn: 5, "t", "\(index)")
            let to1 = actions.publishes(to: 1).count
            let to2 = actions.publishes(to: 2).count
            #expect(to1 + to2 == 1)
            receivers.append(to1 == 1 ? 1 : 2)
        }
        #expect(receivers.filter { $0 == 1 }.count == 3)
        for index in 1..<receivers.count { #expect(receivers[index] != receivers[index - 1]) }
    }

    // Goal: a shared subscription and a non-shared one are independent; two groups each get a
    // copy (MQTT 5.0 §4.8.2).
    @Test func sharedGroupsAreIndependent() {
        let broker = BrokerHarness()
        broker.connect("a", conn: 1)
        broker.subscribe(conn: 1, "$share/g1/t", qos: .atMostOnce)
        broker.connect("b", conn: 2)
        broker.subscribe(conn: 2, "$share/g2/t", qos: .atMostOnce)
        broker.connect("c", conn: 3)
        broker.subscribe(conn: 3, "t", qos: .atMostOnce)
        broker.connect("p", conn: 5)
        let actions = broker.publish(conn: 5, "t")
        #expect(actions.publishes(to: 1).count == 1)
        #expect(actions.publishes(to: 2).count == 1)
        #expect(actions.publishes(to: 3).count == 1)
    }

    // Goal: while one member is connected, a member whose client is away is skipped (MQTT 5.0
    // §4.8.2 allows the server to choose; FoxMQ prefers connected members).
    @Test func sharedSubscriptionSkipsADisconnectedMember() {
        let broker = BrokerHarness()
        broker.connect("a", conn: 1)
        broker.subscribe(conn: 1, "$share/g/t", qos: .atLeastOnce)
        broker.connect("b", conn: 2, cleanStart: false, expiry: 600)
        broker.subscribe(conn: 2, "$share/g/t", qos: .atLeastOnce)
        broker.close(conn: 2)
        broker.connect("p", conn: 5)
        for index in 0..<4 {
            let actions = broker.publish(
                conn: 5, "t", "\(index)", qos: .atLeastOnce, packetIdentifier: UInt16(index + 1))
            #expect(actions.payloads(to: 1) == ["\(index)"])
        }
        #expect(broker.session("b")?.outbound.queue.isEmpty == true)
        let resumed = broker.connect("b", conn: 3, cleanStart: false, expiry: 600)
        #expect(resumed.publishes(to: 3).isEmpty)
    }

    // Goal: a shared subscription never receives retained messages on subscribe (MQTT 5.0
    // §4.8.2).
    @Test func noRetainedOnSharedSubscribe() {
        let broker = BrokerHarness()
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "t", "kept", retain: true)
        broker.connect("a", conn: 1)
        let subscribed = broker.subscribe(conn: 1, "$share/g/t", packetIdentifier: 3)
        #expect(subscribed.packets(to: 1) == [.subAck(SubAck(packetIdentifier: 3, reasonCodes: [.grantedQoS1]))])
    }

    // Goal: UNSUBACK reports 0x00 for a removed subscription and 0x11 for one that did not
    // exist, and the removed subscription receives nothing more (MQTT 5.0 §3.11.3).
    @Test func unsubscribeCodes() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1)
        broker.subscribe(conn: 1, "a", qos: .atMostOnce)
        broker.subscribe(conn: 1, "$share/g/b", qos: .atMostOnce)
        let actions = broker.unsubscribe(conn: 1, ["a", "nope", "$share/g/b", "a"], packetIdentifier: 9)
        #expect(
            actions.packets(to: 1)
                == [
                    .unsubAck(
                        UnsubAck(
                            packetIdentifier: 9,
                            reasonCodes: [.success, .noSubscriptionExisted, .success, .noSubscriptionExisted]))
                ])
        #expect(broker.state.subscriptionCount == 0)
        broker.connect("p", conn: 5)
        #expect(broker.publish(conn: 5, "a").publishes(to: 1).isEmpty)
        #expect(broker.publish(conn: 5, "b").publishes(to: 1).isEmpty)
    }

    // Goal: a subscription beyond BrokerLimits.subscriptionCountMax is refused with 0x97 Quota
    // exceeded, while replacing an existing one still works (MQTT 5.0 §3.9.3).
    @Test func subscriptionQuota() {
        var limits = BrokerLimits()
        limits.subscriptionCountMax = 2
        let broker = BrokerHarness(limits: limits)
        broker.connect("s", conn: 1)
        let actions = broker.subscribe(
            conn: 1,
            ["a", "b", "c", "a"].map {
                TopicSubscription(topicFilter: $0, options: SubscriptionOptions(qos: .atLeastOnce))
            },
            packetIdentifier: 5)
        #expect(
            actions.packets(to: 1)
                == [
                    .subAck(
                        SubAck(
                            packetIdentifier: 5,
                            reasonCodes: [.grantedQoS1, .grantedQoS1, .quotaExceeded, .grantedQoS1]))
                ])
        #expect(broker.state.subscriptionCount == 2)
    }

    // Goal: an invalid topic filter gets 0x8F Topic Filter Invalid while the valid ones of the
    // same SUBSCRIBE are granted (MQTT 5.0 §3.9.3, §4.7.1, §4.8.2).
    @Test func invalidFilters() {
        var limits = BrokerLimits()
        limits.topicLevelCountMax = 3
        let broker = BrokerHarness(limits: limits)
        broker.connect("s", conn: 1)
        let filters = [
            "a/#/b", "a+", "a/b#", "$share/g", "$share//a", "$share/g+/a", "$share/g/a/#/b", "a/b/c/d", "ok/+", "",
        ]
        let actions = broker.subscribe(
            conn: 1,
            filters.map { TopicSubscription(topicFilter: $0, options: SubscriptionOptions(qos: .atMostOnce)) },
            packetIdentifier: 6)
        let invalid = ReasonCode.topicFilterInvalid
        #expect(
            actions.packets(to: 1)
                == [
                    .subAck(
                        SubAck(
                            packetIdentifier: 6,
                            reasonCodes: [
                                invalid, invalid, invalid, invalid, invalid, invalid, invalid, invalid, .grantedQoS0,
                                invalid,
                            ]))
                ])
        #expect(broker.state.subscriptionCount == 1)
    }
}
