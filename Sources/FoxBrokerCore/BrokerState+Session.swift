import FoxMQTT

/// Session lifecycle: open, take over, resume, close, will, expiry (MQTT 5.0 §3.1.2.4,
/// §3.1.2.5, §3.1.2.11.2, §4.1).
extension BrokerState {
    func openSession(_ open: SessionOpen, into actions: inout [BrokerAction]) {
        let clientIdentifier = ExactString(open.clientIdentifier)
        var sessionPresent = false
        if var existing = sessions[clientIdentifier] {
            if let old = existing.connection {
                // Session takeover (§3.1.4): the old connection gets DISCONNECT 0x8E. A session
                // that lasts as long as its connection ends with it [MQTT-3.1.2-6]; otherwise
                // the will follows the usual rule, except that the new connection comes at once.
                actions.append(.disconnect(old, .sessionTakenOver))
                connectionOwners[old] = nil
                let sessionEnds = open.cleanStart || existing.expiryIntervalSeconds == 0
                let will = existing.will
                existing.will = nil
                existing.connection = nil
                // Written back before the will goes out: the will may be delivered to this very
                // session (it subscribes to its own will topic), which a later write-back of the
                // copy would undo.
                sessions[clientIdentifier] = existing
                if let will, sessionEnds || (will.properties.willDelayIntervalSeconds ?? 0) == 0 {
                    publishWill(will, of: clientIdentifier, into: &actions)
                }
                if sessionEnds { endSession(clientIdentifier, into: &actions) }
            } else {
                // Back after the client was away: what fell due before this event, on the
                // ordered clock, happens first even if no tick has run yet (§3.1.2.5, §3.1.2.11.2).
                if let pending = existing.pendingWill, pending.deadlineMillis <= nowMillis {
                    sessions[clientIdentifier]?.pendingWill = nil
                    publishWill(pending.will, of: clientIdentifier, into: &actions)
                }
                if let deadline = existing.expiryDeadlineMillis, deadline <= nowMillis {
                    endSession(clientIdentifier, into: &actions)
                }
            }
        }
        if sessions[clientIdentifier] != nil {
            if open.cleanStart {
                endSession(clientIdentifier, into: &actions)
            } else {
                sessionPresent = true
            }
        }
        if !sessionPresent && sessions.count >= limits.sessionCountMax {
            actions.append(.connAck(open.connection, sessionPresent: false, reasonCode: .quotaExceeded))
            return
        }
        var session = sessions[clientIdentifier] ?? Session(open: open, inflightCountMax: limits.inflightCountMax)
        // Reconnected before the will delay passed: the will is not sent (§3.1.3.2.2).
        session.pendingWill = nil
        session.disconnectedAtMillis = nil
        session.connection = open.connection
        session.protocolVersion = open.protocolVersion
        session.expiryIntervalSeconds = open.sessionExpiryIntervalSeconds
        session.will = open.will.map { will in
            var will = will
            will.payload = will.payload.compacted()  // kept for the whole connection
            return will
        }
        session.maximumPacketSize = open.maximumPacketSize
        session.outbound.setReceiveMaximum(open.receiveMaximum)
        detachedSessions.remove(clientIdentifier)
        connectionOwners[open.connection] = clientIdentifier
        actions.append(.connAck(open.connection, sessionPresent: sessionPresent, reasonCode: .success))
        if sessionPresent {
            session.resume(nowMillis: nowMillis, into: &actions)
        }
        sessions[clientIdentifier] = session
    }

    func closeSession(_ connection: ConnectionID, _ close: SessionClose, into actions: inout [BrokerAction]) {
        guard let clientIdentifier = connectionOwners.removeValue(forKey: connection),
            var session = sessions[clientIdentifier], session.connection == connection
        else { return }
        session.connection = nil
        session.outbound.resendPending.removeAll()  // recomputed on resumption
        session.disconnectedAtMillis = nowMillis
        if let expiry = close.sessionExpiryIntervalSeconds { session.expiryIntervalSeconds = expiry }
        let will = session.will
        session.will = nil
        sessions[clientIdentifier] = session
        detachedSessions.insert(clientIdentifier)
        if close.cause.publishesWill, let will {
            let delaySeconds = min(will.properties.willDelayIntervalSeconds ?? 0, session.expiryIntervalSeconds)
            if delaySeconds == 0 {
                publishWill(will, of: clientIdentifier, into: &actions)
            } else {
                sessions[clientIdentifier]?.pendingWill = PendingWill(
                    will: will, protocolVersion: session.protocolVersion,
                    deadlineMillis: nowMillis.millisAdding(seconds: delaySeconds))
            }
        }
        if session.expiryIntervalSeconds == 0 {
            endSession(clientIdentifier, into: &actions)
        } else {
            indexDeadlines(of: clientIdentifier)
        }
    }

    /// Puts a detached session's will and expiry deadlines in the index.
    func indexDeadlines(of clientIdentifier: ExactString) {
        guard let session = sessions[clientIdentifier], session.connection == nil else { return }
        if let pending = session.pendingWill {
            deadlines.add(.will, key: clientIdentifier, deadlineMillis: pending.deadlineMillis)
        }
        if let deadline = session.expiryDeadlineMillis {
            deadlines.add(.sessionEnd, key: clientIdentifier, deadlineMillis: deadline)
        }
    }

