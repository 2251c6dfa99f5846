import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Drives one `BrokerState` with events at a test-controlled ordered time, so that broker
/// scenarios read as scripts: connect, subscribe, publish, advance time, tick. Every helper
/// returns the actions of exactly the event it applied.
final class BrokerHarness {
    let state: BrokerState
    /// The ordered clock of the next event, in milliseconds.
    var now: UInt64

    init(limits: BrokerLimits = BrokerLimits(), now: UInt64 = 1_000_000) {
        self.state = BrokerState(limits: limits)
        self.now = now
    }

    @discardableResult
    func apply(_ event: BrokerEvent) -> [BrokerAction] {
        var actions: [BrokerAction] = []
        state.apply(event, atMillis: now, into: &actions)
        return actions
    }

    func advance(millis: UInt64) { now += millis }
    func advance(seconds: UInt64) { now += seconds * 1000 }

    @discardableResult
    func connect(
        _ client: String, conn: UInt64, version: ProtocolVersion = .v5, cleanStart: Bool = true,
        expiry: UInt32 = 0, will: Will? = nil, receiveMaximum: UInt16 = .max,
        maximumPacketSize: UInt32? = nil
    ) -> [BrokerAction] {
        apply(
            .sessionOpen(
                SessionOpen(
                    connection: cid(conn), clientIdentifier: client, protocolVersion: version,
                    cleanStart: cleanStart, sessionExpiryIntervalSeconds: expiry, will: will,
                    receiveMaximum: receiveMaximum, maximumPacketSize: maximumPacketSize)))
    }

    @discardableResult
    func subscribe(
        conn: UInt64, _ filter: String, qos: QoS = .atLeastOnce, noLocal: Bool = false,
        retainAsPublished: Bool = false, retainHandling: RetainHandling = .sendOnSubscribe,
        identifier: UInt32? = nil, packetIdentifier: UInt16 = 1
    ) -> [BrokerAction] {
        subscribe(
            conn: conn,
            [
                TopicSubscription(
                    topicFilter: filter,
                    options: SubscriptionOptions(
                        qos: qos, noLocal: noLocal, retainAsPublished: retainAsPublished,
                        retainHandling: retainHandling))
            ],
            identifier: identifier, packetIdentifier: packetIdentifier)
    }

    @discardableResult
    func subscribe(
        conn: UInt64, _ subscriptions: [TopicSubscription], identifier: UInt32? = nil,
        packetIdentifier: UInt16 = 1
    ) -> [BrokerAction] {
        var properties = Properties()
        if let identifier { properties.subscriptionIdentifiers = [identifier] }
        return apply(
            .subscribe(
                cid(conn),
                Subscribe(
                    packetIdentifier: packetIdentifier, subscriptions: subscriptions,
                    properties: properties)))
    }

    @discardableResult
    func unsubscribe(conn: UInt64, _ filters: [String], packetIdentifier: UInt16 = 2) -> [BrokerAction] {
        apply(.unsubscribe(cid(conn), Unsubscribe(packetIdentifier: packetIdentifier, topicFilters: filters)))
    }

    @discardableResult
    func publish(
        conn: UInt64, _ topic: String, _ payload: String = "m", qos: QoS = .atMostOnce,
        retain: Bool = false, packetIdentifier: UInt16? = nil, dup: Bool = false,
        expiry: UInt32? = nil
    ) -> [BrokerAction] {
        var properties = Properties()
        properties.messageExpiryIntervalSeconds = expiry
        let identifier = qos == .atMostOnce ? nil : (packetIdentifier ?? 1)
        return apply(
            .publish(
                cid(conn),
                Publish(
                    topicName: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain,
                    dup: dup, packetIdentifier: identifier, properties: properties)))
    }

    @discardableResult
    func close(conn: UInt64, _ cause: SessionClose.Cause = .abnormal, expiry: UInt32? = nil) -> [BrokerAction] {
        apply(.sessionClose(cid(conn), SessionClose(cause: cause, sessionExpiryIntervalSeconds: expiry)))
    }

