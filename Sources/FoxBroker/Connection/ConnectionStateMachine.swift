import FoxBrokerCore
import FoxMQTT

/// The protocol logic of one client connection, with no socket: packets and timer expiries in,
/// outputs out (packets to send, events to order, a credential check to run, close). The
/// channel handler only carries the outputs out.
///
/// It owns what is per connection and never replicated: the protocol version, authentication,
/// topic aliases, keep alive, and the count of inbound QoS 1/2 messages not yet acknowledged
/// (our Receive Maximum). Everything about the session goes to the broker core as events.
struct ConnectionStateMachine {
    /// What a client asks that the access rules decide.
    enum AccessRequest: Equatable {
        case publish(topicName: String)
        case subscribe(filter: String)
    }

    /// Answers an access request for this client (its user name, if any, and identifier).
    typealias Authorize = (_ request: AccessRequest, _ username: String?, _ clientIdentifier: String) -> Bool

    /// A will's publish as the access rules see it: allowed at CONNECT, asked again when the
    /// session ends, since the rules may have changed in between.
    struct WillPublish: Equatable {
        var topicName: String
        var username: String?
        var clientIdentifier: String
    }

    enum Output: Equatable {
        case send(Packet)
        case submit(BrokerEvent)
        /// Submit `.sessionClose` for a connection whose will this close would publish, once the
        /// will is authorised again: if the user may no longer publish it, the close is ordered
        /// as `.willRefused` and the will is discarded (Mosquitto too checks a will when it
        /// sends it).
        case submitCloseAuthorizingWill(SessionClose, WillPublish)
        /// Check these credentials off the event loop, then call `authenticationCompleted`.
        case authenticate(username: String?, password: [UInt8]?)
        /// Start the keep-alive watch: the connection ends after this many milliseconds without
        /// a packet from the client.
        case watchKeepAlive(timeoutMillis: Int64)
        /// Close the socket (after the sends before it are written).
        case close
        /// The CONNECT is refused for `reasonCode` without a CONNACK, which the client's Maximum
        /// Packet Size could not hold (to log and count; a `close` follows).
        case refusedUnannounced(ReasonCode)
    }

    enum State {
        case awaitingConnect
        /// CONNECT received; credentials being checked; nothing else is read meanwhile. Indirect:
        /// a CONNECT inline would make the state of every connection 30 bytes larger.
        indirect case authenticating(Connect, assignedIdentifier: String?)
        /// The session open is submitted; CONNACK comes with the broker's answer.
        case connected(Connected)
        /// Closing or closed: nothing more is read, the broker already knows.
        case closed
        /// Transient, while `Connected` is being changed in place.
        case modifying
    }

    struct Connected {
        var version: ProtocolVersion
        var clientIdentifier: String
        /// For the access rules.
        var username: String?
        var assignedIdentifier: String? { identifierAssigned ? clientIdentifier : nil }
        var keepAliveSeconds: UInt16
        var serverKeepAliveSeconds: UInt16?
        var sessionExpiryIntervalSeconds: UInt32
        /// Flags in one byte, since every idle connection pays for each inline field.
        private var flags: UInt8 = 0
        var connAckSent: Bool {
            get { flags & 1 != 0 }
            set { flags = newValue ? flags | 1 : flags & ~1 }
        }
        /// Whether we assigned the client identifier (sent back in CONNACK): a flag, not a second
        /// copy of the string.
        var identifierAssigned: Bool {
            get { flags & 2 != 0 }
            set { flags = newValue ? flags | 2 : flags & ~2 }
        }
        var aliases: TopicAliases
        /// Inbound QoS 1/2 packet identifiers not yet answered by PUBACK or PUBCOMP.
        var inboundUnacknowledged: Set<UInt16> = []

        init(
            version: ProtocolVersion, clientIdentifier: String, username: String?, assignedIdentifier: String?,
            keepAliveSeconds: UInt16, serverKeepAliveSeconds: UInt16?, sessionExpiryIntervalSeconds: UInt32,
            aliases: TopicAliases
        ) {
            self.version = version
            self.clientIdentifier = clientIdentifier
            self.username = username
            self.keepAliveSeconds = keepAliveSeconds
            self.serverKeepAliveSeconds = serverKeepAliveSeconds
            self.sessionExpiryIntervalSeconds = sessionExpiryIntervalSeconds
            self.aliases = aliases
            identifierAssigned = assignedIdentifier != nil
        }
    }

