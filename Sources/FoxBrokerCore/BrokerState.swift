import FoxMQTT

/// The broker as a deterministic state machine: sessions, subscriptions, retained messages and
/// queues, changed only by `apply` of ordered events. Same events, same times, same state and
/// same actions on every node; no clock, socket or randomness inside.
///
/// Single owner: the `Orderer` that feeds it calls `apply` serially. It is a class because the
/// topic tree is a graph of nodes mutated in place.
public final class BrokerState {
    /// Changed only by an ordered `.configure` event (or loaded with the state's rows).
    public internal(set) var limits: BrokerLimits
    var sessions = SessionTable()
    /// Which session each attached connection drives; events from any other connection (one
    /// taken over, say) change nothing.
    var connectionOwners: [ConnectionID: ExactString] = [:]
    /// Sessions whose client is away: the only ones a tick must look at.
    var detachedSessions: Set<ExactString> = []
    let topicTree = TopicTree()
    let retained = RetainedMessages()
    /// What falls due on the ordered clock: wills, session expiry, retained expiry.
    var deadlines = DeadlineIndex()
    /// The ordered clock: the greatest event time applied so far.
    public internal(set) var nowMillis: UInt64 = 0
    /// The users and access rules as ordered (`.admin` events; used by clusters).
    public internal(set) var admin = OrderedAdmin()

    /// The earliest deadline a tick would act on; nil when nothing is pending. The edge orders
    /// a tick only once the clock has reached it, so an idle broker logs nothing.
    public var nextDeadlineMillis: UInt64? { deadlines.nextDeadlineMillis }

    public init(limits: BrokerLimits = BrokerLimits()) {
        limits.checkInvariants()
        self.limits = limits
    }

    public var sessionCount: Int { sessions.count }
    public var connectedSessionCount: Int { connectionOwners.count }
    public var subscriptionCount: Int { topicTree.subscriptionCount }
    public var retainedMessageCount: Int { retained.count }

    /// Applies one ordered event at its ordered time and appends what the edge must do.
    public func apply(_ event: BrokerEvent, atMillis timeMillis: UInt64, into actions: inout [BrokerAction]) {
        // The ordered clock never runs backwards, whatever the orderer's clock did.
        nowMillis = max(nowMillis, timeMillis)
        switch event {
        case .sessionOpen(let open):
            openSession(open, into: &actions)
        case .publish(let connection, let publish):
            receivePublish(publish, from: connection, into: &actions)
        case .pubRel(let connection, let packetIdentifier):
            guard let clientIdentifier = connectionOwners[connection] else { return }
            let released = sessions[clientIdentifier]?.inboundQoS2Unreleased.remove(packetIdentifier) != nil
            let pubComp = PubComp(
                packetIdentifier: packetIdentifier,
                reasonCode: released ? .success : .packetIdentifierNotFound)
            actions.append(.send(connection, .pubComp(pubComp)))
        case .pubAck(let connection, let packetIdentifier):
            guard let clientIdentifier = connectionOwners[connection] else { return }
            sessions[clientIdentifier]?.acknowledge(
                pubAck: packetIdentifier, nowMillis: nowMillis, into: &actions)
        case .pubRec(let connection, let packetIdentifier, let reasonCode):
            guard let clientIdentifier = connectionOwners[connection] else { return }
            sessions[clientIdentifier]?.acknowledge(
                pubRec: packetIdentifier, reasonCode: reasonCode, nowMillis: nowMillis, into: &actions)
        case .pubComp(let connection, let packetIdentifier):
            guard let clientIdentifier = connectionOwners[connection] else { return }
            sessions[clientIdentifier]?.acknowledge(
                pubComp: packetIdentifier, nowMillis: nowMillis, into: &actions)
        case .subscribe(let connection, let subscribe, let denied):
            self.subscribe(subscribe, from: connection, denied: denied, into: &actions)
        case .publishDenied(let connection, let packetIdentifier, let qos):
            publishDenied(packetIdentifier: packetIdentifier, qos: qos, from: connection, into: &actions)
        case .unsubscribe(let connection, let unsubscribe):
            self.unsubscribe(unsubscribe, from: connection, into: &actions)
        case .sessionClose(let connection, let close):
            closeSession(connection, close, into: &actions)
        case .tick:
            tick(into: &actions)
        case .nodeStarted(let node, let incarnation):
            nodeStarted(node: node, incarnation: incarnation, into: &actions)
        case .nodeLost(let node, let incarnation):
            nodeLost(node: node, incarnation: incarnation, into: &actions)
        case .configure(let newLimits):
            newLimits.checkInvariants()
            limits = newLimits
        case .admin(let entry):
            admin.apply(entry)
        case .systemPublish(_, let topicName, let payload):
            // No client is its origin: an empty identifier is never a client's (one is assigned).
            let message = ApplicationMessage(
                topicName: topicName, payload: payload, qos: .atMostOnce, retain: true, properties: Properties(),
                expiryDeadlineMillis: nil, originClientIdentifier: ExactString(""))
            storeRetained(message)
            distribute(message, into: &actions)
        }
    }

