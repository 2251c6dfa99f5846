import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Drives one `ConnectionStateMachine` without a channel: packets, authentication answers,
/// broker actions and timer expiries in, outputs out.
struct MachineHarness {
    static let connection = cid(7)
    var machine: ConnectionStateMachine

    init(limits: ConnectionLimits = MachineHarness.limits()) {
        machine = ConnectionStateMachine(connection: Self.connection, limits: limits)
    }

    static func limits(anonymous: Bool = true, configure: (inout ConnectionLimits) -> Void = { _ in })
        -> ConnectionLimits
    {
        var limits = ConnectionLimits()
        limits.allowAnonymousLogin = anonymous
        configure(&limits)
        return limits
    }

    mutating func receive(_ packet: Packet) -> [ConnectionStateMachine.Output] {
        var outputs: [ConnectionStateMachine.Output] = []
        machine.received(packet, makeIdentifier: { "assigned-1" }, into: &outputs)
        return outputs
    }

    mutating func authenticated(_ accepted: Bool = true) -> [ConnectionStateMachine.Output] {
        var outputs: [ConnectionStateMachine.Output] = []
        machine.authenticationCompleted(accepted: accepted, authorize: { _, _, _ in true }, into: &outputs)
        return outputs
    }

    mutating func broker(_ action: BrokerAction) -> [ConnectionStateMachine.Output] {
        var outputs: [ConnectionStateMachine.Output] = []
        machine.brokerAction(action, into: &outputs)
        return outputs
    }

    mutating func run(_ input: (inout ConnectionStateMachine, inout [ConnectionStateMachine.Output]) -> Void)
        -> [ConnectionStateMachine.Output]
    {
        var outputs: [ConnectionStateMachine.Output] = []
        input(&machine, &outputs)
        return outputs
    }

    /// CONNECT, accepted credentials, CONNACK success: a connected machine. Returns the
    /// outputs of the CONNACK.
    @discardableResult
    mutating func connected(_ connect: Connect = MachineHarness.connect()) -> [ConnectionStateMachine.Output] {
        _ = receive(.connect(connect))
        _ = authenticated()
        return broker(.connAck(Self.connection, sessionPresent: false, reasonCode: .success))
    }

    static func connect(
        _ version: ProtocolVersion = .v5, clientIdentifier: String = "client", cleanStart: Bool = true,
        keepAlive: UInt16 = 0, username: String? = nil, configure: (inout Connect) -> Void = { _ in }
    ) -> Connect {
        var connect = Connect(
            protocolVersion: version, cleanStart: cleanStart, keepAliveSeconds: keepAlive,
            clientIdentifier: clientIdentifier, username: username, password: username.map { _ in Array("pw".utf8) })
        configure(&connect)
        return connect
    }

    static func publish(_ topic: String, qos: QoS = .atMostOnce, packetIdentifier: UInt16? = nil, alias: UInt16? = nil)
        -> Packet
    {
        var properties = Properties()
        properties.topicAlias = alias
        return .publish(
            Publish(
                topicName: topic, payload: ByteBuffer(string: "m"), qos: qos, packetIdentifier: packetIdentifier,
                properties: properties))
    }

    static func submitted(_ event: BrokerEvent) -> ConnectionStateMachine.Output { .submit(event) }
    static var abnormalClose: ConnectionStateMachine.Output {
        submitted(.sessionClose(connection, SessionClose(cause: .abnormal)))
    }
    static func disconnect(_ code: ReasonCode) -> ConnectionStateMachine.Output {
        .send(.disconnect(Disconnect(reasonCode: code)))
    }

    /// The reason code of a DISCONNECT first in `outputs` (its reason string aside).
    static func disconnectCode(_ outputs: [ConnectionStateMachine.Output]) -> ReasonCode? {
        guard case .send(.disconnect(let disconnect)) = outputs.first else { return nil }
        return disconnect.reasonCode
    }
}

@Suite struct ConnectionStateMachineTests {
    typealias H = MachineHarness

    // Goal: the first packet must be CONNECT; anything else closes without a word (MQTT 5.0
    // §3.1 [MQTT-3.1.0-1], §4.13).
    @Test func firstPacketNotConnectCloses() {
        var harness = H()
        #expect(harness.receive(.pingReq) == [.close])
        #expect(harness.machine.isClosed)
        #expect(harness.receive(.connect(H.connect())) == [])
    }