    let connection: ConnectionID
    /// Shared by every connection of the node: a copy each would cost every idle client.
    private let sharedLimits: Immutable<ConnectionLimits>
    var limits: ConnectionLimits { sharedLimits.value }
    private(set) var state: State = .awaitingConnect
    /// Set at CONNECT when there is a will. Boxed: a connection without one pays 8 bytes, not 48.
    private var willPublish: Immutable<WillPublish>?

    init(connection: ConnectionID, limits: Immutable<ConnectionLimits>) {
        self.connection = connection
        self.sharedLimits = limits
    }

    init(connection: ConnectionID, limits: ConnectionLimits) {
        self.init(connection: connection, limits: Immutable(limits))
    }

    /// Whether more bytes may be decoded now: not while credentials are checked, and not until
    /// CONNACK is out, so that nothing (a PINGRESP, say) can overtake it [MQTT-3.2.0-1].
    var isReading: Bool {
        switch state {
        case .awaitingConnect: true
        case .connected(let connected): connected.connAckSent
        case .authenticating, .closed, .modifying: false
        }
    }

    var isAwaitingConnect: Bool { if case .awaitingConnect = state { true } else { false } }

    var isClosed: Bool { if case .closed = state { true } else { false } }

    /// The version to decode and encode with: 5.0 until CONNECT says otherwise (only CONNECT
    /// is read before), then the CONNECT's, also after close (a refusal is written after it).
    private(set) var protocolVersion: ProtocolVersion = .v5
    /// The client's Request Problem Information (5.0 §3.1.2.11.7): reason strings allowed.
    private var requestProblemInformation = true
    /// The client's Maximum Packet Size: nothing larger is sent to it [MQTT-3.1.2-24].
    private var clientMaximumPacketSize: UInt32?

    // MARK: Inbound

    /// A packet the client sent. `makeIdentifier` assigns an identifier to an empty one;
    /// `certificateIdentity` is what the client's TLS certificate says (read for CONNECT only).
    mutating func received(
        _ packet: Packet, makeIdentifier: () -> String, authorize: Authorize = { _, _, _ in true },
        certificateIdentity: () -> CertificateIdentity = { .none }, into outputs: inout [Output]
    ) {
        switch state {
        case .awaitingConnect:
            guard case .connect(let connect) = packet else {
                // The first packet must be CONNECT (§3.1): close without a word.
                state = .closed
                outputs.append(.close)
                return
            }
            receivedConnect(
                connect, makeIdentifier: makeIdentifier, authorize: authorize,
                certificateIdentity: certificateIdentity(), into: &outputs)
        case .authenticating:
            preconditionFailure("packet read while authenticating")
        case .connected(var connected):
            // Release the enum's reference first, so mutating `connected` does not copy its
            // sets and tables (copy-on-write) on every packet.
            state = .modifying
            receivedWhileConnected(packet, &connected, authorize: authorize, into: &outputs)
            if case .modifying = state { state = .connected(connected) }
        case .modifying:
            preconditionFailure("re-entrant packet")
        case .closed:
            return
        }
    }

    private mutating func receivedConnect(
        _ connect: Connect, makeIdentifier: () -> String, authorize: Authorize,
        certificateIdentity: CertificateIdentity, into outputs: inout [Output]
    ) {
        var connect = connect
        let version = connect.protocolVersion
        protocolVersion = version
        // Known from here on, so that even a refusal never exceeds it [MQTT-3.1.2-24].
        clientMaximumPacketSize = version == .v5 ? connect.properties.maximumPacketSize : nil
        if version == .v5, connect.properties.authenticationMethod != nil {
            // No extended authentication method is supported (§4.12).
            refuse(.badAuthenticationMethod, version: version, into: &outputs)
            return
        }
        var assigned: String?
        if connect.clientIdentifier.isEmpty {
            // 3.1.1 §3.1.3.1: an empty identifier needs Clean Session 1. 5.0: we assign one.
            if version == .v311 && !connect.cleanStart {
                refuse(.clientIdentifierNotValid, version: version, into: &outputs)
                return
            }
            assigned = makeIdentifier()
        }
        switch certificateIdentity {
        case .none:
            break
        case .name(let name):
            connect.username = name
            connect.password = nil
        case .missing:
            refuse(.notAuthorized, version: version, into: &outputs)
            return
        }
        if connect.username == nil && !limits.allowAnonymousLogin {
            refuse(.notAuthorized, version: version, into: &outputs)
            return
        }
        if let will = connect.will, let error = validateTopicName(will.topicName) {
            refuse(error, version: version, into: &outputs)
            return
        }
        state = .authenticating(connect, assignedIdentifier: assigned)
        if case .name = certificateIdentity {
            // The TLS handshake verified the certificate: that is the authentication.
            authenticationCompleted(accepted: true, authorize: authorize, into: &outputs)
            return
        }
        outputs.append(.authenticate(username: connect.username, password: connect.password))
    }

