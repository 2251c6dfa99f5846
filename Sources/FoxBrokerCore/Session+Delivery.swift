import FoxMQTT

/// Outbound delivery of application messages to one session: QoS 0 straight out, QoS 1/2
/// through the in-flight window and the queue, redelivery on resumption (MQTT 5.0 §4.4).
extension Session {
    /// Delivers one message as a matching subscription decided; queues it when the window is
    /// full or the client is away, drops it when the queue is full or it expired. Returns
    /// whether a full queue dropped it. A queued message's payload is compacted in `message`
    /// itself, so the sessions it goes to next share the compacted copy.
    @discardableResult
    mutating func deliver(
        _ message: inout ApplicationMessage, qos: QoS, retain: Bool, subscriptionIdentifiers: [UInt32],
        nowMillis: UInt64, queuedMessageCountMax: Int, into actions: inout [BrokerAction]
    ) -> Bool {
        if message.isExpired(atMillis: nowMillis) {
            outbound.expiredCount &+= 1
            return false
        }
        let queued = OutboundFlow.Queued(
            message: message, qos: qos, retain: retain,
            subscriptionIdentifiers: subscriptionIdentifiers)
        if qos == .atMostOnce {
            // QoS 0 is neither flow controlled nor kept for absent clients (as Mosquitto).
            guard let connection else { return false }
            let publish = message.publish(
                qos: .atMostOnce, retain: retain, packetIdentifier: nil,
                subscriptionIdentifiers: subscriptionIdentifiers, nowMillis: nowMillis)
            if fitsClient(publish) { actions.append(.send(connection, .publish(publish))) }
            return false
        }
        if connection != nil, outbound.queue.isEmpty, outbound.hasWindow {
            sendNew(queued, nowMillis: nowMillis, into: &actions)
        } else if outbound.queue.count < queuedMessageCountMax {
            // Kept until the client is back or reads again: not worth a whole read buffer.
            message.payload = message.payload.compacted()
            var queued = queued
            queued.message.payload = message.payload
            outbound.queue.append(queued)
        } else {
            outbound.droppedCount += 1
            return true
        }
        return false
    }

    /// Fills the in-flight window: first the resumed messages not yet resent, in order, then
    /// from the queue (§4.6: nothing new overtakes them).
    mutating func pump(nowMillis: UInt64, into actions: inout [BrokerAction]) {
        while let connection, outbound.hasWindowForResend, let packetIdentifier = outbound.resendPending.popFirst() {
            guard case .awaitingAcknowledgement(let queued) = outbound.inflight[packetIdentifier] else { continue }
            resend(queued, packetIdentifier: packetIdentifier, to: connection, nowMillis: nowMillis, into: &actions)
        }
        guard outbound.resendPending.isEmpty else { return }
        while connection != nil, outbound.hasWindow, let next = outbound.queue.popFirst() {
            if next.message.isExpired(atMillis: nowMillis) {
                outbound.expiredCount &+= 1
                continue
            }
            sendNew(next, nowMillis: nowMillis, into: &actions)
        }
    }

    /// On resumption: resends every PUBREL and the unacknowledged PUBLISHes with DUP set, in
    /// their original order (§4.4), as many as the client's Receive Maximum allows out at once
    /// (§4.9); the rest follow as acknowledgements come (`pump`), before anything new.
    mutating func resume(nowMillis: UInt64, into actions: inout [BrokerAction]) {
        guard let connection else { preconditionFailure("resume of a detached session") }
        outbound.resendPending.removeAll()
        for (packetIdentifier, state) in outbound.inflight {
            switch state {
            case .awaitingAcknowledgement:
                outbound.resendPending.append(packetIdentifier)
            case .awaitingComplete:
                actions.append(.send(connection, .pubRel(PubRel(packetIdentifier: packetIdentifier))))
            }
        }
        pump(nowMillis: nowMillis, into: &actions)
    }

    private mutating func resend(
        _ queued: OutboundFlow.Queued, packetIdentifier: UInt16, to connection: ConnectionID, nowMillis: UInt64,
        into actions: inout [BrokerAction]
    ) {
        let publish = queued.message.publish(
            qos: queued.qos, retain: queued.retain, packetIdentifier: packetIdentifier,
            subscriptionIdentifiers: queued.subscriptionIdentifiers, nowMillis: nowMillis, dup: true)
        // Too large for the client now: discard as if delivered (§3.1.2.11.4).
        guard fitsClient(publish) else {
            outbound.finish(packetIdentifier)
            return
        }
        actions.append(.send(connection, .publish(publish)))
    }

    private mutating func sendNew(
        _ queued: OutboundFlow.Queued, nowMillis: UInt64, into actions: inout [BrokerAction]
    ) {
        guard let connection else { preconditionFailure("send to a detached session") }
        precondition(queued.qos != .atMostOnce && outbound.hasWindow)
        let packetIdentifier = outbound.allocatePacketIdentifier()
        let publish = queued.message.publish(
            qos: queued.qos, retain: queued.retain, packetIdentifier: packetIdentifier,
            subscriptionIdentifiers: queued.subscriptionIdentifiers, nowMillis: nowMillis)
        // Too large for the client: discard and behave as if delivered (§3.1.2.11.4).
        guard fitsClient(publish) else { return }
        outbound.inflight[packetIdentifier] = .awaitingAcknowledgement(queued)
        actions.append(.send(connection, .publish(publish)))
    }

    func fitsClient(_ publish: Publish) -> Bool {
        guard let maximumPacketSize else { return true }
        return Packet.publish(publish).encodedLength(version: protocolVersion)
            <= Int(maximumPacketSize)
    }

    // MARK: Acknowledgements of outbound messages

    mutating func acknowledge(
        pubAck packetIdentifier: UInt16, nowMillis: UInt64, into actions: inout [BrokerAction]
    ) {
        guard case .awaitingAcknowledgement(let queued) = outbound.inflight[packetIdentifier],
            queued.qos == .atLeastOnce
        else { return }
        outbound.finish(packetIdentifier)
        pump(nowMillis: nowMillis, into: &actions)
    }

    mutating func acknowledge(
        pubRec packetIdentifier: UInt16, reasonCode: ReasonCode, nowMillis: UInt64,
        into actions: inout [BrokerAction]
    ) {
        guard let connection else { return }
        switch outbound.inflight[packetIdentifier] {
        case .awaitingAcknowledgement(let queued) where queued.qos == .exactlyOnce:
            if reasonCode.isFailure {
                // The receiver refused the message: the exchange ends here (§4.3.3).
                outbound.finish(packetIdentifier)
                pump(nowMillis: nowMillis, into: &actions)
                return
            }
            outbound.dropPendingResend(packetIdentifier)
            outbound.inflight[packetIdentifier] = .awaitingComplete
            actions.append(.send(connection, .pubRel(PubRel(packetIdentifier: packetIdentifier))))
        case .awaitingComplete:
            actions.append(.send(connection, .pubRel(PubRel(packetIdentifier: packetIdentifier))))
        default:
            actions.append(
                .send(
                    connection,
                    .pubRel(
                        PubRel(
                            packetIdentifier: packetIdentifier, reasonCode: .packetIdentifierNotFound))))
        }
    }

    mutating func acknowledge(
        pubComp packetIdentifier: UInt16, nowMillis: UInt64, into actions: inout [BrokerAction]
    ) {
        guard case .awaitingComplete = outbound.inflight[packetIdentifier] else { return }
        outbound.finish(packetIdentifier)
        pump(nowMillis: nowMillis, into: &actions)
    }
}
