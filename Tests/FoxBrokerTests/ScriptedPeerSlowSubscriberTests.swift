import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// A subscriber whose socket does not take what is written (the channel is unwritable): its
/// QoS 0 messages are dropped, its QoS 1/2 messages are not (their window and queue bound them),
/// and it gets QoS 0 messages again once the channel is writable.
@Suite struct ScriptedPeerSlowSubscriberTests {
    // Goal: while unwritable, QoS 0 is dropped (MQTT 5.0 §4.3.1, at most once) and QoS 1 still
    // delivered, in order; after writability returns, QoS 0 flows again.
    @Test func atMostOnceDroppedWhileUnwritable() async throws {
        let broker = ScriptedBroker()
        let subscriber = try await broker.peer(1)
        try await subscriber.send(ScriptedPeerTests.connect("slow"))
        guard case .connAck = try await subscriber.next() else {
            Issue.record("expected CONNACK")
            return
        }
        try await subscriber.send(ScriptedPeerTests.subscribe("t", qos: .atLeastOnce))
        #expect(try await subscriber.next() == .subAck(SubAck(packetIdentifier: 1, reasonCodes: [.grantedQoS1])))

        let publisher = try await broker.peer(2)
        try await publisher.send(ScriptedPeerTests.connect("fast"))
        guard case .connAck = try await publisher.next() else {
            Issue.record("expected CONNACK")
            return
        }
        func publish(_ payload: String, qos: QoS, id: UInt16? = nil) async throws {
            try await publisher.send(
                .publish(
                    Publish(topicName: "t", payload: ByteBuffer(string: payload), qos: qos, packetIdentifier: id)))
            if qos == .atLeastOnce { #expect(try await publisher.next() == .pubAck(PubAck(packetIdentifier: id!))) }
        }

        subscriber.channel.isWritable = false
        try await publish("dropped", qos: .atMostOnce)
        try await publish("kept", qos: .atLeastOnce, id: 7)
        guard case .publish(let kept) = try await subscriber.next() else {
            Issue.record("expected the QoS 1 PUBLISH")
            return
        }
        #expect(String(buffer: kept.payload) == "kept")

        subscriber.channel.isWritable = true
        try await publish("after", qos: .atMostOnce)
        guard case .publish(let after) = try await subscriber.next() else {
            Issue.record("expected the QoS 0 PUBLISH after writability returned")
            return
        }
        #expect(String(buffer: after.payload) == "after")
        try await subscriber.expectSilence()
        await subscriber.close()
        await publisher.close()
        try await broker.shutdown()
    }
}
