import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Will messages in the broker core: when they are published, delayed, cancelled, retained.
@Suite struct BrokerStateWillTests {
    /// A broker with a watcher on conn 9 subscribed to "will/#".
    func watched() -> BrokerHarness {
        let broker = BrokerHarness()
        broker.connect("watcher", conn: 9)
        broker.subscribe(conn: 9, "will/#", qos: .atLeastOnce)
        return broker
    }

    // Goal: an abnormal close publishes the will; a DISCONNECT 0x00 discards it; DISCONNECT
    // 0x04 publishes it (MQTT 5.0 §3.1.2.5 [MQTT-3.1.2-8], [MQTT-3.1.2-10], §3.14.2.1); a will
    // its user may no longer publish (checked again at the close) is discarded.
    @Test(arguments: [
        (SessionClose.Cause.abnormal, true),
        (SessionClose.Cause.normalDisconnect, false),
        (SessionClose.Cause.disconnectWithWill, true),
        (SessionClose.Cause.willRefused, false),
    ])
    func willOnClose(cause: SessionClose.Cause, published: Bool) {
        let broker = watched()
        broker.connect("c", conn: 1, will: will("will/c", "bye", qos: .atLeastOnce))
        let closed = broker.close(conn: 1, cause)
        #expect(closed.payloads(to: 9) == (published ? ["bye"] : []))
        if published {
            #expect(closed.publishes(to: 9).first?.qos == .atLeastOnce)
            #expect(closed.publishes(to: 9).first?.topicName == "will/c")
        }
        // The will is published once at most: a later tick adds nothing.
        broker.advance(seconds: 100)
        #expect(broker.tick().isEmpty)
    }