    /// Publishes due delayed wills, ends expired sessions and purges expired retained
    /// messages, in deadline order. Only due entries are visited; an entry whose deadline no
    /// longer holds (the client came back, the message was replaced) is skipped.
    func tick(into actions: inout [BrokerAction]) {
        while let due = deadlines.popDue(atMillis: nowMillis) {
            switch due.kind {
            case .will:
                guard let session = sessions[due.key], session.connection == nil,
                    let pending = session.pendingWill, pending.deadlineMillis == due.deadlineMillis
                else { continue }
                sessions[due.key]?.pendingWill = nil
                publishWill(pending.will, of: due.key, into: &actions)
            case .sessionEnd:
                guard let session = sessions[due.key], session.connection == nil,
                    session.expiryDeadlineMillis == due.deadlineMillis
                else { continue }
                endSession(due.key, into: &actions)
            case .retainedExpiry:
                guard let message = retained.message(at: due.key.value),
                    message.expiryDeadlineMillis == due.deadlineMillis
                else { continue }
                retained.remove(topicName: due.key.value)
            }
        }
        compactDeadlinesIfStale()
    }

    /// Rebuilds the deadline index from the state when stale entries (deadlines that no longer
    /// hold) make up most of it: a client that reconnects often must not grow it for ever.
    func compactDeadlinesIfStale() {
        guard deadlines.count > 1024 && deadlines.count > 4 * (detachedSessions.count + retained.count) else {
            return
        }
        rebuildDeadlines()
    }

    /// The deadline index made from the state alone (at load, and when compacting).
    func rebuildDeadlines() {
        deadlines.removeAll()
        for clientIdentifier in detachedSessions.sorted() { indexDeadlines(of: clientIdentifier) }
        for message in retained.all() {
            guard let deadline = message.expiryDeadlineMillis else { continue }
            deadlines.add(.retainedExpiry, key: ExactString(message.topicName), deadlineMillis: deadline)
        }
    }

    /// A node restarted: every session still attached to a connection of another incarnation
    /// of it ends as after a network loss, in connection order. (No connection of the new
    /// incarnation exists yet; `!=` rather than `<`, so a counter that went backwards cannot
    /// leave a session attached to a dead connection.)
    func nodeStarted(node: UInt32, incarnation: UInt32, into actions: inout [BrokerAction]) {
        let stale = connectionOwners.keys.filter { $0.node == node && $0.incarnation != incarnation }.sorted()
        guard !stale.isEmpty else { return }
        let first = actions.count
        for connection in stale {
            closeSession(connection, SessionClose(cause: .abnormal), into: &actions)
        }
        // Packets for the dead process's connections (a will delivered to a session not yet
        // detached, say) reach nobody: QoS 1/2 ones stay in flight and are resent on resume.
        let isStale = { (action: BrokerAction) in
            action.connection.node == node && action.connection.incarnation != incarnation
        }
        actions.replaceSubrange(first..., with: actions[first...].filter { !isStale($0) })
    }

    /// A node was lost: every session attached to one of its connections of `incarnation` or
    /// earlier ends as after a network loss, in connection order, and the node (if it is alive
    /// behind a partition) is told to close those connections (0x88 Server unavailable: the
    /// client resumes its session on another node). Other packets to them are dropped.
    func nodeLost(node: UInt32, incarnation: UInt32, into actions: inout [BrokerAction]) {
        let lost = connectionOwners.keys.filter { $0.node == node && $0.incarnation <= incarnation }.sorted()
        guard !lost.isEmpty else { return }
        let first = actions.count
        for connection in lost {
            closeSession(connection, SessionClose(cause: .abnormal), into: &actions)
        }
        let isLost = { (action: BrokerAction) in
            action.connection.node == node && action.connection.incarnation <= incarnation
        }
        actions.replaceSubrange(first..., with: actions[first...].filter { !isLost($0) })
        for connection in lost { actions.append(.disconnect(connection, .serverUnavailable)) }
    }

    /// Connections with a session attached that another node than `node` holds, sorted (a
    /// test-only Byzantine node forges entries for them).
    public func attachedConnections(notOf node: UInt32) -> [ConnectionID] {
        connectionOwners.keys.filter { $0.node != node }.sorted()
    }

    /// The highest incarnation of `node` with a session attached, if any (what a `nodeLost`
    /// for it names).
    public func attachedIncarnation(of node: UInt32) -> UInt32? {
        connectionOwners.keys.lazy.filter { $0.node == node }.map(\.incarnation).max()
    }

    /// Ends a detached session: its delayed will goes out now (§3.1.2.5), its subscriptions go.
    func endSession(_ clientIdentifier: ExactString, into actions: inout [BrokerAction]) {
        guard let session = sessions.removeValue(forKey: clientIdentifier) else { return }
        precondition(session.connection == nil, "ending an attached session")
        droppedExpiredEndedCount &+= UInt64(session.outbound.expiredCount)
        detachedSessions.remove(clientIdentifier)
        // Sorted so that shared-group cursors move the same way on every node.
        for filter in session.subscriptions.keys.sorted() {
            removeFromTree(filter.value, clientIdentifier: clientIdentifier)
        }
        if let pending = session.pendingWill {
            publishWill(pending.will, of: clientIdentifier, into: &actions)
        }
    }

    func publishWill(_ will: Will, of clientIdentifier: ExactString, into actions: inout [BrokerAction]) {
        var properties = will.properties
        properties.willDelayIntervalSeconds = nil
        let message = ApplicationMessage(
            topicName: will.topicName, payload: will.payload, qos: will.qos, retain: will.retain,
            properties: properties,
            expiryDeadlineMillis: properties.messageExpiryIntervalSeconds.map { nowMillis.millisAdding(seconds: $0) },
            originClientIdentifier: clientIdentifier)
        if will.retain && (will.payload.readableBytes == 0 || retained.admits(message, limits: limits)) {
            storeRetained(message)
        }
        distribute(message, into: &actions)
    }
}
