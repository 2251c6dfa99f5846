import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// What the cluster adds to the core: the loss of a node as an ordered event.
@Suite struct BrokerStateClusterTests {
    static func open(_ broker: BrokerHarness, _ connection: ConnectionID, _ client: String, will: Will? = nil) {
        broker.apply(
            .sessionOpen(
                SessionOpen(
                    connection: connection, clientIdentifier: client, protocolVersion: .v5, cleanStart: false,
                    sessionExpiryIntervalSeconds: 60, will: will, receiveMaximum: 10, maximumPacketSize: nil)))
    }

    // Goal: the clients of a lost node get their wills and their session expiry starts; the
    // lost node, if alive, is told to close those connections; sessions of the node's newer
    // incarnation and of other nodes stay attached.
    @Test func nodeLostEndsTheSessionsOfThatIncarnationOnly() {
        let broker = BrokerHarness()
        let lost = ConnectionID(node: 2, incarnation: 7, local: 1)
        let newer = ConnectionID(node: 2, incarnation: 8, local: 1)
        let other = ConnectionID(node: 1, incarnation: 7, local: 1)
        Self.open(broker, lost, "robot", will: will("will/robot", "gone", qos: .atLeastOnce))
        Self.open(broker, newer, "fresh")
        Self.open(broker, other, "watcher")
        broker.apply(
            .subscribe(
                other,
                Subscribe(
                    packetIdentifier: 1,
                    subscriptions: [
                        TopicSubscription(topicFilter: "will/#", options: SubscriptionOptions(qos: .atLeastOnce))
                    ])))
        #expect(broker.state.attachedIncarnation(of: 2) == 8)

        let actions = broker.apply(.nodeLost(node: 2, incarnation: 7))
        #expect(actions.disconnects.map(\.0) == [lost])
        #expect(actions.disconnects.map(\.1) == [.serverUnavailable])
        let toWatcher = actions.compactMap { action -> String? in
            guard case .send(let connection, .publish(let publish)) = action, connection == other else { return nil }
            return String(buffer: publish.payload)
        }
        #expect(toWatcher == ["gone"])
        #expect(broker.session("robot")?.connection == nil, "detached, expiring")
        #expect(broker.session("fresh")?.connection == newer)
        #expect(broker.session("watcher")?.connection == other)
        // Ordered twice (several nodes noticed): the second is a no-op.
        #expect(broker.apply(.nodeLost(node: 2, incarnation: 7)).isEmpty)
    }

    // Goal: nodeLost survives the log's canonical encoding.
    @Test func nodeLostRoundTripsThroughTheCodec() throws {
        let event = BrokerEvent.nodeLost(node: 3, incarnation: 1_700_000_000)
        #expect(try BrokerEvent.decode(event.encoded) == event)
        #expect(event.originNode == nil)
        #expect(event.isNeverRefused)
    }
}
