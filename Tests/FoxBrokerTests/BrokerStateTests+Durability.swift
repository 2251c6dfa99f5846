import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// What the durable seam added to the core: node restarts as ordered events, limits changed
/// only by an ordered event, the deadline index, and bounded retained messages.
@Suite struct BrokerStateDurabilityTests {
    static func connection(_ local: UInt64, incarnation: UInt32) -> ConnectionID {
        ConnectionID(node: 0, incarnation: incarnation, local: local)
    }

    // Goal: a node restart ends the sessions still attached to the previous incarnation as a
    // network loss would (will published, expiry starts), and a new connection that happens to
    // reuse an old number acts on nothing of the restored session (R3).
    @Test func nodeStartedEndsSessionsOfEarlierIncarnations() {
        let broker = BrokerHarness()
        let old = Self.connection(5, incarnation: 1)
        broker.apply(
            .sessionOpen(
                SessionOpen(
                    connection: old, clientIdentifier: "dev", protocolVersion: .v5, cleanStart: false,
                    sessionExpiryIntervalSeconds: 60, will: will("will/dev", "lost", qos: .atLeastOnce),
                    receiveMaximum: 10,
                    maximumPacketSize: nil)))
        let watcher = Self.connection(6, incarnation: 1)
        broker.apply(
            .sessionOpen(
                SessionOpen(
                    connection: watcher, clientIdentifier: "watcher", protocolVersion: .v5, cleanStart: false,
                    sessionExpiryIntervalSeconds: 600, will: nil, receiveMaximum: 10, maximumPacketSize: nil)))
        broker.apply(
            .subscribe(
                watcher,
                Subscribe(
                    packetIdentifier: 1,
                    subscriptions: [
                        TopicSubscription(topicFilter: "will/#", options: SubscriptionOptions(qos: .atLeastOnce))
                    ])))
        // Incarnation 2 reuses the local number 5: its PUBLISH must not act as "dev".
        let reused = Self.connection(5, incarnation: 2)
        #expect(
            broker.apply(
                .publish(
                    reused,
                    Publish(
                        topicName: "will/x", payload: ByteBuffer(string: "forged"), qos: .atLeastOnce,
                        packetIdentifier: 1))
            ).isEmpty)
        let started = broker.apply(.nodeStarted(node: 0, incarnation: 2))
        #expect(broker.session("dev")?.connection == nil)
        #expect(broker.session("watcher")?.connection == nil)
        #expect(broker.state.connectedSessionCount == 0)
        // The will went into the watcher's session, to be sent when it is back.
        let watcherSession = broker.session("watcher")
        let held =
            (watcherSession?.outbound.queue.map { String(buffer: $0.message.payload) } ?? [])
            + (watcherSession?.outbound.inflight.values.compactMap { state -> String? in
                if case .awaitingAcknowledgement(let queued) = state {
                    String(buffer: queued.message.payload)
                } else {
                    nil
                }
            } ?? [])
        #expect(held == ["lost"])
        #expect(started.isEmpty, "no packets for connections of a dead process: \(started)")
        // Expiry runs from the restart: 60 s later "dev" is gone, "watcher" stays.
        broker.advance(seconds: 61)
        broker.tick()
        #expect(broker.session("dev") == nil)
        #expect(broker.session("watcher") != nil)
        // A node's start does not touch sessions of other nodes or of its own new incarnation.
        let current = Self.connection(1, incarnation: 2)
        broker.apply(
            .sessionOpen(
                SessionOpen(
                    connection: current, clientIdentifier: "now", protocolVersion: .v5, cleanStart: true,
                    sessionExpiryIntervalSeconds: 0, will: nil, receiveMaximum: 10, maximumPacketSize: nil)))
        broker.apply(.nodeStarted(node: 0, incarnation: 2))
        broker.apply(.nodeStarted(node: 1, incarnation: 9))
        #expect(broker.session("now")?.connection == current)
    }

    // Goal: the limits change only by an ordered event, and the new ones decide from then on.
    @Test func configureChangesTheLimitsInOrder() {
        var limits = BrokerLimits()
        limits.subscriptionCountMax = 1
        let broker = BrokerHarness(limits: limits)
        broker.connect("c", conn: 1)
        #expect(broker.subscribe(conn: 1, "a").packets(to: 1).count == 1)
        #expect(
            broker.subscribe(conn: 1, "b", packetIdentifier: 2).packets(to: 1) == [
                .subAck(SubAck(packetIdentifier: 2, reasonCodes: [.quotaExceeded]))
            ])
        limits.subscriptionCountMax = 2
        broker.apply(.configure(limits))
        #expect(broker.state.limits.subscriptionCountMax == 2)
        #expect(
            broker.subscribe(conn: 1, "b", packetIdentifier: 3).packets(to: 1) == [
                .subAck(SubAck(packetIdentifier: 3, reasonCodes: [.grantedQoS1]))
            ])
    }

    // Goal: the tick visits only what is due: a will and an expiry whose deadlines moved (the
    // client came back) are skipped, retained messages are purged when they expire, and the
    // index tells the edge when the next tick is worth ordering (nil when nothing is pending).
    @Test func theDeadlineIndexActsOnDueEntriesOnly() {
        let broker = BrokerHarness()
        #expect(broker.state.nextDeadlineMillis == nil)
        broker.connect("c", conn: 1, cleanStart: false, expiry: 10, will: will("w", "x", delay: 5))
        broker.close(conn: 1)
        #expect(broker.state.nextDeadlineMillis == broker.now + 5_000)
        // Back before the delay: the will and the expiry entries are stale now.
        broker.advance(seconds: 2)
        broker.connect("c", conn: 2, cleanStart: false, expiry: 10)
        broker.advance(seconds: 20)
        #expect(broker.tick().isEmpty)
        #expect(broker.session("c")?.connection == cid(2))
        #expect(broker.state.nextDeadlineMillis == nil)
        // A retained message with a 3 s expiry is purged by the tick after it expires.
        broker.publish(conn: 2, "r", "v", qos: .atMostOnce, retain: true, expiry: 3)
        #expect(broker.state.retainedMessageCount == 1)
        broker.advance(seconds: 2)
        broker.tick()
        #expect(broker.state.retainedMessageCount == 1)
        broker.advance(seconds: 2)
        broker.tick()
        #expect(broker.state.retainedMessageCount == 0)
        // Replaced before it expired: the old entry is stale, the new message stays.
        broker.publish(conn: 2, "r", "v1", qos: .atMostOnce, retain: true, expiry: 3)
        broker.advance(seconds: 1)
        broker.publish(conn: 2, "r", "v2", qos: .atMostOnce, retain: true)
        broker.advance(seconds: 5)
        broker.tick()
        #expect(broker.state.retainedMessageCount == 1)
    }

    // Goal: stale entries do not grow the index for ever: a client that comes and goes 10,000
    // times with a long expiry leaves an index bounded by the state, not by its history.
    @Test func theDeadlineIndexStaysBounded() {
        let broker = BrokerHarness()
        for round in 0..<10_000 {
            broker.connect("c", conn: UInt64(round * 2 + 1), cleanStart: false, expiry: 86_400)
            broker.close(conn: UInt64(round * 2 + 1))
            if round % 100 == 0 { broker.tick() }
        }
        broker.tick()
        #expect(broker.state.deadlines.count <= 1024 + 4)
    }

    // Goal: retained messages are bounded by count and bytes: a new retained topic beyond
    // either is refused with 0x97 in the PUBACK and not delivered (5.0), the connection is
    // closed (3.1.1, which has no such code); replacing or clearing a topic is always allowed.
    @Test func retainedMessagesAreBounded() {
        var limits = BrokerLimits()
        limits.retainedMessageCountMax = 2
        limits.retainedBytesMax = 100
        let broker = BrokerHarness(limits: limits)
        broker.connect("sub", conn: 9)
        broker.subscribe(conn: 9, "#", qos: .atLeastOnce)
        broker.connect("p", conn: 1)
        #expect(
            broker.publish(conn: 1, "a", "1", qos: .atLeastOnce, retain: true).packets(to: 1).first
                == .pubAck(PubAck(packetIdentifier: 1)))
        broker.publish(conn: 1, "b", "2", qos: .atLeastOnce, retain: true)
        let refused = broker.publish(conn: 1, "c", "3", qos: .atLeastOnce, retain: true, packetIdentifier: 5)
        #expect(refused.packets(to: 1) == [.pubAck(PubAck(packetIdentifier: 5, reasonCode: .quotaExceeded))])
        #expect(refused.publishes(to: 9).isEmpty)
        // Replacing "a" with a larger value within the byte budget is fine; beyond it, refused.
        #expect(
            broker.publish(
                conn: 1, "a", String(repeating: "x", count: 90), qos: .atLeastOnce, retain: true, packetIdentifier: 6
            ).packets(to: 1).first == .pubAck(PubAck(packetIdentifier: 6)))
        #expect(
            broker.publish(
                conn: 1, "b", String(repeating: "y", count: 20), qos: .atLeastOnce, retain: true, packetIdentifier: 7
            ).packets(to: 1).first == .pubAck(PubAck(packetIdentifier: 7, reasonCode: .quotaExceeded)))
        // Clearing is always allowed, and frees room.
        broker.publish(conn: 1, "a", "", qos: .atLeastOnce, retain: true, packetIdentifier: 8)
        #expect(
            broker.publish(conn: 1, "c", "3", qos: .atLeastOnce, retain: true, packetIdentifier: 9).packets(to: 1).first
                == .pubAck(PubAck(packetIdentifier: 9)))
        // 3.1.1: the connection is closed and the session ends as after a network loss.
        broker.connect("old", conn: 3, version: .v311)
        let closed = broker.publish(conn: 3, "d", "4", qos: .atLeastOnce, retain: true, packetIdentifier: 1)
        #expect(closed.disconnects.map(\.0) == [cid(3)])
        #expect(broker.session("old") == nil)
    }

    // Goal: on a takeover the old connection's will (delay 0) may be delivered to the session
    // itself (it subscribes to its own will topic); the delivery must stay in the session.
    // Before, the copy written back after the will undid the delivery.
    @Test func takeoverWillDeliveredToTheSameSessionIsKept() {
        let broker = BrokerHarness()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 600, will: will("w/c", "gone", qos: .atLeastOnce))
        broker.subscribe(conn: 1, "w/#", qos: .atLeastOnce)
        let takeover = broker.connect("c", conn: 2, cleanStart: false, expiry: 600, receiveMaximum: 10)
        #expect(takeover.payloads(to: 2) == ["gone"])
    }

    // Goal: a QoS 2 PUBLISH resent after the access rules changed, whose first copy was taken
    // (its identifier unreleased), completes its exchange instead of getting 0x87 and leaving
    // the identifier taken; a later new message with that identifier is then delivered.
    @Test func deniedResendOfAnUnreleasedIdentifierCompletes() {
        let broker = BrokerHarness()
        broker.connect("sub", conn: 9)
        broker.subscribe(conn: 9, "t", qos: .exactlyOnce)
        broker.connect("p", conn: 1)
        broker.publish(conn: 1, "t", "first", qos: .exactlyOnce, packetIdentifier: 5)
        let resent = broker.apply(.publishDenied(cid(1), packetIdentifier: 5, qos: .exactlyOnce))
        #expect(resent.packets(to: 1) == [.pubRec(PubRec(packetIdentifier: 5))])
        broker.pubRel(conn: 1, 5)
        #expect(
            broker.publish(conn: 1, "t", "second", qos: .exactlyOnce, packetIdentifier: 5).payloads(to: 9).isEmpty
                == false)
    }
}
