import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// QoS flows through the broker core: inbound acknowledgements, outbound windows, QoS 2
/// exchanges in both directions, message expiry and the client's Maximum Packet Size.
@Suite struct BrokerStateQoSTests {
    /// A broker with subscriber "s" on conn 1 (filter "t" at `subscriptionQoS`) and publisher
    /// "p" on conn 5.
    func subscriberAndPublisher(
        subscriptionQoS: QoS = .exactlyOnce, receiveMaximum: UInt16 = .max,
        maximumPacketSize: UInt32? = nil
    ) -> BrokerHarness {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1, receiveMaximum: receiveMaximum, maximumPacketSize: maximumPacketSize)
        broker.subscribe(conn: 1, "t", qos: subscriptionQoS)
        broker.connect("p", conn: 5)
        return broker
    }

    // Goal: the subscriber gets the message at min(published QoS, granted QoS) (MQTT 5.0 §3.8.4,
    // §4.3); the publisher's PUBACK/PUBREC comes in the same apply, after the delivery.
    @Test(arguments: [QoS.atMostOnce, .atLeastOnce, .exactlyOnce], [QoS.atMostOnce, .atLeastOnce, .exactlyOnce])
    func deliveryQoSIsTheMinimum(published: QoS, granted: QoS) {
        let broker = subscriberAndPublisher(subscriptionQoS: granted)
        let actions = broker.publish(conn: 5, "t", "hello", qos: published, packetIdentifier: 9)
        let delivered = actions.publishes(to: 1)
        #expect(delivered.count == 1)
        #expect(delivered.first?.qos == min(published, granted))
        #expect(delivered.first?.payloadString == "hello")
        #expect((delivered.first?.packetIdentifier != nil) == (min(published, granted) != .atMostOnce))
        #expect(delivered.first?.dup == false)
        #expect(delivered.first?.retain == false)
        let acknowledgement = actions.packets(to: 5)
        switch published {
        case .atMostOnce:
            #expect(acknowledgement.isEmpty)
        case .atLeastOnce:
            #expect(acknowledgement == [.pubAck(PubAck(packetIdentifier: 9))])
        case .exactlyOnce:
            #expect(acknowledgement == [.pubRec(PubRec(packetIdentifier: 9))])
        }
        if published != .atMostOnce {
            let deliveryIndex = actions.firstIndex(to: 1, where: \.isPublish)!
            let acknowledgementIndex = actions.firstIndex(to: 5) { _ in true }!
            #expect(deliveryIndex < acknowledgementIndex)
        }
    }

    // Goal: a QoS 1/2 PUBLISH nobody subscribed to is acknowledged with 0x10 No matching
    // subscribers (MQTT 5.0 §3.4.2.1, §3.5.2.1).
    @Test func noMatchingSubscribersIsReported() {
        let broker = subscriberAndPublisher()
        #expect(
            broker.publish(conn: 5, "other", qos: .atLeastOnce, packetIdentifier: 3)
                == [.send(cid(5), .pubAck(PubAck(packetIdentifier: 3, reasonCode: .noMatchingSubscribers)))])
        #expect(
            broker.publish(conn: 5, "other", qos: .exactlyOnce, packetIdentifier: 4)
                == [.send(cid(5), .pubRec(PubRec(packetIdentifier: 4, reasonCode: .noMatchingSubscribers)))])
    }

    // Goal: an inbound QoS 2 PUBLISH resent with the same packet identifier before PUBREL is
    // acknowledged again but not delivered twice; PUBREL is answered by PUBCOMP, an unknown
    // PUBREL by PUBCOMP 0x92 (MQTT 5.0 §4.3.3 [MQTT-4.3.3-10], §3.7.2.1).
    @Test func inboundQoS2DuplicateIsDeliveredOnce() {
        let broker = subscriberAndPublisher()
        let first = broker.publish(conn: 5, "t", "once", qos: .exactlyOnce, packetIdentifier: 7)
        #expect(first.payloads(to: 1) == ["once"])
        let resent = broker.publish(conn: 5, "t", "once", qos: .exactlyOnce, packetIdentifier: 7, dup: true)
        #expect(resent == [.send(cid(5), .pubRec(PubRec(packetIdentifier: 7)))])
        #expect(broker.pubRel(conn: 5, 7) == [.send(cid(5), .pubComp(PubComp(packetIdentifier: 7)))])
        #expect(
            broker.pubRel(conn: 5, 7)
                == [.send(cid(5), .pubComp(PubComp(packetIdentifier: 7, reasonCode: .packetIdentifierNotFound)))])
        // After the release the identifier is free: the same identifier is a new message.
        #expect(
            broker.publish(conn: 5, "t", "again", qos: .exactlyOnce, packetIdentifier: 7).payloads(to: 1) == ["again"])
    }

    // Goal: the unreleased QoS 2 identifiers belong to the session: a resend after a reconnect
    // is still not delivered twice (MQTT 5.0 §4.3.3, §4.1 session state).
    @Test func inboundQoS2DuplicateAcrossReconnectIsDeliveredOnce() {
        let broker = subscriberAndPublisher()
        broker.connect("p2", conn: 6, cleanStart: false, expiry: 60)
        #expect(broker.publish(conn: 6, "t", "x", qos: .exactlyOnce, packetIdentifier: 3).payloads(to: 1) == ["x"])
        broker.close(conn: 6)
        broker.connect("p2", conn: 7, cleanStart: false, expiry: 60)
        let resent = broker.publish(conn: 7, "t", "x", qos: .exactlyOnce, packetIdentifier: 3, dup: true)
        #expect(resent == [.send(cid(7), .pubRec(PubRec(packetIdentifier: 3)))])
    }

    // Goal: outbound QoS 1 respects the client's Receive Maximum: with 2, the third message
    // waits until a PUBACK frees a slot (MQTT 5.0 §3.3.4 [MQTT-3.3.4-9], §4.9).
    @Test func outboundQoS1WindowFollowsReceiveMaximum() {
        let broker = subscriberAndPublisher(subscriptionQoS: .atLeastOnce, receiveMaximum: 2)
        var delivered: [Publish] = []
        for (index, text) in ["a", "b", "c"].enumerated() {
            delivered += broker.publish(conn: 5, "t", text, qos: .atLeastOnce, packetIdentifier: UInt16(index + 1))
                .publishes(to: 1)
        }
        #expect(delivered.map(\.payloadString) == ["a", "b"])
        #expect(Set(delivered.map(\.packetIdentifier)).count == 2)
        // QoS 0 is not flow controlled.
        #expect(broker.publish(conn: 5, "t", "zero").payloads(to: 1) == ["zero"])
        // A PUBACK for an unknown identifier frees nothing.
        #expect(broker.pubAck(conn: 1, 999).isEmpty)
        let freed = broker.pubAck(conn: 1, delivered[0].packetIdentifier!)
        #expect(freed.payloads(to: 1) == ["c"])
        // The new message may reuse the freed identifier, never the one still in flight.
        #expect(freed.publishes(to: 1).first?.packetIdentifier != delivered[1].packetIdentifier)
    }

    // Goal: outbound QoS 2 runs PUBLISH -> PUBREC -> PUBREL -> PUBCOMP, and the window slot is
    // held until PUBCOMP (MQTT 5.0 §4.3.3 [MQTT-4.3.3-3..5], §4.9).
    @Test func outboundQoS2Flow() {
        let broker = subscriberAndPublisher(subscriptionQoS: .exactlyOnce, receiveMaximum: 1)
        let first = broker.publish(conn: 5, "t", "one", qos: .exactlyOnce, packetIdentifier: 1).publishes(to: 1)
        #expect(first.map(\.payloadString) == ["one"])
        #expect(broker.publish(conn: 5, "t", "two", qos: .exactlyOnce, packetIdentifier: 2).publishes(to: 1).isEmpty)
        let id = first[0].packetIdentifier!
        // PUBACK is not the answer to a QoS 2 PUBLISH: nothing changes.
        #expect(broker.pubAck(conn: 1, id).isEmpty)
        #expect(broker.pubRec(conn: 1, id) == [.send(cid(1), .pubRel(PubRel(packetIdentifier: id)))])
        // A resent PUBREC is answered by PUBREL again; the window is still held.
        #expect(broker.pubRec(conn: 1, id) == [.send(cid(1), .pubRel(PubRel(packetIdentifier: id)))])
        #expect(broker.pubComp(conn: 1, id).payloads(to: 1) == ["two"])
        // PUBREC for an identifier not in flight: PUBREL 0x92 (§3.6.2.1).
        #expect(
            broker.pubRec(conn: 1, 4242)
                == [.send(cid(1), .pubRel(PubRel(packetIdentifier: 4242, reasonCode: .packetIdentifierNotFound)))])
    }

    // Goal: a PUBREC with a failure reason ends the outbound QoS 2 exchange without PUBREL and
    // frees the slot (MQTT 5.0 §4.3.3, §3.5.2.1).
    @Test func outboundPubRecFailureEndsTheExchange() {
        let broker = subscriberAndPublisher(subscriptionQoS: .exactlyOnce, receiveMaximum: 1)
        let id = broker.publish(conn: 5, "t", "one", qos: .exactlyOnce, packetIdentifier: 1).publishes(to: 1)[0]
            .packetIdentifier!
        broker.publish(conn: 5, "t", "two", qos: .exactlyOnce, packetIdentifier: 2)
        let refused = broker.pubRec(conn: 1, id, .unspecifiedError)
        #expect(refused.packets(to: 1).filter { if case .pubRel = $0 { true } else { false } }.isEmpty)
        #expect(refused.payloads(to: 1) == ["two"])
    }

    // Goal: the PUBLISH to a subscriber carries the remaining Message Expiry Interval, rounded
    // up to whole seconds (MQTT 5.0 §3.3.2.3.3 [MQTT-3.3.2-6]).
    @Test func messageExpiryRemainingIntervalOnDelivery() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1, cleanStart: false, expiry: 600)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.connect("p", conn: 5)
        #expect(
            broker.publish(conn: 5, "t", "now", qos: .atLeastOnce, packetIdentifier: 1, expiry: 10)
                .publishes(to: 1).first?.properties.messageExpiryIntervalSeconds == 10)
        broker.close(conn: 1)
        broker.publish(conn: 5, "t", "later", qos: .atLeastOnce, packetIdentifier: 2, expiry: 10)
        broker.advance(millis: 2_500)
        let resumed = broker.connect("s", conn: 2, cleanStart: false, expiry: 600)
        let later = resumed.publishes(to: 2).first { $0.payloadString == "later" }
        #expect(later?.properties.messageExpiryIntervalSeconds == 8)
        // The redelivered in-flight one was sent at 10 s and is now 2.5 s older.
        let now = resumed.publishes(to: 2).first { $0.payloadString == "now" }
        #expect(now?.properties.messageExpiryIntervalSeconds == 8)
        #expect(now?.dup == true)
    }

    // Goal: a message without expiry carries no Message Expiry Interval on delivery (MQTT 5.0
    // §3.3.2.3.3).
    @Test func noMessageExpiryIsPassedAsNone() {
        let broker = subscriberAndPublisher()
        let delivered = broker.publish(conn: 5, "t", qos: .atLeastOnce).publishes(to: 1)
        #expect(delivered.first?.properties.messageExpiryIntervalSeconds == nil)
    }

    // Goal: a queued message whose expiry passed before delivery is not delivered (MQTT 5.0
    // §3.3.2.3.3 [MQTT-3.3.2-5]).
    @Test func expiredQueuedMessageIsNotDelivered() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1, cleanStart: false, expiry: 600)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.close(conn: 1)
        broker.connect("p", conn: 5)
        broker.publish(conn: 5, "t", "short", qos: .atLeastOnce, packetIdentifier: 1, expiry: 5)
        broker.publish(conn: 5, "t", "long", qos: .atLeastOnce, packetIdentifier: 2, expiry: 50)
        broker.advance(seconds: 6)
        let resumed = broker.connect("s", conn: 2, cleanStart: false, expiry: 600)
        #expect(resumed.payloads(to: 2) == ["long"])
        #expect(resumed.publishes(to: 2).first?.properties.messageExpiryIntervalSeconds == 44)
    }

    // Goal: a message larger than the client's Maximum Packet Size is discarded as if delivered,
    // without taking a window slot (MQTT 5.0 §3.1.2.11.4 [MQTT-3.1.2-25]).
    @Test func tooLargeMessageIsDiscardedWithoutTakingAWindowSlot() {
        let broker = subscriberAndPublisher(subscriptionQoS: .atLeastOnce, receiveMaximum: 1, maximumPacketSize: 64)
        let big = String(repeating: "x", count: 100)
        #expect(broker.publish(conn: 5, "t", big, qos: .atLeastOnce, packetIdentifier: 1).publishes(to: 1).isEmpty)
        #expect(broker.publish(conn: 5, "t", big).publishes(to: 1).isEmpty)
        #expect(broker.session("s")?.outbound.inflight.isEmpty == true)
        #expect(
            broker.publish(conn: 5, "t", "small", qos: .atLeastOnce, packetIdentifier: 2).payloads(to: 1) == ["small"])
    }

    // Goal: the Maximum Packet Size check counts the whole encoded PUBLISH, so a message that
    // fits exactly is sent and one byte more is not (MQTT 5.0 §3.1.2.11.4).
    @Test func maximumPacketSizeBoundaryIsExact() {
        let probe = Publish(
            topicName: "t", payload: ByteBuffer(string: "12345"), qos: .atLeastOnce, packetIdentifier: 1)
        let size = UInt32(Packet.publish(probe).encodedLength(version: .v5))
        let broker = subscriberAndPublisher(subscriptionQoS: .atLeastOnce, maximumPacketSize: size)
        #expect(
            broker.publish(conn: 5, "t", "12345", qos: .atLeastOnce, packetIdentifier: 1).payloads(to: 1) == ["12345"])
        #expect(broker.publish(conn: 5, "t", "123456", qos: .atLeastOnce, packetIdentifier: 2).payloads(to: 1).isEmpty)
    }

    // Goal: the broker's own in-flight maximum caps a larger client Receive Maximum (MQTT 5.0
    // §4.9; BrokerLimits.inflightCountMax).
    @Test func inflightCountMaxCapsTheWindow() {
        var limits = BrokerLimits()
        limits.inflightCountMax = 2
        let broker = BrokerHarness(limits: limits)
        broker.connect("s", conn: 1, receiveMaximum: 100)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.connect("p", conn: 5)
        var delivered: [String] = []
        for index in 1...4 {
            delivered += broker.publish(conn: 5, "t", "\(index)", qos: .atLeastOnce, packetIdentifier: UInt16(index))
                .payloads(to: 1)
        }
        #expect(delivered == ["1", "2"])
        #expect(broker.session("s")?.outbound.queue.count == 2)
    }

    // Goal: outbound packet identifiers are never those of messages still in flight, also after
    // the counter wraps (MQTT 5.0 §2.2.1 [MQTT-2.2.1-3]).
    @Test func packetIdentifiersSkipThoseInFlight() {
        let broker = subscriberAndPublisher(subscriptionQoS: .atLeastOnce, receiveMaximum: 3)
        let held = broker.publish(conn: 5, "t", "held", qos: .atLeastOnce, packetIdentifier: 1).publishes(to: 1)[0]
            .packetIdentifier!
        var seen: Set<UInt16> = []
        // Cycle through the whole identifier space with one message held in flight.
        for round in 0..<Int(UInt16.max) {
            let sent = broker.publish(conn: 5, "t", "r", qos: .atLeastOnce, packetIdentifier: 2).publishes(to: 1)
            guard let id = sent.first?.packetIdentifier else {
                Issue.record("round \(round): nothing sent")
                return
            }
            #expect(id != held && id != 0)
            seen.insert(id)
            broker.pubAck(conn: 1, id)
        }
        #expect(seen.count == Int(UInt16.max) - 1)
    }
}