    // Goal: an anonymous CONNECT is refused with 0x87 Not authorized unless anonymous login is
    // allowed (MQTT 5.0 §3.2.2.2; 3.1.1 writes it as return code 5, §3.2.2.3).
    @Test(arguments: [ProtocolVersion.v5, .v311])
    func anonymousRefused(version: ProtocolVersion) {
        var harness = H(limits: H.limits(anonymous: false))
        #expect(
            harness.receive(.connect(H.connect(version)))
                == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .notAuthorized))), .close])
        #expect(ConnAck.returnCode(for: .notAuthorized) == 5)
        #expect(harness.machine.isClosed)

        var named = H(limits: H.limits(anonymous: false))
        #expect(
            named.receive(.connect(H.connect(version, username: "u"))) == [
                .authenticate(username: "u", password: Array("pw".utf8))
            ])
        var allowed = H(limits: H.limits(anonymous: true))
        #expect(allowed.receive(.connect(H.connect(version))) == [.authenticate(username: nil, password: nil)])
        #expect(!allowed.machine.isReading)
    }

    // Goal: with --tls-cert-as-username, the client certificate's common name is the user
    // name and authenticates the client (no password check, whatever CONNECT carries); a TLS
    // client whose certificate has no common name is refused with 0x87.
    @Test func certificateIdentityIsTheUserName() {
        var harness = H(limits: H.limits(anonymous: false))
        var outputs: [ConnectionStateMachine.Output] = []
        harness.machine.received(
            .connect(H.connect(username: "bob")), makeIdentifier: { "x" }, certificateIdentity: { .name("alice") },
            into: &outputs)
        #expect(outputs.count == 1)
        guard case .submit(.sessionOpen(let open)) = outputs.first else {
            Issue.record("expected the session open at once, got \(outputs)")
            return
        }
        #expect(open.clientIdentifier == "client")
        guard case .connected(let connected) = harness.machine.state else {
            Issue.record("not connected")
            return
        }
        #expect(connected.username == "alice")

        var nameless = H(limits: H.limits(anonymous: true))
        var refused: [ConnectionStateMachine.Output] = []
        nameless.machine.received(
            .connect(H.connect()), makeIdentifier: { "x" }, certificateIdentity: { .missing }, into: &refused)
        #expect(refused == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .notAuthorized))), .close])
    }

    // Goal: refused credentials give CONNACK 0x86 Bad User Name or Password and close (MQTT 5.0
    // §3.1.4, §3.2.2.2).
    @Test func badCredentialsRefused() {
        var harness = H(limits: H.limits(anonymous: false))
        _ = harness.receive(.connect(H.connect(username: "u")))
        #expect(
            harness.authenticated(false) == [
                .send(.connAck(ConnAck(sessionPresent: false, reasonCode: .badUserNameOrPassword))), .close,
            ])
        #expect(harness.machine.isClosed)
    }

    // Goal: 3.1.1 refuses an empty client identifier with Clean Session 0 (3.1.1 §3.1.3.1
    // [MQTT-3.1.3-8], return code 2 = 0x85); with Clean Session 1 one is assigned.
    @Test func emptyClientIdentifier311() {
        var persistent = H()
        #expect(
            persistent.receive(.connect(H.connect(.v311, clientIdentifier: "", cleanStart: false)))
                == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .clientIdentifierNotValid))), .close])
        var clean = H()
        _ = clean.receive(.connect(H.connect(.v311, clientIdentifier: "", cleanStart: true)))
        let outputs = clean.authenticated()
        guard case .submit(.sessionOpen(let open)) = outputs.first else {
            Issue.record("expected a session open, got \(outputs)")
            return
        }
        #expect(open.clientIdentifier == "assigned-1")
        // 3.1.1 has no properties to tell the client.
        let connAck = clean.broker(.connAck(H.connection, sessionPresent: false, reasonCode: .success))
        #expect(connAck == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .success)))])
    }

    // Goal: 5.0 assigns an identifier to an empty one and returns it as Assigned Client
    // Identifier in CONNACK (MQTT 5.0 §3.1.3.1 [MQTT-3.1.3-6], §3.2.2.3.7).
    @Test func emptyClientIdentifier5Assigned() {
        var harness = H()
        _ = harness.receive(.connect(H.connect(clientIdentifier: "", cleanStart: false)))
        let opened = harness.authenticated()
        guard case .submit(.sessionOpen(let open)) = opened.first else {
            Issue.record("expected a session open, got \(opened)")
            return
        }
        #expect(open.clientIdentifier == "assigned-1")
        let outputs = harness.broker(.connAck(H.connection, sessionPresent: false, reasonCode: .success))
        guard case .send(.connAck(let connAck)) = outputs.first else {
            Issue.record("expected CONNACK, got \(outputs)")
            return
        }
        #expect(connAck.properties.assignedClientIdentifier == "assigned-1")
    }

    // Goal: the session open carries what CONNECT said: version, clean start, session expiry
    // (3.1.1 maps Clean Session 0 to never), will, receive maximum, maximum packet size (MQTT
    // 5.0 §3.1.2).
    @Test func sessionOpenCarriesTheConnect() {
        var harness = H()
        let lastWill = will("w/t", qos: .atLeastOnce)
        _ = harness.receive(
            .connect(
                H.connect(cleanStart: false) {
                    $0.will = lastWill
                    $0.properties.sessionExpiryIntervalSeconds = 30
                    $0.properties.receiveMaximum = 5
                    $0.properties.maximumPacketSize = 1000
                }))
        let expected = SessionOpen(
            connection: H.connection, clientIdentifier: "client", protocolVersion: .v5, cleanStart: false,
            sessionExpiryIntervalSeconds: 30, will: lastWill, receiveMaximum: 5, maximumPacketSize: 1000)
        #expect(harness.authenticated() == [H.submitted(.sessionOpen(expected))])

        var old = H()
        _ = old.receive(.connect(H.connect(.v311, cleanStart: false) { $0.properties.receiveMaximum = 5 }))
        let expectedOld = SessionOpen(
            connection: H.connection, clientIdentifier: "client", protocolVersion: .v311, cleanStart: false,
            sessionExpiryIntervalSeconds: UInt32.max, will: nil, receiveMaximum: UInt16.max, maximumPacketSize: nil)
        #expect(old.authenticated() == [H.submitted(.sessionOpen(expectedOld))])
    }

    // Goal: CONNACK of 5.0 announces the broker's capabilities and limits (MQTT 5.0 §3.2.2.3),
    // and the keep alive watch is 1.5 times the keep alive (§3.1.2.10).
    @Test func connAckCapabilities() {
        var harness = H(
            limits: H.limits {
                $0.receiveMaximum = 10
                $0.maximumPacketSizeBytes = 2000
                $0.topicAliasMaximum = 3
            })
        let outputs = harness.connected(H.connect(keepAlive: 20))
        var properties = Properties()
        properties.receiveMaximum = 10
        properties.maximumPacketSize = 2000
        properties.topicAliasMaximum = 3
        // The "available" flags are absent: 1 is their default (§3.2.2.3.5, .11, .12, .13).
        #expect(
            outputs == [
                .send(.connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: properties))),
                .watchKeepAlive(timeoutMillis: 30_000),
            ])
    }

    // Goal: a keep alive above the broker's maximum (or 0) is replaced by Server Keep Alive in
    // CONNACK, and the watch uses it (MQTT 5.0 §3.1.2.10, §3.2.2.3.14).
    @Test(arguments: [UInt16(0), 100])
    func serverKeepAlive(clientKeepAlive: UInt16) {
        var harness = H(limits: H.limits { $0.keepAliveMaximumSeconds = 60 })
        let outputs = harness.connected(H.connect(keepAlive: clientKeepAlive))
        guard case .send(.connAck(let connAck)) = outputs.first else {
            Issue.record("expected CONNACK, got \(outputs)")
            return
        }
        #expect(connAck.properties.serverKeepAliveSeconds == 60)
        #expect(outputs.last == .watchKeepAlive(timeoutMillis: 90_000))
    }

    // Goal: a failed CONNACK from the broker (e.g. quota) is sent and the connection closes
    // (MQTT 5.0 §3.2.2.2 [MQTT-3.2.2-7]).
    @Test func brokerRefusalClosesAfterConnAck() {
        var harness = H()
        _ = harness.receive(.connect(H.connect()))
        _ = harness.authenticated()
        let outputs = harness.broker(.connAck(H.connection, sessionPresent: false, reasonCode: .quotaExceeded))
        #expect(outputs.count == 2)
        #expect(outputs.last == .close)
        #expect(harness.machine.isClosed)
    }

    // Goal: a second CONNECT is a Protocol Error: 5.0 gets DISCONNECT 0x82, 3.1.1 a plain close
    // (MQTT 5.0 §3.1 [MQTT-3.1.0-2], §4.13); the broker learns of an abnormal close.
    @Test func secondConnect() {
        var v5 = H()
        v5.connected()
        let outputs = v5.receive(.connect(H.connect()))
        #expect(H.disconnectCode(outputs) == .protocolError)
        #expect(Array(outputs.dropFirst()) == [H.abnormalClose, .close])
        var v311 = H()
        v311.connected(H.connect(.v311))
        #expect(v311.receive(.connect(H.connect(.v311))) == [H.abnormalClose, .close])
        #expect(v311.receive(.pingReq) == [])
    }

    // Goal: inbound topic aliases: defined with a topic, reused with an empty topic, 0 or above
    // our maximum is 0x94, an unknown alias is 0x82 (MQTT 5.0 §3.3.2.3.4 [MQTT-3.3.2-7..9]).
    @Test func inboundTopicAliases() {
        var harness = H(limits: H.limits { $0.topicAliasMaximum = 2 })
        harness.connected()
        let resolved = Publish(topicName: "t/1", payload: ByteBuffer(string: "m"))
        #expect(harness.receive(H.publish("t/1", alias: 1)) == [H.submitted(.publish(H.connection, resolved))])
        #expect(harness.receive(H.publish("", alias: 1)) == [H.submitted(.publish(H.connection, resolved))])
        // Redefinition replaces the mapping.
        let other = Publish(topicName: "t/2", payload: ByteBuffer(string: "m"))
        #expect(harness.receive(H.publish("t/2", alias: 1)) == [H.submitted(.publish(H.connection, other))])
        #expect(harness.receive(H.publish("", alias: 1)) == [H.submitted(.publish(H.connection, other))])

        for (alias, code) in [(UInt16(0), ReasonCode.topicAliasInvalid), (3, .topicAliasInvalid), (2, .protocolError)] {
            var fresh = H(limits: H.limits { $0.topicAliasMaximum = 2 })
            fresh.connected()
            let outputs = fresh.receive(H.publish(alias == 2 ? "" : "t", alias: alias))
            #expect(outputs.count == 3)
            guard case .send(.disconnect(let disconnect)) = outputs.first else {
                Issue.record("alias \(alias): expected DISCONNECT, got \(outputs)")
                continue
            }
            #expect(disconnect.reasonCode == code, "alias \(alias)")
            #expect(Array(outputs.dropFirst()) == [H.abnormalClose, .close])
        }
    }

    // Goal: more unacknowledged inbound QoS 1/2 PUBLISHes than our Receive Maximum is 0x93;
    // PUBACK and PUBCOMP from the broker free slots (MQTT 5.0 §3.3.4 [MQTT-3.3.4-8], §4.9).
    @Test func receiveMaximumExceeded() {
        var harness = H(limits: H.limits { $0.receiveMaximum = 2 })
        harness.connected()
        #expect(harness.receive(H.publish("t", qos: .atLeastOnce, packetIdentifier: 1)).count == 1)
        #expect(harness.receive(H.publish("t", qos: .exactlyOnce, packetIdentifier: 2)).count == 1)
        // A resend of an identifier already counted takes no new slot.
        #expect(harness.receive(H.publish("t", qos: .atLeastOnce, packetIdentifier: 1)).count == 1)
        #expect(
            harness.broker(.send(H.connection, .pubAck(PubAck(packetIdentifier: 1)))) == [
                .send(.pubAck(PubAck(packetIdentifier: 1)))
            ])
        #expect(harness.receive(H.publish("t", qos: .atLeastOnce, packetIdentifier: 3)).count == 1)
        // PUBREC (success) keeps the QoS 2 slot; only PUBCOMP frees it.
        _ = harness.broker(.send(H.connection, .pubRec(PubRec(packetIdentifier: 2))))
        let exceeded = harness.receive(H.publish("t", qos: .atLeastOnce, packetIdentifier: 4))
        guard case .send(.disconnect(let disconnect)) = exceeded.first else {
            Issue.record("expected DISCONNECT, got \(exceeded)")
            return
        }
        #expect(disconnect.reasonCode == .receiveMaximumExceeded)
        #expect(Array(exceeded.dropFirst()) == [H.abnormalClose, .close])
    }

    // Goal: PUBCOMP and a failed PUBREC from the broker free an inbound QoS 2 slot (MQTT 5.0
    // §4.9: the quota returns on PUBCOMP or PUBREC >= 0x80).
    @Test func receiveMaximumSlotsFreedByPubCompAndFailedPubRec() {
        var harness = H(limits: H.limits { $0.receiveMaximum = 1 })
        harness.connected()
        #expect(harness.receive(H.publish("t", qos: .exactlyOnce, packetIdentifier: 1)).count == 1)
        _ = harness.broker(.send(H.connection, .pubComp(PubComp(packetIdentifier: 1))))
        #expect(harness.receive(H.publish("t", qos: .exactlyOnce, packetIdentifier: 2)).count == 1)
        _ = harness.broker(.send(H.connection, .pubRec(PubRec(packetIdentifier: 2, reasonCode: .quotaExceeded))))
        #expect(harness.receive(H.publish("t", qos: .exactlyOnce, packetIdentifier: 3)).count == 1)
    }

    // Goal: DISCONNECT 0x04 ends the session with the will, 0x00 without it; both close
    // (MQTT 5.0 §3.14.2.1, §3.1.2.5).
    @Test(arguments: [
        (ReasonCode.disconnectWithWillMessage, SessionClose.Cause.disconnectWithWill),
        (ReasonCode.normalDisconnection, SessionClose.Cause.normalDisconnect),
    ])
    func disconnectCause(code: ReasonCode, cause: SessionClose.Cause) {
        var harness = H()
        harness.connected()
        #expect(
            harness.receive(.disconnect(Disconnect(reasonCode: code)))
                == [H.submitted(.sessionClose(H.connection, SessionClose(cause: cause))), .close])
        #expect(harness.machine.isClosed)
        // The broker already knows: the socket closing adds nothing.
        #expect(harness.run { machine, outputs in machine.channelClosed(into: &outputs) } == [])
    }

    // Goal: DISCONNECT may change the Session Expiry Interval, except from 0 to non-zero,
    // which is a Protocol Error (MQTT 5.0 §3.14.2.2.2 [MQTT-3.14.2-2]).
    @Test func disconnectSessionExpiry() {
        var zero = H()
        zero.connected()
        var properties = Properties()
        properties.sessionExpiryIntervalSeconds = 30
        let refused = zero.receive(.disconnect(Disconnect(reasonCode: .normalDisconnection, properties: properties)))
        guard case .send(.disconnect(let disconnect)) = refused.first else {
            Issue.record("expected DISCONNECT, got \(refused)")
            return
        }
        #expect(disconnect.reasonCode == .protocolError)
        #expect(Array(refused.dropFirst()) == [H.abnormalClose, .close])

        var kept = H()
        kept.connected(H.connect { $0.properties.sessionExpiryIntervalSeconds = 10 })
        #expect(
            kept.receive(.disconnect(Disconnect(reasonCode: .normalDisconnection, properties: properties)))
                == [
                    H.submitted(
                        .sessionClose(
                            H.connection, SessionClose(cause: .normalDisconnect, sessionExpiryIntervalSeconds: 30))),
                    .close,
                ])
    }

    // Goal: keep alive expiry sends DISCONNECT 0x8D and closes as abnormal (MQTT 5.0 §3.1.2.10
    // [MQTT-3.1.2-22]).
    @Test func keepAliveExpired() {
        var harness = H()
        harness.connected(H.connect(keepAlive: 10))
        let outputs = harness.run { $0.keepAliveExpired(into: &$1) }
        #expect(H.disconnectCode(outputs) == .keepAliveTimeout)
        #expect(Array(outputs.dropFirst()) == [H.abnormalClose, .close])
    }

    // Goal: problem information is added to DISCONNECT only when the client did not refuse it
    // (MQTT 5.0 §3.1.2.11.7: Request Problem Information).
    @Test func reasonStringFollowsRequestProblemInformation() {
        var asked = H()
        asked.connected(H.connect(keepAlive: 10))
        let withReason = asked.run { $0.keepAliveExpired(into: &$1) }
        guard case .send(.disconnect(let disconnect)) = withReason.first else {
            Issue.record("expected DISCONNECT")
            return
        }
        #expect(disconnect.properties.reasonString != nil)
        var refused = H()
        refused.connected(H.connect(keepAlive: 10) { $0.properties.requestProblemInformation = 0 })
        #expect(refused.run { $0.keepAliveExpired(into: &$1) }.first == H.disconnect(.keepAliveTimeout))
    }

    // Goal: the CONNECT deadline holds until CONNACK is sent: a session open that the broker
    // never answers (a stalled store) ends the connection, and the broker learns of the end
    // after the open, so a late open is closed again. Before, the deadline stopped at the open.
    @Test func connectDeadlineHoldsUntilConnAck() {
        var waiting = H()
        _ = waiting.receive(.connect(H.connect()))
        _ = waiting.run { $0.authenticationCompleted(accepted: true, authorize: { _, _, _ in true }, into: &$1) }
        #expect(
            waiting.run { $0.connectTimedOut(into: &$1) }
                == [H.submitted(.sessionClose(H.connection, SessionClose(cause: .abnormal))), .close])
        var answered = H()
        answered.connected()
        #expect(answered.run { $0.connectTimedOut(into: &$1) } == [])
    }

    // Goal: a refused session open gets a CONNACK with the orderer's reason (0x88 store failed,
    // 0x97 store full) and nothing is ended in the broker (the open was never applied); a
    // refused PUBLISH after CONNACK ends the connection with the reason (5.0) and the session
    // through the order.
    @Test func refusedSubmissions() {
        var opening = H()
        _ = opening.receive(.connect(H.connect()))
        _ = opening.run { $0.authenticationCompleted(accepted: true, authorize: { _, _, _ in true }, into: &$1) }
        #expect(
            opening.run { $0.submitRefused(.serverUnavailable, into: &$1) }
                == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .serverUnavailable))), .close])
        var publishing = H()
        publishing.connected()
        let outputs = publishing.run { $0.submitRefused(.quotaExceeded, into: &$1) }
        #expect(H.disconnectCode(outputs) == .quotaExceeded)
        #expect(outputs.contains(H.submitted(.sessionClose(H.connection, SessionClose(cause: .abnormal)))))
        #expect(outputs.last == .close)
    }

    // Goal: a server shutdown sends DISCONNECT 0x8B to 5.0 clients after CONNACK, nothing to
    // 3.1.1 clients, ends the session through the order (so the log holds the end, its will
    // and its expiry), then closes (MQTT 5.0 §3.14.2.1).
    @Test func shutdown() {
        let ended = H.submitted(.sessionClose(H.connection, SessionClose(cause: .abnormal)))
        var v5 = H()
        v5.connected()
        #expect(v5.run { $0.shutdown(into: &$1) } == [H.disconnect(.serverShuttingDown), ended, .close])
        var v311 = H()
        v311.connected(H.connect(.v311))
        #expect(v311.run { $0.shutdown(into: &$1) } == [ended, .close])
        var connecting = H()
        _ = connecting.receive(.connect(H.connect()))
        #expect(connecting.run { $0.shutdown(into: &$1) } == [.close])
    }

    // Goal: the broker's DISCONNECT (e.g. takeover 0x8E) goes to 5.0 clients and closes; the
    // broker is not told again (MQTT 5.0 §3.1.4, §3.14).
    @Test func brokerDisconnect() {
        var harness = H()
        harness.connected()
        #expect(
            harness.broker(.disconnect(H.connection, .sessionTakenOver)) == [H.disconnect(.sessionTakenOver), .close])
        #expect(harness.run { $0.channelClosed(into: &$1) } == [])
    }

    // Goal: a socket that closes while connected tells the broker of an abnormal close, so
    // the will is published (MQTT 5.0 §3.1.2.5).
    @Test func channelClosedWhileConnected() {
        var harness = H()
        harness.connected()
        #expect(harness.run { $0.channelClosed(into: &$1) } == [H.abnormalClose])
    }

    // Goal: outbound topic aliases are assigned when the client announced a Topic Alias
    // Maximum: the first PUBLISH of a topic defines it, later ones send only the alias, and no
    // alias beyond the maximum is used (MQTT 5.0 §3.3.2.3.4 [MQTT-3.3.2-11]).
    @Test func outboundTopicAliases() {
        var harness = H()
        harness.connected(H.connect { $0.properties.topicAliasMaximum = 2 })
        func send(_ topic: String) -> Publish? {
            let outputs = harness.broker(
                .send(H.connection, .publish(Publish(topicName: topic, payload: ByteBuffer(string: "m")))))
            guard case .send(.publish(let publish)) = outputs.first else { return nil }
            return publish
        }
        #expect(send("x").map { ($0.topicName, $0.properties.topicAlias) }! == ("x", 1))
        #expect(send("x").map { ($0.topicName, $0.properties.topicAlias) }! == ("", 1))
        #expect(send("y").map { ($0.topicName, $0.properties.topicAlias) }! == ("y", 2))
        #expect(send("z").map { ($0.topicName, $0.properties.topicAlias) }! == ("z", nil))
        #expect(send("y").map { ($0.topicName, $0.properties.topicAlias) }! == ("", 2))

        var none = H()
        none.connected()
        let plain = none.broker(.send(H.connection, .publish(Publish(topicName: "x", payload: ByteBuffer()))))
        #expect(plain == [.send(.publish(Publish(topicName: "x", payload: ByteBuffer())))])
    }

    // Goal: an unsupported protocol version before CONNECT is answered with CONNACK 0x84 and a
    // close (MQTT 5.0 §3.1.2.2 [MQTT-3.1.2-2]); any other unreadable CONNECT just closes.
    @Test func decodeFailedBeforeConnect() {
        var harness = H()
        let error = MQTTDecodeError(.unsupportedProtocolVersion, field: "CONNECT.protocolLevel", "level 3")
        #expect(
            harness.run { $0.decodeFailed(error, into: &$1) }
                == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .unsupportedProtocolVersion))), .close])
        var malformed = H()
        #expect(malformed.run { $0.decodeFailed(.malformed("CONNECT", "short"), into: &$1) } == [.close])
    }

    // Goal: a malformed packet after CONNACK is DISCONNECT 0x81 for 5.0 and a plain close for
    // 3.1.1, both an abnormal close for the broker (MQTT 5.0 §4.13).
    @Test func decodeFailedWhileConnected() {
        var v5 = H()
        v5.connected()
        let outputs = v5.run { $0.decodeFailed(.malformed("PUBLISH.qos", "QoS 3"), into: &$1) }
        #expect(H.disconnectCode(outputs) == .malformedPacket)
        #expect(Array(outputs.dropFirst()) == [H.abnormalClose, .close])
        var v311 = H()
        v311.connected(H.connect(.v311))
        #expect(
            v311.run { $0.decodeFailed(.malformed("PUBLISH.qos", "QoS 3"), into: &$1) } == [H.abnormalClose, .close])
    }

    // Goal: packets only a server sends are a Protocol Error from a client (MQTT 5.0 §4.13).
    @Test func serverPacketsFromClient() {
        var harness = H()
        harness.connected()
        let outputs = harness.receive(.pingResp)
        guard case .send(.disconnect(let disconnect)) = outputs.first else {
            Issue.record("expected DISCONNECT, got \(outputs)")
            return
        }
        #expect(disconnect.reasonCode == .protocolError)
    }

    // Goal: a CONNECT naming an authentication method is refused with 0x8C, as no enhanced
    // authentication is supported (MQTT 5.0 §4.12 [MQTT-4.12.0-1]).
    @Test func authenticationMethodRefused() {
        var harness = H()
        #expect(
            harness.receive(.connect(H.connect { $0.properties.authenticationMethod = "SCRAM-SHA-1" }))
                == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .badAuthenticationMethod))), .close])
    }

    // Goal: a topic name beyond the broker's level limit is 0x90 Topic Name Invalid (MQTT 5.0
    // §3.3.2.1, §4.7.3).
    @Test func topicNameTooDeep() {
        var harness = H(limits: H.limits { $0.topicLevelCountMax = 3 })
        harness.connected()
        #expect(harness.receive(H.publish("a/b/c")).count == 1)
        let outputs = harness.receive(H.publish("a/b/c/d"))
        guard case .send(.disconnect(let disconnect)) = outputs.first else {
            Issue.record("expected DISCONNECT, got \(outputs)")
            return
        }
        #expect(disconnect.reasonCode == .topicNameInvalid)
    }

    // Goal: PINGREQ is answered with PINGRESP, and packets for the broker become events
    // (MQTT 5.0 §3.12, §3.8, §3.4).
    @Test func pingAndEvents() {
        var harness = H()
        harness.connected()
        #expect(harness.receive(.pingReq) == [.send(.pingResp)])
        let subscribe = Subscribe(
            packetIdentifier: 3,
            subscriptions: [TopicSubscription(topicFilter: "t", options: SubscriptionOptions(qos: .atLeastOnce))])
        #expect(harness.receive(.subscribe(subscribe)) == [H.submitted(.subscribe(H.connection, subscribe))])
        #expect(
            harness.receive(.pubAck(PubAck(packetIdentifier: 9))) == [
                H.submitted(.pubAck(H.connection, packetIdentifier: 9))
            ])
        #expect(
            harness.receive(.pubRel(PubRel(packetIdentifier: 9))) == [
                H.submitted(.pubRel(H.connection, packetIdentifier: 9))
            ])
    }
}