    // MARK: Publish

    private func receivePublish(_ publish: Publish, from connection: ConnectionID, into actions: inout [BrokerAction]) {
        guard let clientIdentifier = connectionOwners[connection] else { return }
        if publish.qos == .exactlyOnce, let packetIdentifier = publish.packetIdentifier,
            sessions[clientIdentifier]?.inboundQoS2Unreleased.contains(packetIdentifier) == true
        {
            // A resent QoS 2 PUBLISH not yet released: acknowledge again, deliver nothing (§4.3.3).
            actions.append(.send(connection, .pubRec(PubRec(packetIdentifier: packetIdentifier))))
            return
        }
        let message = ApplicationMessage(publish: publish, origin: clientIdentifier, nowMillis: nowMillis)
        if publish.retain && publish.payload.readableBytes > 0 && !retained.admits(message, limits: limits) {
            refuse(publish, from: connection, clientIdentifier: clientIdentifier, .quotaExceeded, into: &actions)
            return
        }
        if publish.retain { storeRetained(message) }
        let matched = distribute(message, into: &actions)
        let reasonCode: ReasonCode = matched ? .success : .noMatchingSubscribers
        switch (publish.qos, publish.packetIdentifier) {
        case (.atLeastOnce, let packetIdentifier?):
            actions.append(
                .send(connection, .pubAck(PubAck(packetIdentifier: packetIdentifier, reasonCode: reasonCode))))
        case (.exactlyOnce, let packetIdentifier?):
            sessions[clientIdentifier]?.inboundQoS2Unreleased.insert(packetIdentifier)
            actions.append(
                .send(connection, .pubRec(PubRec(packetIdentifier: packetIdentifier, reasonCode: reasonCode))))
        default:
            break
        }
    }

    /// Refuses a PUBLISH that is not distributed: 5.0 gets the reason in PUBACK or PUBREC
    /// (QoS 0 is dropped); 3.1.1 has no such codes, so its connection is closed instead, as
    /// after a network loss.
    func refuse(
        _ publish: Publish, from connection: ConnectionID, clientIdentifier: ExactString, _ reasonCode: ReasonCode,
        into actions: inout [BrokerAction]
    ) {
        if sessions[clientIdentifier]?.protocolVersion == .v311 {
            closeSession(connection, SessionClose(cause: .abnormal), into: &actions)
            actions.append(.disconnect(connection, reasonCode))
            return
        }
        switch (publish.qos, publish.packetIdentifier) {
        case (.atLeastOnce, let packetIdentifier?):
            actions.append(
                .send(connection, .pubAck(PubAck(packetIdentifier: packetIdentifier, reasonCode: reasonCode))))
        case (.exactlyOnce, let packetIdentifier?):
            actions.append(
                .send(connection, .pubRec(PubRec(packetIdentifier: packetIdentifier, reasonCode: reasonCode))))
        default:
            break
        }
    }

    /// Sets or clears a retained message; one that can expire is indexed for its purge.
    func storeRetained(_ message: ApplicationMessage) {
        retained.store(message)
        if message.payload.readableBytes > 0, let deadline = message.expiryDeadlineMillis {
            deadlines.add(.retainedExpiry, key: ExactString(message.topicName), deadlineMillis: deadline)
        }
    }

    /// What one session gets of one message when several of its subscriptions match (§3.3.4:
    /// one delivery at the greatest granted QoS, with every subscription identifier).
    private struct Delivery {
        var qos: QoS = .atMostOnce
        var retainAsPublished = false
        var subscriptionIdentifiers: [UInt32] = []

        mutating func merge(_ entry: SubscriptionEntry, messageQoS: QoS) {
            qos = max(qos, min(messageQoS, entry.options.qos))
            retainAsPublished = retainAsPublished || entry.options.retainAsPublished
            if let identifier = entry.subscriptionIdentifier { subscriptionIdentifiers.append(identifier) }
        }
    }

