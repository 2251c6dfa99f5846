import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Session lifecycle of the broker core: CONNACK Session Present, takeover, Clean Start,
/// resumption with redelivery, offline queueing and session expiry.
@Suite struct BrokerStateSessionTests {
    // Goal: a first connection finds no session; a reconnect with Clean Start 0 to a kept
    // session reports Session Present 1 (MQTT 5.0 §3.2.2.1.1).
    @Test func connAckSessionPresentFalseThenTrue() {
        let broker = BrokerHarness()
        let first = broker.connect("c", conn: 1, cleanStart: false, expiry: 60)
        #expect(first.connAck(to: 1)! == (false, .success))
        #expect(first.count == 1)
        broker.close(conn: 1)
        let second = broker.connect("c", conn: 2, cleanStart: false, expiry: 60)
        #expect(second.connAck(to: 2)! == (true, .success))
        #expect(broker.state.sessionCount == 1)
        #expect(broker.state.connectedSessionCount == 1)
    }

    // Goal: Clean Start 1 always answers Session Present 0, even when a session existed
    // (MQTT 5.0 §3.2.2.1.1, §3.1.2.4).
    @Test func cleanStartReportsNoSessionPresent() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 60)
        broker.close(conn: 1)
        let again = broker.connect("c", conn: 2, cleanStart: true, expiry: 60)
        #expect(again.connAck(to: 2)! == (false, .success))
    }

    // Goal: a second connection with the same client identifier takes the session over; the old
    // connection gets DISCONNECT 0x8E and nothing it sends afterwards changes the broker
    // (MQTT 5.0 §3.1.4 point 3, [MQTT-3.1.4-3]).
    @Test func takeoverDisconnectsTheOldConnectionAndIgnoresItsEvents() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 60)
        broker.subscribe(conn: 1, "t")
        broker.connect("watcher", conn: 9)
        broker.subscribe(conn: 9, "#", qos: .atMostOnce)

        let takeover = broker.connect("c", conn: 2, cleanStart: false, expiry: 60)
        #expect(takeover.disconnects.map(\.0) == [cid(1)])
        #expect(takeover.disconnects.map(\.1) == [.sessionTakenOver])
        #expect(takeover.connAck(to: 2)! == (true, .success))
        // The DISCONNECT goes out before the CONNACK of the new connection.
        #expect(takeover.descriptions.first?.contains("disconnect") == true)

        // Events of the old connection are ignored: no PUBACK, no delivery, no SUBACK, no close.
        #expect(broker.publish(conn: 1, "x", qos: .atLeastOnce, packetIdentifier: 5).isEmpty)
        #expect(broker.subscribe(conn: 1, "y").isEmpty)
        #expect(broker.unsubscribe(conn: 1, ["t"]).isEmpty)
        #expect(broker.pubRel(conn: 1, 5).isEmpty)
        #expect(broker.close(conn: 1).isEmpty)
        #expect(broker.state.connectedSessionCount == 2)

        // The session still belongs to the new connection, subscription intact.
        let delivered = broker.publish(conn: 9, "t", "still", qos: .atLeastOnce, packetIdentifier: 1)
        #expect(delivered.payloads(to: 2) == ["still"])
        #expect(delivered.publishes(to: 1).isEmpty)
    }

    // Goal: Clean Start 1 discards the old session with its subscriptions and queued messages
    // (MQTT 5.0 §3.1.2.4 [MQTT-3.1.2-4]).
    @Test func cleanStartDiscardsTheOldSession() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 600)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.close(conn: 1)
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "t", "queued", qos: .atLeastOnce, packetIdentifier: 1)

        let resumed = broker.connect("c", conn: 2, cleanStart: true, expiry: 600)
        #expect(resumed.publishes(to: 2).isEmpty)
        #expect(broker.session("c")?.subscriptions.isEmpty == true)
        let after = broker.publish(conn: 5, "t", "later", qos: .atLeastOnce, packetIdentifier: 2)
        #expect(after.publishes(to: 2).isEmpty)
        #expect(after.packets(to: 5) == [.pubAck(PubAck(packetIdentifier: 2, reasonCode: .noMatchingSubscribers))])
    }

    // Goal: on resumption the broker resends unacknowledged PUBLISHes with DUP 1 and PUBRELs of
    // released QoS 2 messages, in their original order, then the queue (MQTT 5.0 §4.4
    // [MQTT-4.4.0-1], §4.6).
    @Test func redeliveryOnReconnectKeepsOrderAndSetsDup() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1, cleanStart: false, expiry: 600, receiveMaximum: 3)
        broker.subscribe(conn: 1, "t", qos: .exactlyOnce)
        broker.connect("p", conn: 5)
        var sent: [Publish] = []
        sent += broker.publish(conn: 5, "t", "one", qos: .exactlyOnce, packetIdentifier: 1).publishes(to: 1)
        sent += broker.publish(conn: 5, "t", "two", qos: .atLeastOnce, packetIdentifier: 2).publishes(to: 1)
        sent += broker.publish(conn: 5, "t", "three", qos: .exactlyOnce, packetIdentifier: 3).publishes(to: 1)
        broker.publish(conn: 5, "t", "four", qos: .atLeastOnce, packetIdentifier: 4)  // queued: window full
        #expect(sent.map(\.payloadString) == ["one", "two", "three"])
        #expect(sent.allSatisfy { !$0.dup })
        let ids = sent.map { $0.packetIdentifier! }
        // "one" is received by the client (PUBREC): the broker now owes a PUBREL.
        #expect(broker.pubRec(conn: 1, ids[0]).packets(to: 1) == [.pubRel(PubRel(packetIdentifier: ids[0]))])
        broker.close(conn: 1)

        let resumed = broker.connect("s", conn: 2, cleanStart: false, expiry: 600, receiveMaximum: 3)
        #expect(resumed.connAck(to: 2)! == (true, .success))
        let packets = resumed.packets(to: 2)
        #expect(packets.count == 3)
        guard packets.count == 3 else { return }
        #expect(packets[0] == .pubRel(PubRel(packetIdentifier: ids[0])))
        guard case .publish(let two) = packets[1], case .publish(let three) = packets[2] else {
            Issue.record("expected two PUBLISHes after the PUBREL, got \(packets)")
            return
        }
        #expect(two.payloadString == "two" && two.dup && two.packetIdentifier == ids[1] && two.qos == .atLeastOnce)
        #expect(
            three.payloadString == "three" && three.dup && three.packetIdentifier == ids[2] && three.qos == .exactlyOnce
        )
        // "four" waits for a window slot; completing "one" frees it.
        #expect(broker.pubComp(conn: 2, ids[0]).payloads(to: 2) == ["four"])
    }

    // Goal: a persistent session keeps QoS 1 messages while the client is away and not QoS 0
    // (MQTT 5.0 §4.1 session state; QoS 0 "may" be kept, FoxMQ does not, as Mosquitto).
    @Test func offlineQueueingKeepsQoS1AndDropsQoS0() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1, cleanStart: false, expiry: 600)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.close(conn: 1)
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "t", "q0", qos: .atMostOnce)
        broker.publish(conn: 5, "t", "q1", qos: .atLeastOnce, packetIdentifier: 1)
        let resumed = broker.connect("s", conn: 2, cleanStart: false, expiry: 600)
        #expect(resumed.payloads(to: 2) == ["q1"])
        #expect(resumed.publishes(to: 2).first?.qos == .atLeastOnce)
        #expect(resumed.publishes(to: 2).first?.dup == false)
    }

    // Goal: the queue of an absent client is bounded by BrokerLimits.queuedMessageCountMax;
    // further messages are dropped and counted, the oldest are kept (MQTT 5.0 §4.1 allows
    // limits on stored state).
    @Test func offlineQueueIsBounded() {
        var limits = BrokerLimits()
        limits.queuedMessageCountMax = 2
        let broker = BrokerHarness(limits: limits)
        broker.connect("s", conn: 1, cleanStart: false, expiry: 600)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.close(conn: 1)
        broker.connect("p", conn: 5)
        for (index, text) in ["a", "b", "c", "d"].enumerated() {
            broker.publish(conn: 5, "t", text, qos: .atLeastOnce, packetIdentifier: UInt16(index + 1))
        }
        #expect(broker.session("s")?.outbound.queue.count == 2)
        #expect(broker.session("s")?.outbound.droppedCount == 2)
        let resumed = broker.connect("s", conn: 2, cleanStart: false, expiry: 600)
        #expect(resumed.payloads(to: 2) == ["a", "b"])
    }

    // Goal: Session Expiry Interval 0 ends the session when the connection closes (MQTT 5.0
    // §3.1.2.11.2).
    @Test func sessionExpiryZeroEndsAtClose() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 0)
        broker.subscribe(conn: 1, "t")
        #expect(broker.state.subscriptionCount == 1)
        broker.close(conn: 1, .normalDisconnect)
        #expect(broker.state.sessionCount == 0)
        #expect(broker.state.subscriptionCount == 0)
        #expect(broker.connect("c", conn: 2, cleanStart: false).connAck(to: 2)! == (false, .success))
    }

    // Goal: Session Expiry Interval N ends the session at the first tick N seconds after the
    // close, not before (MQTT 5.0 §3.1.2.11.2); the ordered clock decides, not a local one.
    @Test func sessionExpiryEndsAtTheFirstTickAfterTheInterval() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 10)
        broker.subscribe(conn: 1, "t")
        broker.close(conn: 1)
        broker.advance(millis: 9_999)
        broker.tick()
        #expect(broker.state.sessionCount == 1)
        broker.advance(millis: 1)
        broker.tick()
        #expect(broker.state.sessionCount == 0)
        #expect(broker.state.subscriptionCount == 0)
    }

    // Goal: the Session Expiry Interval of a DISCONNECT replaces the one of CONNECT (MQTT 5.0
    // §3.14.2.2.2).
    @Test func disconnectSessionExpiryReplacesTheConnectOne() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 10)
        broker.close(conn: 1, .normalDisconnect, expiry: 100)
        broker.advance(seconds: 50)
        broker.tick()
        #expect(broker.state.sessionCount == 1)
        broker.advance(seconds: 50)
        broker.tick()
        #expect(broker.state.sessionCount == 0)
    }

    // Goal: Session Expiry Interval 0xFFFFFFFF means the session never expires (MQTT 5.0
    // §3.1.2.11.2); 3.1.1 Clean Session 0 maps to it.
    @Test func sessionExpiryMaxNeverEnds() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: UInt32.max)
        broker.close(conn: 1)
        broker.advance(millis: UInt64(UInt32.max) * 1000 + 1)
        broker.tick()
        #expect(broker.state.sessionCount == 1)
    }

    // Goal: a reconnect before the expiry keeps the session alive past the old deadline
    // (MQTT 5.0 §3.1.2.11.2: the interval counts from the close).
    @Test func reconnectCancelsTheExpiry() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 10)
        broker.close(conn: 1)
        broker.advance(seconds: 5)
        broker.connect("c", conn: 2, cleanStart: false, expiry: 10)
        broker.advance(seconds: 20)
        broker.tick()
        #expect(broker.state.sessionCount == 1)
        #expect(broker.session("c")?.connection == cid(2))
    }

    // Goal: the session count is bounded by BrokerLimits.sessionCountMax: a new session beyond
    // it is refused with CONNACK 0x97 Quota exceeded (MQTT 5.0 §3.2.2.2), a resumption is not.
    @Test func sessionCountMaxRefusesNewSessions() {
        var limits = BrokerLimits()
        limits.sessionCountMax = 1
        let broker = BrokerHarness(limits: limits)
        broker.connect("a", conn: 1, cleanStart: false, expiry: 60)
        #expect(broker.connect("b", conn: 2).connAck(to: 2)! == (false, .quotaExceeded))
        #expect(broker.state.sessionCount == 1)
        #expect(broker.publish(conn: 2, "t", qos: .atLeastOnce).isEmpty)
        broker.close(conn: 1)
        #expect(broker.connect("a", conn: 3, cleanStart: false, expiry: 60).connAck(to: 3)! == (true, .success))
    }
}