    @discardableResult
    func tick() -> [BrokerAction] { apply(.tick) }

    @discardableResult
    func pubAck(conn: UInt64, _ packetIdentifier: UInt16) -> [BrokerAction] {
        apply(.pubAck(cid(conn), packetIdentifier: packetIdentifier))
    }

    @discardableResult
    func pubRec(conn: UInt64, _ packetIdentifier: UInt16, _ reasonCode: ReasonCode = .success) -> [BrokerAction] {
        apply(.pubRec(cid(conn), packetIdentifier: packetIdentifier, reasonCode: reasonCode))
    }

    @discardableResult
    func pubRel(conn: UInt64, _ packetIdentifier: UInt16) -> [BrokerAction] {
        apply(.pubRel(cid(conn), packetIdentifier: packetIdentifier))
    }

    @discardableResult
    func pubComp(conn: UInt64, _ packetIdentifier: UInt16) -> [BrokerAction] {
        apply(.pubComp(cid(conn), packetIdentifier: packetIdentifier))
    }

    /// The session of a client, for white-box checks of what the wire cannot show.
    func session(_ client: String) -> Session? { state.sessions[ExactString(client)] }
}

func cid(_ local: UInt64) -> ConnectionID { ConnectionID(node: 0, local: local) }

func will(
    _ topic: String, _ payload: String = "gone", qos: QoS = .atMostOnce, retain: Bool = false,
    delay: UInt32? = nil
) -> Will {
    var properties = Properties()
    properties.willDelayIntervalSeconds = delay
    return Will(
        topicName: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, properties: properties)
}

extension Publish {
    var payloadString: String { String(buffer: payload) }
}

extension Array where Element == BrokerAction {
    /// The packets sent to one connection, in order.
    func packets(to conn: UInt64) -> [Packet] {
        compactMap { action in
            guard case .send(let connection, let packet) = action, connection == cid(conn) else { return nil }
            return packet
        }
    }

    /// The PUBLISH packets sent to one connection, in order.
    func publishes(to conn: UInt64) -> [Publish] {
        packets(to: conn).compactMap { if case .publish(let publish) = $0 { publish } else { nil } }
    }

    /// Payloads of the PUBLISHes to one connection, in order.
    func payloads(to conn: UInt64) -> [String] { publishes(to: conn).map(\.payloadString) }

    /// The CONNACK sent to one connection, if any.
    func connAck(to conn: UInt64) -> (sessionPresent: Bool, reasonCode: ReasonCode)? {
        for action in self {
            if case .connAck(let connection, let sessionPresent, let reasonCode) = action, connection == cid(conn) {
                return (sessionPresent, reasonCode)
            }
        }
        return nil
    }

    var disconnects: [(ConnectionID, ReasonCode)] {
        compactMap { if case .disconnect(let connection, let code) = $0 { (connection, code) } else { nil } }
    }

    /// The index of the first action matching, for ordering assertions.
    func firstIndex(to conn: UInt64, where predicate: (Packet) -> Bool) -> Int? {
        firstIndex { action in
            guard case .send(let connection, let packet) = action, connection == cid(conn) else { return false }
            return predicate(packet)
        }
    }

    var descriptions: [String] { map { String(describing: $0) } }
}

extension Packet {
    var isPublish: Bool { if case .publish = self { true } else { false } }
}

// Test-only: actions compare by value so that expectations can list exact actions.
extension BrokerAction: Equatable {
    public static func == (lhs: BrokerAction, rhs: BrokerAction) -> Bool {
        switch (lhs, rhs) {
        case (.connAck(let a, let b, let c), .connAck(let x, let y, let z)): a == x && b == y && c == z
        case (.send(let a, let b), .send(let x, let y)): a == x && b == y
        case (.disconnect(let a, let b), .disconnect(let x, let y)): a == x && b == y
        default: false
        }
    }
}