    /// The credential check finished. `authorize` decides whether the will may be published
    /// to its topic, as any PUBLISH of this user would be (the broker's `$SYS` included): a
    /// will is a publish made on the client's behalf, refused before the session opens.
    mutating func authenticationCompleted(accepted: Bool, authorize: Authorize, into outputs: inout [Output]) {
        guard case .authenticating(let connect, let assigned) = state else { return }
        let version = connect.protocolVersion
        guard accepted else {
            refuse(.badUserNameOrPassword, version: version, into: &outputs)
            return
        }
        let clientIdentifier = assigned ?? connect.clientIdentifier
        if let will = connect.will,
            !authorize(.publish(topicName: will.topicName), connect.username, clientIdentifier)
        {
            refuse(.notAuthorized, version: version, into: &outputs)
            return
        }
        if let will = connect.will {
            willPublish = Immutable(
                WillPublish(topicName: will.topicName, username: connect.username, clientIdentifier: clientIdentifier))
        }
        let properties = connect.properties
        requestProblemInformation = properties.requestProblemInformation != 0
        let sessionExpiry: UInt32 =
            version == .v5
            ? properties.sessionExpiryIntervalSeconds ?? 0
            : (connect.cleanStart ? 0 : UInt32.max)
        var serverKeepAlive: UInt16?
        if let maximum = limits.keepAliveMaximumSeconds,
            connect.keepAliveSeconds == 0 || connect.keepAliveSeconds > maximum
        {
            serverKeepAlive = maximum
        }
        var aliases = TopicAliases(inboundMaximum: version == .v5 ? limits.topicAliasMaximum : 0)
        aliases.outboundMaximum = version == .v5 ? properties.topicAliasMaximum ?? 0 : 0
        let admitted = Connected(
            version: version, clientIdentifier: clientIdentifier, username: connect.username,
            assignedIdentifier: assigned,
            keepAliveSeconds: connect.keepAliveSeconds, serverKeepAliveSeconds: serverKeepAlive,
            sessionExpiryIntervalSeconds: sessionExpiry,
            aliases: aliases)
        if version == .v5,
            !fitsClient(
                .connAck(ConnAck(sessionPresent: true, reasonCode: .success, properties: capabilities(admitted))))
        {
            // Every CONNACK property left is one the broker enforces or the client needs, so
            // none may be dropped; a client whose limit cannot hold them cannot be told the
            // terms of its session, and no packet may exceed its limit [MQTT-3.1.2-24]: close
            // without a CONNACK, before any session is opened or taken over.
            state = .closed
            outputs.append(.refusedUnannounced(.packetTooLarge))
            outputs.append(.close)
            return
        }
        state = .connected(admitted)
        let open = SessionOpen(
            connection: connection, clientIdentifier: clientIdentifier, protocolVersion: version,
            cleanStart: connect.cleanStart, sessionExpiryIntervalSeconds: sessionExpiry,
            will: connect.will, receiveMaximum: version == .v5 ? properties.receiveMaximum ?? UInt16.max : UInt16.max,
            maximumPacketSize: version == .v5 ? properties.maximumPacketSize : nil)
        outputs.append(.submit(.sessionOpen(open)))
    }