/// Findings of the spec review, each pinned by a test.
@Suite struct BrokerStateSessionEdgeTests {
    // Goal: taking over a connected session whose expiry is 0 ends it: the new connection with
    // Clean Start 0 gets Session Present 0 and none of the old subscriptions (3.1.1 §3.1.2.4
    // [MQTT-3.1.2-6]; MQTT 5.0 §3.1.2.11.2).
    @Test func takeoverOfAConnectionLongSessionStartsAfresh() {
        let broker = BrokerHarness()
        broker.connect("a", conn: 1, cleanStart: false, expiry: 0)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        let taken = broker.connect("a", conn: 2, cleanStart: false, expiry: 60)
        #expect(taken.connAck(to: 2)?.sessionPresent == false)
        broker.connect("p", conn: 5)
        #expect(broker.publish(conn: 5, "t", "x").publishes(to: 2).isEmpty)
    }

    // Goal: a delayed will that fell due before the client came back is published even if no
    // tick ran in between; an expired session is not resumed (MQTT 5.0 §3.1.2.5 [MQTT-3.1.2-8],
    // §3.1.2.11.2).
    @Test func dueWillAndExpiryApplyOnReconnectWithoutATick() {
        let broker = BrokerHarness()
        broker.connect("w", conn: 9)
        broker.subscribe(conn: 9, "will", qos: .atMostOnce)
        var will = Will(topicName: "will", payload: ByteBuffer(string: "gone"), qos: .atMostOnce, retain: false)
        will.properties.willDelayIntervalSeconds = 1
        broker.connect("a", conn: 1, cleanStart: false, expiry: 2, will: will)
        broker.close(conn: 1)
        broker.advance(seconds: 3)
        let back = broker.connect("a", conn: 2, cleanStart: false, expiry: 2)
        #expect(back.payloads(to: 9) == ["gone"])
        #expect(back.connAck(to: 2)?.sessionPresent == false)
    }
}