    // Goal: a will with a delay is published at the first tick after the delay, not before
    // (MQTT 5.0 §3.1.3.2.2 Will Delay Interval).
    @Test func willDelay() {
        let broker = watched()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 600, will: will("will/c", delay: 5))
        #expect(broker.close(conn: 1).publishes(to: 9).isEmpty)
        broker.advance(millis: 4_999)
        #expect(broker.tick().publishes(to: 9).isEmpty)
        broker.advance(millis: 1)
        #expect(broker.tick().payloads(to: 9) == ["gone"])
        broker.advance(seconds: 10)
        #expect(broker.tick().isEmpty)
    }

    // Goal: a reconnect before the will delay passed cancels the will (MQTT 5.0 §3.1.3.2.2
    // [MQTT-3.1.3-9]).
    @Test func willDelayCancelledByReconnect() {
        let broker = watched()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 600, will: will("will/c", delay: 5))
        broker.close(conn: 1)
        broker.advance(seconds: 2)
        #expect(broker.connect("c", conn: 2, cleanStart: false, expiry: 600).publishes(to: 9).isEmpty)
        broker.advance(seconds: 10)
        #expect(broker.tick().publishes(to: 9).isEmpty)
        // The new connection brought no will: its close publishes nothing.
        #expect(broker.close(conn: 2).publishes(to: 9).isEmpty)
    }

    // Goal: a will whose delay is longer than the session expiry is published when the session
    // ends (MQTT 5.0 §3.1.3.2.2: "or the Session ends, whichever happens first").
    @Test func willPublishedAtSessionEndWhenDelayExceedsExpiry() {
        let broker = watched()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 10, will: will("will/c", delay: 60))
        broker.close(conn: 1)
        broker.advance(millis: 9_999)
        #expect(broker.tick().publishes(to: 9).isEmpty)
        #expect(broker.state.sessionCount == 2)
        broker.advance(millis: 1)
        #expect(broker.tick().payloads(to: 9) == ["gone"])
        #expect(broker.state.sessionCount == 1)
    }

    // Goal: with Session Expiry 0 the session ends at the close, so a delayed will goes out at
    // once (MQTT 5.0 §3.1.3.2.2, §3.1.2.11.2).
    @Test func delayedWillOfAnEndingSessionIsPublishedAtClose() {
        let broker = watched()
        broker.connect("c", conn: 1, expiry: 0, will: will("will/c", delay: 30))
        #expect(broker.close(conn: 1).payloads(to: 9) == ["gone"])
    }

    // Goal: a will with the retain flag becomes the retained message of its topic (MQTT 5.0
    // §3.1.2.7 Will Retain [MQTT-3.1.2-15]).
    @Test func retainedWill() {
        let broker = watched()
        broker.connect("c", conn: 1, will: will("will/c", "last words", retain: true))
        broker.close(conn: 1)
        #expect(broker.state.retainedMessageCount == 1)
        broker.connect("late", conn: 2)
        let retained = broker.subscribe(conn: 2, "will/c").publishes(to: 2)
        #expect(retained.map(\.payloadString) == ["last words"])
        #expect(retained.first?.retain == true)
    }

    // Goal: the will carries its properties to subscribers, but not the Will Delay Interval,
    // and its Message Expiry counts from publication (MQTT 5.0 §3.1.3.2).
    @Test func willPropertiesArePassedOn() {
        let broker = watched()
        var lastWill = will("will/c", delay: 1)
        lastWill.properties.contentType = "text/plain"
        lastWill.properties.messageExpiryIntervalSeconds = 30
        broker.connect("c", conn: 1, cleanStart: false, expiry: 60, will: lastWill)
        broker.close(conn: 1)
        broker.advance(seconds: 1)
        let delivered = broker.tick().publishes(to: 9)
        #expect(delivered.count == 1)
        #expect(delivered.first?.properties.contentType == "text/plain")
        #expect(delivered.first?.properties.messageExpiryIntervalSeconds == 30)
        #expect(delivered.first?.properties.willDelayIntervalSeconds == nil)
    }

    // Goal: on session takeover the old connection's will (delay 0) is published (MQTT 5.0
    // §3.1.4 point 3, §3.1.2.5: the old Network Connection closed without DISCONNECT).
    @Test func takeoverPublishesTheOldWill() {
        let broker = watched()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 60, will: will("will/c", "old"))
        let takeover = broker.connect("c", conn: 2, cleanStart: false, expiry: 60, will: will("will/c", "new"))
        #expect(takeover.payloads(to: 9) == ["old"])
        // The new connection's will is the one that counts now.
        #expect(broker.close(conn: 2).payloads(to: 9) == ["new"])
    }

    // Goal: a delayed will of the taken-over connection is not published when the session
    // continues (MQTT 5.0 §3.1.3.2.2 [MQTT-3.1.3-9]: a new connection before the delay).
    @Test func takeoverWithDelayedWillAndSessionContinuing() {
        let broker = watched()
        broker.connect("c", conn: 1, cleanStart: false, expiry: 60, will: will("will/c", "old", delay: 10))
        #expect(broker.connect("c", conn: 2, cleanStart: false, expiry: 60).publishes(to: 9).isEmpty)
        broker.advance(seconds: 20)
        #expect(broker.tick().publishes(to: 9).isEmpty)
    }

    // Goal: the wills of several sessions falling due at one tick are published in deadline
    // order, whatever the set order (determinism of the ordered output).
    @Test func dueWillsArePublishedInDeadlineOrder() {
        let broker = watched()
        for (index, name) in ["e", "d", "c", "b", "a"].enumerated() {
            broker.connect(
                name, conn: UInt64(index + 1), cleanStart: false, expiry: 600,
                will: will("will/\(name)", name, delay: 10))
        }
        for (index, _) in ["e", "d", "c", "b", "a"].enumerated() {
            broker.close(conn: UInt64(index + 1))
            broker.advance(millis: 1)
        }
        broker.advance(seconds: 20)
        #expect(broker.tick().payloads(to: 9) == ["e", "d", "c", "b", "a"])
    }
}