    private mutating func receivedWhileConnected(
        _ packet: Packet, _ connected: inout Connected, authorize: Authorize, into outputs: inout [Output]
    ) {
        switch packet {
        case .publish(var publish):
            do {
                publish.topicName = try connected.aliases.resolveInbound(
                    topicName: publish.topicName, alias: publish.properties.topicAlias)
            } catch .aliasInvalid {
                fail(.topicAliasInvalid, "topic alias outside 1...\(limits.topicAliasMaximum)", into: &outputs)
                return
            } catch {
                fail(.protocolError, "topic alias used before it was defined", into: &outputs)
                return
            }
            publish.properties.topicAlias = nil
            if !publish.properties.subscriptionIdentifiers.isEmpty {
                // Only the server sets them, per delivery [MQTT-3.3.4-6].
                fail(.protocolError, "PUBLISH from a client with a subscription identifier", into: &outputs)
                return
            }
            if let error = validateTopicName(publish.topicName) {
                fail(error, "topic name exceeds the broker's limits", into: &outputs)
                return
            }
            if let packetIdentifier = publish.packetIdentifier {
                connected.inboundUnacknowledged.insert(packetIdentifier)
                if connected.inboundUnacknowledged.count > Int(limits.receiveMaximum) {
                    fail(
                        .receiveMaximumExceeded, "more than \(limits.receiveMaximum) unacknowledged QoS 1/2 messages",
                        into: &outputs)
                    return
                }
            }
            if !authorize(.publish(topicName: publish.topicName), connected.username, connected.clientIdentifier) {
                // Ordered without its payload, so its 0x87 keeps its place among the
                // acknowledgements; a refused QoS 0 message is dropped.
                if let packetIdentifier = publish.packetIdentifier {
                    outputs.append(
                        .submit(.publishDenied(connection, packetIdentifier: packetIdentifier, qos: publish.qos)))
                }
                return
            }
            outputs.append(.submit(.publish(connection, publish)))
        case .pubAck(let pubAck):
            outputs.append(.submit(.pubAck(connection, packetIdentifier: pubAck.packetIdentifier)))
        case .pubRec(let pubRec):
            outputs.append(
                .submit(.pubRec(connection, packetIdentifier: pubRec.packetIdentifier, reasonCode: pubRec.reasonCode)))
        case .pubRel(let pubRel):
            outputs.append(.submit(.pubRel(connection, packetIdentifier: pubRel.packetIdentifier)))
        case .pubComp(let pubComp):
            outputs.append(.submit(.pubComp(connection, packetIdentifier: pubComp.packetIdentifier)))
        case .subscribe(let subscribe):
            let denied = subscribe.subscriptions.indices.filter { index in
                !authorize(
                    .subscribe(filter: subscribe.subscriptions[index].topicFilter), connected.username,
                    connected.clientIdentifier)
            }
            outputs.append(.submit(.subscribe(connection, subscribe, denied: denied)))
        case .unsubscribe(let unsubscribe):
            outputs.append(.submit(.unsubscribe(connection, unsubscribe)))
        case .pingReq:
            outputs.append(.send(.pingResp))
        case .disconnect(let disconnect):
            let newExpiry = disconnect.properties.sessionExpiryIntervalSeconds
            if let newExpiry, newExpiry != 0, connected.sessionExpiryIntervalSeconds == 0 {
                // §3.14.2.2.2: a session that was to end at once cannot be extended here.
                fail(.protocolError, "session expiry set on DISCONNECT after 0 on CONNECT", into: &outputs)
                return
            }
            // Only reason 0x00 discards the will (§3.1.2.5).
            let cause: SessionClose.Cause =
                disconnect.reasonCode == .normalDisconnection ? .normalDisconnect : .disconnectWithWill
            outputs.append(closed(SessionClose(cause: cause, sessionExpiryIntervalSeconds: newExpiry)))
            state = .closed
            outputs.append(.close)
        case .connect:
            fail(.protocolError, "second CONNECT", into: &outputs)
        case .auth:
            fail(.protocolError, "AUTH without an authentication method", into: &outputs)
        case .connAck, .subAck, .unsubAck, .pingResp:
            fail(.protocolError, "\(packet.packetType) is sent by servers only", into: &outputs)
        }
    }

    private func validateTopicName(_ topicName: String) -> ReasonCode? {
        if topicName.utf8.count > limits.topicLengthMax { return .topicNameInvalid }
        var levels = 1
        for byte in topicName.utf8 where byte == UInt8(ascii: "/") {
            levels += 1
            if levels > limits.topicLevelCountMax { return .topicNameInvalid }
        }
        return nil
    }

