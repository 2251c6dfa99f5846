import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, so every run of a seed sees
/// the same events on every platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &self)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }

    /// A topic name of one to four levels among a few, with empty levels and `$` topics, so
    /// that random topics and filters often match.
    mutating func topicName() -> String {
        var levels = (0..<Int.random(in: 1...4, using: &self)).map { _ in pick(["a", "b", "c", "", "$x"]) }
        if chance(15) { levels[0] = "$SYS" }
        let topic = levels.joined(separator: "/")
        return topic.isEmpty ? "a" : topic
    }

    /// A topic filter over the same levels, with `+`, a trailing `#` and `$SYS`.
    mutating func topicFilter() -> String {
        var levels = (0..<Int.random(in: 1...4, using: &self)).map { _ in pick(["a", "b", "+", "", "$x"]) }
        if chance(10) { levels[0] = "$SYS" }
        if chance(30) { levels[levels.count - 1] = "#" }
        let filter = levels.joined(separator: "/")
        return filter.isEmpty ? "#" : filter
    }
}

/// Generates plausible (and some implausible) event sequences for ~5 clients over a small topic
/// alphabet. It watches the actions of the state it drives to acknowledge what was sent, and
/// also sends stale events from connections that were taken over or closed.
struct EventGenerator {
    static let clients = ["c0", "c1", "c2", "c3", "c4"]
    static let topics = ["a", "a/b", "a/c", "b", "b/b", "$SYS/x", "a/b/c"]
    static let filters = [
        "a", "a/b", "a/+", "a/#", "#", "+", "+/b", "$SYS/#", "$share/g/a", "$share/g/#",
        "$share/h/a/+", "$share/g/b", "a/#/b", "$share/g",
    ]

    var random: SplitMix64
    var now: UInt64 = 1_000_000
    var nextConnection: UInt64 = 1
    /// The connection each client uses now, if any.
    var attached: [String: UInt64] = [:]
    /// Connections that ended (closed or taken over), for stale events.
    var ended: [UInt64] = []
    /// Outbound packet identifiers the broker sent per connection and their state.
    var awaitingAck: [UInt64: [UInt16]] = [:]
    var awaitingComp: [UInt64: [UInt16]] = [:]
    /// Inbound QoS 2 identifiers a client published and has not released.
    var unreleased: [UInt64: [UInt16]] = [:]

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    /// Any connection: usually a live one, sometimes a stale one.
    mutating func someConnection() -> UInt64? {
        if !ended.isEmpty && random.chance(10) { return random.pick(ended) }
        let live = attached.values.sorted()
        return live.isEmpty ? nil : random.pick(live)
    }

    mutating func next() -> BrokerEvent {
        now += UInt64.random(in: 0...400, using: &random)
        let roll = Int.random(in: 0..<100, using: &random)
        switch roll {
        case 0..<14: return connect()
        case 14..<26: if let event = subscribe() { return event }
        case 26..<30: if let event = unsubscribe() { return event }
        case 30..<58: if let event = publish() { return event }
        case 58..<78: if let event = acknowledge() { return event }
        case 78..<86: if let event = close() { return event }
        default: break
        }
        now += UInt64.random(in: 0...4_000, using: &random)
        return .tick
    }

    mutating func connect() -> BrokerEvent {
        let client = random.pick(Self.clients)
        let connection = nextConnection
        nextConnection += 1
        if let old = attached[client] { ended.append(old) }
        attached[client] = connection
        var lastWill: Will?
        if random.chance(40) {
            lastWill = will(
                random.pick(Self.topics), random.pick(["w", ""]),
                qos: random.pick([.atMostOnce, .atLeastOnce, .exactlyOnce]),
                retain: random.chance(30), delay: random.pick([nil, 0, 2, 30]))
        }
        return .sessionOpen(
            SessionOpen(
                connection: cid(connection), clientIdentifier: client,
                protocolVersion: random.pick([.v5, .v311]), cleanStart: random.chance(40),
                sessionExpiryIntervalSeconds: random.pick([0, 3, 60, UInt32.max]), will: lastWill,
                receiveMaximum: random.pick([1, 2, 3, UInt16.max]),
                maximumPacketSize: random.pick([nil, nil, 30, 200])))
    }

    mutating func subscribe() -> BrokerEvent? {
        guard let connection = someConnection() else { return nil }
        let count = Int.random(in: 1...3, using: &random)
        let subscriptions = (0..<count).map { _ in
            TopicSubscription(
                topicFilter: random.pick(Self.filters),
                options: SubscriptionOptions(
                    qos: random.pick([.atMostOnce, .atLeastOnce, .exactlyOnce]), noLocal: random.chance(20),
                    retainAsPublished: random.chance(30),
                    retainHandling: random.pick([.sendOnSubscribe, .sendOnNewSubscribe, .doNotSend])))
        }
        var properties = Properties()
        if random.chance(50) { properties.subscriptionIdentifiers = [UInt32.random(in: 1...5, using: &random)] }
        // Sometimes the access rules refused one of them at the edge.
        let denied = random.chance(15) ? [Int.random(in: 0..<count, using: &random)] : []
        return .subscribe(
            cid(connection),
            Subscribe(
                packetIdentifier: UInt16.random(in: 1...100, using: &random), subscriptions: subscriptions,
                properties: properties),
            denied: denied)
    }