extension ConnectionStateMachineTests {
    // Goal: a client PUBLISH carrying a Subscription Identifier is a protocol error: only the
    // server sets them (MQTT 5.0 §3.3.4 [MQTT-3.3.4-6]).
    @Test func clientPublishWithSubscriptionIdentifierIsAProtocolError() {
        var harness = H()
        harness.connected()
        var publish = Publish(topicName: "t", payload: ByteBuffer(string: "x"))
        publish.properties.subscriptionIdentifiers = [7]
        let outputs = harness.receive(.publish(publish))
        guard case .send(.disconnect(let disconnect)) = outputs.first else {
            Issue.record("expected DISCONNECT, got \(outputs)")
            return
        }
        #expect(disconnect.reasonCode == .protocolError)
        #expect(outputs.last == .close)
    }
}

/// Findings of the spec review, each pinned by a test.
@Suite struct ConnectionStateMachineReviewTests {
    typealias H = MachineHarness

    // Goal: a CONNECT of level 3 (or 4's predecessor "MQIsdp") is refused in the 3.x form, so
    // the client reads return code 0x01 (3.1.1 §3.1.2.2 [MQTT-3.1.2-2]); level 6 stays 5.0.
    @Test func unsupportedOldLevelIsRefusedIn311Form() {
        var old = H()
        var error = MQTTDecodeError(.unsupportedProtocolVersion, field: "CONNECT.protocolLevel", "protocol level 3")
        error.protocolLevel = 3
        let outputs = old.run { machine, outputs in machine.decodeFailed(error, into: &outputs) }
        #expect(
            outputs == [
                .send(.connAck(ConnAck(sessionPresent: false, reasonCode: .unsupportedProtocolVersion))), .close,
            ])
        #expect(old.machine.protocolVersion == .v311)
        var encoded = ByteBuffer()
        Packet.connAck(ConnAck(sessionPresent: false, reasonCode: .unsupportedProtocolVersion))
            .encode(into: &encoded, version: old.machine.protocolVersion)
        #expect(Array(encoded.readableBytesView) == [0x20, 0x02, 0x00, 0x01])