    /// Delivers a message to every matching subscription; returns whether any matched.
    @discardableResult
    func distribute(_ message: ApplicationMessage, into actions: inout [BrokerAction]) -> Bool {
        // Collected as pairs and sorted by client, not hashed: the usual one or few matches cost
        // no dictionary, several subscriptions of one client become adjacent for the merge, and
        // the actions come out in the same order on every node.
        var matches: [(clientIdentifier: ExactString, entry: SubscriptionEntry)] = []
        let origin = message.originClientIdentifier
        topicTree.match(
            topicName: message.topicName,
            subscriber: { clientIdentifier, entry in
                if entry.options.noLocal && clientIdentifier == origin { return }
                matches.append((clientIdentifier, entry))
            },
            sharedGroup: { group in
                guard let member = self.chooseMember(of: &group), let entry = group.entries[member] else {
                    preconditionFailure("shared group without a member entry")
                }
                matches.append((member, entry))
            })
        if matches.isEmpty { return false }
        // The first session that queues it compacts the payload here, for all that follow.
        var message = message
        if matches.count > 1 { matches.sort { $0.clientIdentifier < $1.clientIdentifier } }
        var index = 0
        while index < matches.count {
            let clientIdentifier = matches[index].clientIdentifier
            var delivery = Delivery()
            while index < matches.count && matches[index].clientIdentifier == clientIdentifier {
                delivery.merge(matches[index].entry, messageQoS: message.qos)
                index += 1
            }
            if delivery.subscriptionIdentifiers.count > 1 { delivery.subscriptionIdentifiers.sort() }
            let dropped = sessions[clientIdentifier]?.deliver(
                &message, qos: delivery.qos, retain: delivery.retainAsPublished && message.retain,
                subscriptionIdentifiers: delivery.subscriptionIdentifiers,
                nowMillis: nowMillis, queuedMessageCountMax: limits.queuedMessageCountMax, into: &actions)
            if dropped == true { droppedQueueFullCount &+= 1 }
        }
        return true
    }

    /// Messages a full session queue dropped since this state was made (a metric; not part of
    /// the rows or the digest: every node counts the same, but a restart starts again at 0).
    public private(set) var droppedQueueFullCount: UInt64 = 0
    /// Expired messages dropped by sessions that have ended since this state was made (the live
    /// sessions keep their own count; a metric, like `droppedQueueFullCount`).
    var droppedExpiredEndedCount: UInt64 = 0

    /// What the metrics sample: sessions connected and offline, messages in flight and queued
    /// over every session (one pass over the sessions), and the expired messages dropped.
    /// Expired messages dropped count too (ended sessions' included); the total starts again
    /// when a state transfer replaces the state.
    public func deliveryStatistics() -> (
        connected: Int, offline: Int, inflight: Int, queued: Int, droppedExpired: UInt64
    ) {
        var inflight = 0
        var queued = 0
        var expired = droppedExpiredEndedCount
        for session in sessions.values {
            inflight += session.outbound.inflight.count
            queued += session.outbound.queue.count
            expired &+= UInt64(session.outbound.expiredCount)
        }
        return (connectedSessionCount, sessions.count - connectedSessionCount, inflight, queued, expired)
    }

    /// Round robin over a shared group's members, skipping those whose client is away while
    /// any member is connected (§4.8.2).
    private func chooseMember(of group: inout TopicTree.SharedGroup) -> ExactString? {
        let count = group.members.count
        guard count > 0 else { return nil }
        let start = group.cursor % count
        var chosen = start
        for offset in 0..<count {
            let index = (start + offset) % count
            if sessions[group.members[index]]?.isConnected == true {
                chosen = index
                break
            }
        }
        group.cursor = (chosen + 1) % count
        return group.members[chosen]
    }

    // MARK: Subscriptions

    /// A PUBLISH the access rules refused: 0x87 in its acknowledgement at 5.0. 3.1.1 has no
    /// such code; its server must acknowledge positively or close (3.1.1 §3.3.5): acknowledged,
    /// and nothing is delivered.
    private func publishDenied(
        packetIdentifier: UInt16, qos: QoS, from connection: ConnectionID, into actions: inout [BrokerAction]
    ) {
        guard let clientIdentifier = connectionOwners[connection], let session = sessions[clientIdentifier] else {
            return
        }
        if qos == .exactlyOnce && session.inboundQoS2Unreleased.contains(packetIdentifier) {
            // A resend of a PUBLISH taken before the rules changed: its exchange must finish,
            // or the identifier would stay taken and a later message with it would be dropped.
            actions.append(.send(connection, .pubRec(PubRec(packetIdentifier: packetIdentifier))))
            return
        }
        let reasonCode: ReasonCode = session.protocolVersion == .v5 ? .notAuthorized : .success
        switch qos {
        case .atLeastOnce:
            actions.append(
                .send(connection, .pubAck(PubAck(packetIdentifier: packetIdentifier, reasonCode: reasonCode))))
        case .exactlyOnce:
            // A positive PUBREC (3.1.1) starts an exchange that PUBREL must be able to finish.
            if !reasonCode.isFailure { sessions[clientIdentifier]?.inboundQoS2Unreleased.insert(packetIdentifier) }
            actions.append(
                .send(connection, .pubRec(PubRec(packetIdentifier: packetIdentifier, reasonCode: reasonCode))))
        case .atMostOnce:
            break
        }
    }