    /// The decoder refused the client's bytes.
    mutating func decodeFailed(_ error: MQTTDecodeError, into outputs: inout [Output]) {
        switch state {
        case .awaitingConnect:
            // A CONNECT we cannot read: 5.0 §3.1.4 answers a bad version with CONNACK 0x84.
            if error.reasonCode == .unsupportedProtocolVersion {
                if let level = error.protocolLevel, level < ProtocolVersion.v5.rawValue { protocolVersion = .v311 }
                outputs.append(.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .unsupportedProtocolVersion))))
            }
            state = .closed
            outputs.append(.close)
        case .authenticating(let connect, _):
            refuse(error.reasonCode, version: connect.protocolVersion, into: &outputs)
        case .connected:
            // A second CONNECT is a protocol error whatever it holds; 0x84 is no DISCONNECT code.
            let reasonCode = error.reasonCode == .unsupportedProtocolVersion ? .protocolError : error.reasonCode
            fail(reasonCode, "\(error)", into: &outputs)
        case .closed:
            return
        case .modifying:
            preconditionFailure("re-entrant decode failure")
        }
    }

    // MARK: Outbound

    /// An action of the broker core for this connection.
    mutating func brokerAction(_ action: BrokerAction, into outputs: inout [Output]) {
        guard case .connected(var connected) = state else { return }
        state = .modifying  // see `received`: no copy-on-write per action
        switch action {
        case .connAck(_, let sessionPresent, let reasonCode):
            var connAck = ConnAck(sessionPresent: sessionPresent, reasonCode: reasonCode)
            if connected.version == .v5 {
                // It fits the client's Maximum Packet Size: checked before the session opened.
                connAck.properties = capabilities(connected)
            }
            outputs.append(.send(.connAck(connAck)))
            guard !reasonCode.isFailure else {
                state = .closed
                outputs.append(.close)
                return
            }
            connected.connAckSent = true
            let keepAlive = connected.serverKeepAliveSeconds ?? connected.keepAliveSeconds
            if keepAlive > 0 {
                // §3.1.2.10: one and a half times the keep alive without a packet ends it.
                outputs.append(.watchKeepAlive(timeoutMillis: Int64(keepAlive) * 1500))
            }
        case .send(_, var packet):
            switch packet {
            case .publish(var publish):
                let (topicName, alias) = connected.aliases.applyOutbound(topicName: publish.topicName) {
                    topicName, alias in
                    var candidate = publish
                    candidate.topicName = topicName
                    candidate.properties.topicAlias = alias
                    return fitsClient(.publish(candidate))
                }
                publish.topicName = topicName
                publish.properties.topicAlias = alias
                packet = .publish(publish)
            case .pubAck(let pubAck):
                connected.inboundUnacknowledged.remove(pubAck.packetIdentifier)
            case .pubRec(let pubRec) where pubRec.reasonCode.isFailure:
                connected.inboundUnacknowledged.remove(pubRec.packetIdentifier)
            case .pubComp(let pubComp):
                connected.inboundUnacknowledged.remove(pubComp.packetIdentifier)
            default:
                break
            }
            outputs.append(.send(packet))
        case .disconnect(_, let reasonCode):
            if connected.version == .v5 { outputs.append(.send(.disconnect(Disconnect(reasonCode: reasonCode)))) }
            state = .closed
            outputs.append(.close)
            return
        }
        state = .connected(connected)
    }

    private func fitsClient(_ packet: Packet) -> Bool {
        guard let maximum = clientMaximumPacketSize else { return true }
        return packet.encodedLength(version: protocolVersion) <= Int(maximum)
    }

    /// CONNACK properties of 5.0: what this broker enforces and what it decided (§3.2.2.3).
    /// None that only repeats the protocol's default: retain, wildcard, shared subscriptions and
    /// subscription identifiers are available when absent, Receive Maximum 65,535 and Topic
    /// Alias Maximum 0 are the defaults; so the CONNACK stays small for small clients.
    private func capabilities(_ connected: Connected) -> Properties {
        var properties = Properties()
        if limits.receiveMaximum != UInt16.max { properties.receiveMaximum = limits.receiveMaximum }
        properties.maximumPacketSize = UInt32(clamping: limits.maximumPacketSizeBytes)
        if limits.topicAliasMaximum != 0 { properties.topicAliasMaximum = limits.topicAliasMaximum }
        properties.assignedClientIdentifier = connected.assignedIdentifier
        properties.serverKeepAliveSeconds = connected.serverKeepAliveSeconds
        return properties
    }

    // MARK: Timers and the end

    /// No packet from the client for 1.5 times the keep alive (§3.1.2.10).
    mutating func keepAliveExpired(into outputs: inout [Output]) {
        fail(.keepAliveTimeout, "no packet within 1.5 times the keep alive", into: &outputs)
    }

    /// CONNECT did not complete in time: the deadline holds until CONNACK is sent, so a
    /// session open that is never answered (a stalled store, a lost event) still ends.
    mutating func connectTimedOut(into outputs: inout [Output]) {
        switch state {
        case .awaitingConnect, .authenticating:
            state = .closed
            outputs.append(.close)
        case .connected(let connected) where !connected.connAckSent:
            // The open may still be applied: the close follows it in the order and ends it.
            outputs.append(closed(SessionClose(cause: .abnormal)))
            state = .closed
            outputs.append(.close)
        case .connected, .closed, .modifying:
            return
        }
    }

    /// The orderer refused an event of this connection (the store is full or failed, or the
    /// event is too large). Before CONNACK the CONNECT is refused with the reason; after it the
    /// connection ends with the reason (5.0) or is closed (3.1.1).
    mutating func submitRefused(_ reasonCode: ReasonCode, into outputs: inout [Output]) {
        switch state {
        case .connected(let connected) where !connected.connAckSent:
            // The open was never applied: nothing to end in the broker.
            refuse(reasonCode, version: connected.version, into: &outputs)
        case .connected:
            fail(reasonCode, "refused by the broker's store (\(reasonCode))", into: &outputs)
        case .awaitingConnect, .authenticating, .closed, .modifying:
            return
        }
    }

    /// The broker is stopping: 5.0 clients hear 0x8B (§3.14.2.1). The session ends through
    /// the order like any lost connection (its will, its expiry), so the log holds it.
    mutating func shutdown(into outputs: inout [Output]) {
        if case .connected(let connected) = state {
            if connected.version == .v5 && connected.connAckSent {
                outputs.append(.send(.disconnect(Disconnect(reasonCode: .serverShuttingDown))))
            }
            outputs.append(closed(SessionClose(cause: .abnormal)))
        }
        state = .closed
        outputs.append(.close)
    }

    /// The socket closed, for whatever reason. The broker learns it unless it already did.
    mutating func channelClosed(into outputs: inout [Output]) {
        if case .connected = state {
            outputs.append(closed(SessionClose(cause: .abnormal)))
        }
        state = .closed
    }

    /// Ends the connection for a protocol violation: DISCONNECT with the reason in 5.0 (after
    /// CONNACK), a plain close in 3.1.1 (§4.13). The broker learns of it as an abnormal close,
    /// so the will is published.
    private mutating func fail(_ reasonCode: ReasonCode, _ reason: String, into outputs: inout [Output]) {
        switch state {
        case .connected, .modifying:
            if protocolVersion == .v5 {
                var disconnect = Disconnect(reasonCode: reasonCode)
                if requestProblemInformation {
                    disconnect.properties.reasonString = reason
                    // A reason string must not make the packet too large for the client [MQTT-3.14.2-3].
                    if !fitsClient(.disconnect(disconnect)) { disconnect.properties.reasonString = nil }
                }
                outputs.append(.send(.disconnect(disconnect)))
            }
            outputs.append(closed(SessionClose(cause: .abnormal)))
        case .awaitingConnect, .authenticating, .closed:
            break
        }
        state = .closed
        outputs.append(.close)
    }

    /// The output that tells the broker the session ended: a close that would publish a will
    /// has the will authorised again first.
    private func closed(_ close: SessionClose) -> Output {
        if close.cause.publishesWill, let willPublish { return .submitCloseAuthorizingWill(close, willPublish.value) }
        return .submit(.sessionClose(connection, close))
    }

    /// Refuses a CONNECT with a CONNACK failure and closes (§3.2.2.2).
    private mutating func refuse(_ reasonCode: ReasonCode, version: ProtocolVersion, into outputs: inout [Output]) {
        let connAck = Packet.connAck(ConnAck(sessionPresent: false, reasonCode: reasonCode))
        // A limit under the five bytes of a bare CONNACK gets the close alone [MQTT-3.1.2-24].
        outputs.append(fitsClient(connAck) ? .send(connAck) : .refusedUnannounced(reasonCode))
        state = .closed
        outputs.append(.close)
    }
}