extension BrokerStateQoSTests {
    // Goal: a message in flight that no longer fits the Maximum Packet Size the client gave on
    // reconnect is not resent; it is discarded as if delivered and frees its slot (MQTT 5.0
    // §3.1.2.11.4 [MQTT-3.1.2-24], [MQTT-3.1.2-25]; §4.4 resend).
    @Test func redeliveryRespectsTheNewMaximumPacketSize() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1, cleanStart: false, expiry: 600, receiveMaximum: 1)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.connect("p", conn: 5)
        let big = String(repeating: "x", count: 100)
        #expect(broker.publish(conn: 5, "t", big, qos: .atLeastOnce, packetIdentifier: 1).payloads(to: 1) == [big])
        broker.publish(conn: 5, "t", "small", qos: .atLeastOnce, packetIdentifier: 2)  // queued
        broker.close(conn: 1)

        let resumed = broker.connect(
            "s", conn: 2, cleanStart: false, expiry: 600, receiveMaximum: 1, maximumPacketSize: 64)
        for publish in resumed.publishes(to: 2) {
            #expect(
                Packet.publish(publish).encodedLength(version: .v5) <= 64,
                "sent a PUBLISH larger than the client's maximum")
        }
        #expect(resumed.payloads(to: 2) == ["small"])
    }

    // Goal: a session resumed with a smaller Receive Maximum than it has messages in flight
    // gets only that many PUBLISHes at once, resent in order with DUP; each acknowledgement
    // lets the next one out, and new messages wait behind them (MQTT 5.0 §4.9 [MQTT-3.3.4-9],
    // §4.4, §4.6).
    @Test func resumptionRespectsTheNewReceiveMaximum() {
        let broker = BrokerHarness()
        broker.connect("s", conn: 1, cleanStart: false, expiry: 600, receiveMaximum: 10)
        broker.subscribe(conn: 1, "t", qos: .atLeastOnce)
        broker.connect("p", conn: 5)
        for index in 0..<5 {
            broker.publish(conn: 5, "t", "m\(index)", qos: .atLeastOnce, packetIdentifier: UInt16(index + 1))
        }
        broker.close(conn: 1)
        broker.publish(conn: 5, "t", "new", qos: .atLeastOnce, packetIdentifier: 9)

        let resumed = broker.connect("s", conn: 2, cleanStart: false, expiry: 600, receiveMaximum: 2)
        #expect(resumed.payloads(to: 2) == ["m0", "m1"])
        #expect(resumed.publishes(to: 2).allSatisfy { $0.dup })
        let identifiers = resumed.publishes(to: 2).compactMap(\.packetIdentifier)
        var outstanding = identifiers
        var received = resumed.payloads(to: 2)
        while let first = outstanding.first {
            outstanding.removeFirst()
            let next = broker.pubAck(conn: 2, first).publishes(to: 2)
            #expect(next.count <= 1, "one acknowledgement lets one message out")
            received += next.map(\.payloadString)
            outstanding += next.compactMap(\.packetIdentifier)
            #expect(outstanding.count <= 2, "more than Receive Maximum out at once")
        }
        #expect(received == ["m0", "m1", "m2", "m3", "m4", "new"])
    }
}