    mutating func unsubscribe() -> BrokerEvent? {
        guard let connection = someConnection() else { return nil }
        return .unsubscribe(
            cid(connection),
            Unsubscribe(
                packetIdentifier: UInt16.random(in: 1...100, using: &random), topicFilters: [random.pick(Self.filters)])
        )
    }

    mutating func publish() -> BrokerEvent? {
        guard let connection = someConnection() else { return nil }
        let qos: QoS = random.pick([.atMostOnce, .atLeastOnce, .exactlyOnce])
        var properties = Properties()
        if random.chance(25) { properties.messageExpiryIntervalSeconds = random.pick([1, 5, 100]) }
        let packetIdentifier: UInt16? = qos == .atMostOnce ? nil : UInt16.random(in: 1...4, using: &random)
        if let packetIdentifier, random.chance(8) {
            // Refused by the access rules at the edge: ordered without its payload.
            return .publishDenied(cid(connection), packetIdentifier: packetIdentifier, qos: qos)
        }
        if qos == .exactlyOnce, let packetIdentifier { unreleased[connection, default: []].append(packetIdentifier) }
        let payload = random.chance(10) ? "" : String(repeating: "p", count: random.pick([1, 3, 40]))
        return .publish(
            cid(connection),
            Publish(
                topicName: random.pick(Self.topics), payload: ByteBuffer(string: payload), qos: qos,
                retain: random.chance(25), dup: false, packetIdentifier: packetIdentifier, properties: properties))
    }

    mutating func acknowledge() -> BrokerEvent? {
        guard let connection = someConnection() else { return nil }
        let kind = Int.random(in: 0..<4, using: &random)
        switch kind {
        case 0:
            if var ids = awaitingAck[connection], !ids.isEmpty {
                let id = ids.remove(at: Int.random(in: 0..<ids.count, using: &random))
                awaitingAck[connection] = ids
                if random.chance(50) {
                    return .pubAck(cid(connection), packetIdentifier: id)
                }
                return .pubRec(
                    cid(connection), packetIdentifier: id, reasonCode: random.chance(15) ? .unspecifiedError : .success)
            }
        case 1:
            if var ids = awaitingComp[connection], !ids.isEmpty {
                let id = ids.removeFirst()
                awaitingComp[connection] = ids
                return .pubComp(cid(connection), packetIdentifier: id)
            }
        case 2:
            if var ids = unreleased[connection], !ids.isEmpty {
                let id = ids.removeFirst()
                unreleased[connection] = ids
                return .pubRel(cid(connection), packetIdentifier: id)
            }
        default:
            break
        }
        // Something the broker does not expect.
        let id = UInt16.random(in: 1...8, using: &random)
        return random.pick([
            .pubAck(cid(connection), packetIdentifier: id), .pubComp(cid(connection), packetIdentifier: id),
            .pubRel(cid(connection), packetIdentifier: id),
            .pubRec(cid(connection), packetIdentifier: id, reasonCode: .success),
        ])
    }

    mutating func close() -> BrokerEvent? {
        guard let connection = someConnection() else { return nil }
        if let client = attached.first(where: { $0.value == connection })?.key {
            attached[client] = nil
            ended.append(connection)
        }
        let cause: SessionClose.Cause = random.pick([.abnormal, .normalDisconnect, .disconnectWithWill, .willRefused])
        return .sessionClose(
            cid(connection),
            SessionClose(
                cause: cause, sessionExpiryIntervalSeconds: random.chance(20) ? random.pick([0, 5, 100]) : nil))
    }

    /// Learns what the broker sent, to acknowledge it later.
    mutating func observe(_ actions: [BrokerAction]) {
        for action in actions {
            switch action {
            case .send(let connection, .publish(let publish)):
                if let id = publish.packetIdentifier { awaitingAck[connection.local, default: []].append(id) }
            case .send(let connection, .pubRel(let pubRel)):
                awaitingComp[connection.local, default: []].append(pubRel.packetIdentifier)
            case .disconnect(let connection, _), .connAck(let connection, _, .quotaExceeded):
                if let client = attached.first(where: { $0.value == connection.local })?.key {
                    attached[client] = nil
                    ended.append(connection.local)
                }
            default:
                break
            }
        }
    }
}