        var future = H()
        error.protocolLevel = 6
        _ = future.run { machine, outputs in machine.decodeFailed(error, into: &outputs) }
        #expect(future.machine.protocolVersion == .v5)
    }

    // Goal: a small client Maximum Packet Size never strips the limits the broker enforces
    // from CONNACK (Receive Maximum, Maximum Packet Size, Topic Alias Maximum, Server Keep
    // Alive): with no default repeated they fit in 20 bytes; a limit too small for any CONNACK
    // still gets one, as complete. DISCONNECT drops its reason string to fit (MQTT 5.0
    // §3.1.2.11.4 [MQTT-3.1.2-24], §3.2.2.3, §3.14.2.2.3 [MQTT-3.14.2-3]).
    @Test func smallMaximumPacketSizeKeepsTheEnforcedLimits() {
        var harness = H(limits: H.limits { $0.keepAliveMaximumSeconds = 60 })
        let outputs = harness.connected(H.connect(configure: { $0.properties.maximumPacketSize = 20 }))
        guard case .send(let connAck) = outputs.first, case .connAck(let ack) = connAck else {
            Issue.record("expected CONNACK, got \(outputs)")
            return
        }
        #expect(connAck.encodedLength(version: .v5) <= 20)
        #expect(ack.properties.receiveMaximum == H.limits { _ in }.receiveMaximum)
        #expect(ack.properties.maximumPacketSize != nil)
        #expect(ack.properties.topicAliasMaximum == H.limits { _ in }.topicAliasMaximum)
        #expect(ack.properties.serverKeepAliveSeconds == 60)
        // A limit that cannot hold those properties: no CONNACK (none may be dropped, none may
        // exceed the limit) and no session opened.
        var tiny = H(limits: H.limits { $0.keepAliveMaximumSeconds = 60 })
        _ = tiny.receive(.connect(H.connect(configure: { $0.properties.maximumPacketSize = 5 })))
        #expect(tiny.authenticated() == [.refusedUnannounced(.packetTooLarge), .close])
        // Under the five bytes of a bare CONNACK, a refusal is the close alone.
        var tinier = H(limits: H.limits(anonymous: false))
        #expect(
            tinier.receive(.connect(H.connect(configure: { $0.properties.maximumPacketSize = 4 }))) == [
                .refusedUnannounced(.notAuthorized), .close,
            ])
        var refused = H(limits: H.limits(anonymous: false))
        #expect(
            refused.receive(.connect(H.connect(configure: { $0.properties.maximumPacketSize = 5 }))) == [
                .send(.connAck(ConnAck(sessionPresent: false, reasonCode: .notAuthorized))), .close,
            ])
        let failed = harness.receive(.connect(H.connect()))
        guard case .send(let disconnect) = failed.first, case .disconnect(let packet) = disconnect else {
            Issue.record("expected DISCONNECT, got \(failed)")
            return
        }
        #expect(packet.reasonCode == .protocolError)
        #expect(disconnect.encodedLength(version: .v5) <= 20)
    }

    // Goal: a will is a publish made on the client's behalf; one the client may not make is
    // refused at CONNECT (0x87) before any session opens, as Mosquitto refuses it.
    @Test func willToAnUnauthorizedTopicIsRefused() {
        var harness = H()
        _ = harness.receive(
            .connect(
                H.connect(configure: {
                    $0.will = Will(
                        topicName: "$SYS/broker/version", payload: ByteBuffer(string: "x"), qos: .atMostOnce,
                        retain: true)
                })))
        var outputs: [ConnectionStateMachine.Output] = []
        var asked: [ConnectionStateMachine.AccessRequest] = []
        harness.machine.authenticationCompleted(
            accepted: true,
            authorize: { request, _, clientIdentifier in
                asked.append(request)
                #expect(clientIdentifier == "client")
                return false
            }, into: &outputs)
        #expect(asked == [.publish(topicName: "$SYS/broker/version")])
        #expect(outputs == [.send(.connAck(ConnAck(sessionPresent: false, reasonCode: .notAuthorized))), .close])
        var allowed = H()
        _ = allowed.receive(
            .connect(
                H.connect(configure: {
                    $0.will = Will(topicName: "wills/client", payload: ByteBuffer(), qos: .atMostOnce, retain: false)
                })))
        outputs = []
        allowed.machine.authenticationCompleted(accepted: true, authorize: { _, _, _ in true }, into: &outputs)
        guard case .submit(.sessionOpen(let open)) = outputs.first else {
            Issue.record("expected the session open, got \(outputs)")
            return
        }
        #expect(open.will?.topicName == "wills/client")
    }

    // Goal: the access rules may change while a client is connected, so a close that would
    // publish the will (a lost connection, a protocol error, keep alive expiry, DISCONNECT 0x04)
    // asks for the will to be authorised again, naming its topic, user and client; DISCONNECT
    // 0x00, which discards the will, and a connection without a will are submitted as they are.
    @Test func aCloseThatWouldPublishTheWillHasItAuthorisedAgain() {
        let withWill = H.connect(username: "alice") {
            $0.will = Will(topicName: "wills/alice", payload: ByteBuffer(), qos: .atMostOnce, retain: false)
            $0.properties.sessionExpiryIntervalSeconds = 10
        }
        let will = ConnectionStateMachine.WillPublish(
            topicName: "wills/alice", username: "alice", clientIdentifier: "client")
        func closing(_ connect: Connect, _ end: (inout H) -> [ConnectionStateMachine.Output])
            -> ConnectionStateMachine.Output?
        {
            var harness = H()
            harness.connected(connect)
            return end(&harness).first { output in
                if case .send = output { return false }
                return output != .close
            }
        }
        let lost: (inout H) -> [ConnectionStateMachine.Output] = { $0.run { $0.channelClosed(into: &$1) } }
        #expect(closing(withWill, lost) == .submitCloseAuthorizingWill(SessionClose(cause: .abnormal), will))
        #expect(
            closing(withWill) { $0.run { $0.keepAliveExpired(into: &$1) } }
                == .submitCloseAuthorizingWill(SessionClose(cause: .abnormal), will))
        #expect(
            closing(withWill) { $0.receive(H.publish("t", alias: 0)) }
                == .submitCloseAuthorizingWill(SessionClose(cause: .abnormal), will))
        #expect(
            closing(withWill) { $0.receive(.disconnect(Disconnect(reasonCode: .disconnectWithWillMessage))) }
                == .submitCloseAuthorizingWill(SessionClose(cause: .disconnectWithWill), will))
        #expect(
            closing(withWill) { $0.receive(.disconnect(Disconnect(reasonCode: .normalDisconnection))) }
                == H.submitted(.sessionClose(H.connection, SessionClose(cause: .normalDisconnect))))
        #expect(closing(H.connect(username: "alice"), lost) == H.abnormalClose)
    }
}