    private func subscribe(
        _ subscribe: Subscribe, from connection: ConnectionID, denied: [Int], into actions: inout [BrokerAction]
    ) {
        // Taken out of the table while changed, so its subscription table is not copied.
        guard let clientIdentifier = connectionOwners[connection],
            var session = sessions.removeValue(forKey: clientIdentifier)
        else { return }
        var reasonCodes: [ReasonCode] = []
        reasonCodes.reserveCapacity(subscribe.subscriptions.count)
        var retainedDeliveries: [(ApplicationMessage, QoS, UInt32?)] = []
        let subscriptionIdentifier = subscribe.properties.subscriptionIdentifiers.first
        for (index, subscription) in subscribe.subscriptions.enumerated() {
            if denied.contains(index) {
                reasonCodes.append(.notAuthorized)
                continue
            }
            let requested = subscription.topicFilter
            let shared = Topic.parseShared(requested)
            let filter = shared?.filter ?? requested
            if Topic.isShared(requested) && shared == nil {
                reasonCodes.append(.topicFilterInvalid)
                continue
            }
            guard Topic.isValidFilter(filter), Topic.levelCount(filter) <= limits.topicLevelCountMax else {
                reasonCodes.append(.topicFilterInvalid)
                continue
            }
            let existed = session.subscriptions[ExactString(requested)] != nil
            guard existed || session.subscriptions.count < limits.subscriptionCountMax else {
                reasonCodes.append(.quotaExceeded)
                continue
            }
            let entry = SubscriptionEntry(options: subscription.options, subscriptionIdentifier: subscriptionIdentifier)
            session.subscriptions[ExactString(requested)] = entry
            topicTree.insert(
                filter: filter, shareName: shared.map { ExactString($0.shareName) }, clientIdentifier: clientIdentifier,
                entry: entry)
            reasonCodes.append(ReasonCode(rawValue: subscription.options.qos.rawValue))
            // Retained messages are never sent for a shared subscription (§4.8.2).
            guard shared == nil else { continue }
            let sendRetained: Bool
            switch subscription.options.retainHandling {
            case .sendOnSubscribe: sendRetained = true
            case .sendOnNewSubscribe: sendRetained = !existed
            case .doNotSend: sendRetained = false
            }
            if sendRetained {
                for message in retained.matching(filter: filter, nowMillis: nowMillis) {
                    retainedDeliveries.append(
                        (message, min(message.qos, subscription.options.qos), subscriptionIdentifier))
                }
            }
        }
        sessions[clientIdentifier] = session
        actions.append(
            .send(connection, .subAck(SubAck(packetIdentifier: subscribe.packetIdentifier, reasonCodes: reasonCodes))))
        // Retained messages follow the SUBACK, with the retain flag set (§3.3.1.3).
        for (retained, qos, identifier) in retainedDeliveries {
            var message = retained
            _ = sessions[clientIdentifier]?.deliver(
                &message, qos: qos, retain: true, subscriptionIdentifiers: identifier.map { [$0] } ?? [],
                nowMillis: nowMillis, queuedMessageCountMax: limits.queuedMessageCountMax, into: &actions)
        }
    }

    private func unsubscribe(
        _ unsubscribe: Unsubscribe, from connection: ConnectionID, into actions: inout [BrokerAction]
    ) {
        guard let clientIdentifier = connectionOwners[connection] else { return }
        var reasonCodes: [ReasonCode] = []
        for requested in unsubscribe.topicFilters {
            if sessions[clientIdentifier]?.subscriptions.removeValue(forKey: ExactString(requested)) != nil {
                removeFromTree(requested, clientIdentifier: clientIdentifier)
                reasonCodes.append(.success)
            } else {
                reasonCodes.append(.noSubscriptionExisted)
            }
        }
        actions.append(
            .send(
                connection,
                .unsubAck(UnsubAck(packetIdentifier: unsubscribe.packetIdentifier, reasonCodes: reasonCodes))))
    }

    func removeFromTree(_ requested: String, clientIdentifier: ExactString) {
        let shared = Topic.parseShared(requested)
        topicTree.remove(
            filter: shared?.filter ?? requested, shareName: shared.map { ExactString($0.shareName) },
            clientIdentifier: clientIdentifier)
    }
}