/// Same ordered events, same actions: the property every replica of the broker depends on.
@Suite struct BrokerStateDeterminismTests {
    // Goal: two fresh BrokerStates fed the same random event sequence emit identical actions,
    // and the state's invariants hold after every event (FoxMQ design: deterministic core;
    // MQTT 5.0 §4.9 flow control and §4.1 session state bounds checked as invariants).
    @Test(arguments: 0..<200)
    func sameEventsSameActions(seed: UInt64) {
        var generator = EventGenerator(seed: seed &* 7919 &+ 1)
        var limits = BrokerLimits()
        limits.queuedMessageCountMax = 4
        limits.subscriptionCountMax = 5
        limits.sessionCountMax = 4
        let first = BrokerState(limits: limits)
        let second = BrokerState(limits: limits)
        for step in 0..<150 {
            let event = generator.next()
            let ownersBefore = Set(first.connectionOwners.keys)
            var firstActions: [BrokerAction] = []
            var secondActions: [BrokerAction] = []
            first.apply(event, atMillis: generator.now, into: &firstActions)
            second.apply(event, atMillis: generator.now, into: &secondActions)
            let context = "seed \(seed) step \(step) event \(event)"
            #expect(firstActions.descriptions == secondActions.descriptions, "\(context)")
            if firstActions.descriptions != secondActions.descriptions { return }
            var allowed = ownersBefore.union(first.connectionOwners.keys)
            if case .sessionOpen(let open) = event { allowed.insert(open.connection) }
            for action in firstActions where !allowed.contains(action.connection) {
                Issue.record("\(context): action for a connection never attached: \(action)")
            }
            let violations = invariantViolations(first, actions: firstActions)
            // One broken step per seed is enough to read; later steps would repeat it.
            if !violations.isEmpty {
                Issue.record("\(context): \(violations.joined(separator: "; "))")
                return
            }
            generator.observe(firstActions)
        }
        #expect(first.sessionCount == second.sessionCount)
        #expect(first.subscriptionCount == second.subscriptionCount)
        #expect(first.retainedMessageCount == second.retainedMessageCount)
    }

    /// What is wrong with the state after a step, as sentences; empty when all invariants hold.
    func invariantViolations(_ state: BrokerState, actions: [BrokerAction]) -> [String] {
        var violations: [String] = []
        func check(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { violations.append(message()) }
        }
        check(state.sessions.count <= state.limits.sessionCountMax, "more sessions than sessionCountMax")
        var subscriptions = 0
        for (client, session) in state.sessions {
            check(ExactString(session.clientIdentifier) == client, "session \(client) filed under another identifier")
            // The window may be smaller than what is in flight after a resumption with a lower
            // Receive Maximum (the old messages are resent); it never grows past the broker's cap.
            check(session.outbound.inflight.count <= state.limits.inflightCountMax, "\(client) in flight")
            check(session.outbound.queue.count <= state.limits.queuedMessageCountMax, "\(client) queue")
            check(session.subscriptions.count <= state.limits.subscriptionCountMax, "\(client) subscriptions")
            subscriptions += session.subscriptions.count
            if let connection = session.connection {
                check(
                    state.connectionOwners[connection] == client,
                    "\(client) attached to \(connection) without ownership")
                check(!state.detachedSessions.contains(client), "\(client) attached and detached")
                check(session.pendingWill == nil, "\(client) attached with a pending will")
            } else {
                check(state.detachedSessions.contains(client), "\(client) detached but not listed")
                check(session.will == nil, "\(client) detached with a live will")
            }
        }
        for (connection, client) in state.connectionOwners {
            check(
                state.sessions[client]?.connection == connection,
                "\(connection) owns \(client) which is not attached to it")
        }
        for client in state.detachedSessions {
            check(state.sessions[client] != nil, "detached \(client) has no session")
        }
        check(state.topicTree.subscriptionCount == subscriptions, "tree and sessions disagree on subscriptions")
        for action in actions {
            guard case .send(let connection, .publish(let publish)) = action,
                let client = state.connectionOwners[connection], let session = state.sessions[client]
            else { continue }
            if let maximum = session.maximumPacketSize {
                check(
                    Packet.publish(publish).encodedLength(version: session.protocolVersion) <= Int(maximum),
                    "PUBLISH larger than the client allows")
            }
            if publish.qos != .atMostOnce && !publish.dup {
                // A new QoS 1/2 PUBLISH is only sent into a free window slot (§4.9).
                let window = session.outbound.windowSize
                check(
                    session.outbound.inflight.count <= window,
                    "\(client) has \(session.outbound.inflight.count) in flight, window \(window)")
            }
            if publish.qos != .atMostOnce {
                guard let id = publish.packetIdentifier else {
                    violations.append("QoS \(publish.qos) PUBLISH without identifier")
                    continue
                }
                check(session.outbound.inflight[id] != nil, "PUBLISH \(id) sent but not in flight")
            }
        }
        return violations
    }
}
