import FoxMQTT
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Accepts alice/secret; anyone else only when anonymous login is allowed.
struct TestAuthenticator: Authenticator {
    func authenticate(username: String?, password: [UInt8]?, allowAnonymous: Bool) -> Bool {
        if username == "alice" { return password == Array("secret".utf8) }
        return allowAnonymous
    }
}

struct FixedClock: BrokerClock {
    func nowMillis() -> UInt64 { 1_700_000_000_000 }
}

/// One node's services as BrokerNode wires them (LocalOrderer over a BrokerState, the
/// ConnectionRegistry as sink, a thread pool for authentication), with a fixed clock, and a
/// factory of scripted peers on testing channels.
///
/// The channels are `NIOAsyncTestingChannel`s rather than `EmbeddedChannel`s: authentication
/// completes on a thread pool thread, and only the async testing loop accepts work from
/// another thread safely (EmbeddedEventLoop is single-threaded by contract).
final class ScriptedBroker: Sendable {
    let pool: NIOThreadPool
    let services: BrokerServices
    let orderer: LocalOrderer

    init(limits: ConnectionLimits = ConnectionLimits()) {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let registry = ConnectionRegistry(node: 0)
        orderer = LocalOrderer(state: BrokerState(), clock: FixedClock(), sink: registry)
        services = BrokerServices(
            limits: limits, orderer: orderer, registry: registry, authenticator: TestAuthenticator(),
            threadPool: pool, logger: Logger(label: "foxmq.test"))
    }

    func peer(_ local: UInt64, version: ProtocolVersion = .v5) async throws -> ScriptedPeer {
        let services = self.services
        let channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(
                MQTTConnectionHandler(connection: cid(local), services: services))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1883)).get()
        return ScriptedPeer(channel: channel, version: version)
    }

    func shutdown() async throws {
        try await pool.shutdownGracefully()
    }
}

/// The client side of one connection: writes exact bytes, reads and decodes what the broker
/// writes back.
final class ScriptedPeer {
    let channel: NIOAsyncTestingChannel
    let version: ProtocolVersion
    private var received = ByteBuffer()
    private var decoder = FrameDecoder(maximumPacketSize: 1 << 28)

    init(channel: NIOAsyncTestingChannel, version: ProtocolVersion) {
        self.channel = channel
        self.version = version
    }

    static func bytes(_ packet: Packet, version: ProtocolVersion) -> [UInt8] {
        var buffer = ByteBuffer()
        packet.encode(into: &buffer, version: version)
        return Array(buffer.readableBytesView)
    }

    func send(_ packet: Packet) async throws {
        try await send(bytes: Self.bytes(packet, version: version))
    }

    func send(bytes: [UInt8]) async throws {
        try await channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    /// Raw bytes of the next whole packet the broker sent, waiting up to `timeoutMillis`.
    func nextFrameBytes(timeoutMillis: Int = 5_000) async throws -> [UInt8]? {
        var waited = 0
        while true {
            var copy = received
            if let frame = try decoder.nextFrame(from: &copy) {
                let length = copy.readerIndex - received.readerIndex
                let bytes = received.readBytes(length: length)!
                _ = frame
                return bytes
            }
            if var more = try await channel.readOutbound(as: ByteBuffer.self) {
                received.writeBuffer(&more)
                continue
            }
            if waited >= timeoutMillis { return nil }
            await channel.testingEventLoop.run()
            try await Task.sleep(nanoseconds: 2_000_000)
            waited += 2
        }
    }

    /// The next packet the broker sent, decoded with this peer's version.
    func next(timeoutMillis: Int = 5_000) async throws -> Packet? {
        guard let bytes = try await nextFrameBytes(timeoutMillis: timeoutMillis) else { return nil }
        var buffer = ByteBuffer(bytes: bytes)
        guard let frame = try decoder.nextFrame(from: &buffer) else { return nil }
        return try Packet.decode(frame, version: version)
    }

    /// Asserts that nothing more arrives within a short while.
    func expectSilence(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        if let packet = try await next(timeoutMillis: 50) {
            Issue.record("unexpected packet \(packet)", sourceLocation: sourceLocation)
        }
    }

    /// Waits until the broker closed the connection.
    func waitUntilClosed(timeoutMillis: Int = 5_000) async throws -> Bool {
        var waited = 0
        while channel.isActive {
            if waited >= timeoutMillis { return false }
            await channel.testingEventLoop.run()
            try await Task.sleep(nanoseconds: 2_000_000)
            waited += 2
        }
        return true
    }

    func close() async {
        _ = try? await channel.close().get()
    }
}

/// The broker as a client sees it over an embedded channel: exact bytes in, exact packets out,
/// through the real handler, registry, orderer and broker state.
@Suite struct ScriptedPeerTests {
    static func connect(
        _ client: String, version: ProtocolVersion = .v5, username: String? = "alice", password: String = "secret",
        cleanStart: Bool = true, sessionExpirySeconds: UInt32? = nil
    ) -> Packet {
        var properties = Properties()
        properties.sessionExpiryIntervalSeconds = sessionExpirySeconds
        return .connect(
            Connect(
                protocolVersion: version, cleanStart: cleanStart, keepAliveSeconds: 0, clientIdentifier: client,
                username: username, password: username.map { _ in Array(password.utf8) }, properties: properties))
    }

    static func subscribe(_ filter: String, qos: QoS, packetIdentifier: UInt16 = 1) -> Packet {
        .subscribe(
            Subscribe(
                packetIdentifier: packetIdentifier,
                subscriptions: [TopicSubscription(topicFilter: filter, options: SubscriptionOptions(qos: qos))]))
    }

    /// The CONNACK properties this broker announces with default limits.
    static func capabilities(assigned: String? = nil) -> Properties {
        let limits = ConnectionLimits()
        var properties = Properties()
        properties.receiveMaximum = limits.receiveMaximum
        properties.maximumPacketSize = UInt32(limits.maximumPacketSizeBytes)
        properties.topicAliasMaximum = limits.topicAliasMaximum
        // No "available" flag: 1 is the default of each (§3.2.2.3).
        properties.assignedClientIdentifier = assigned
        return properties
    }

    // Goal: a whole session over the wire: CONNECT -> CONNACK, SUBSCRIBE -> SUBACK, a QoS 1
    // PUBLISH looped back to the publisher itself, PUBACK, PINGREQ -> PINGRESP, DISCONNECT
    // (MQTT 5.0 §3.1-§3.14).
    @Test func connectSubscribePublishLoopbackPing() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1)
        try await peer.send(Self.connect("loop"))
        #expect(
            try await peer.next()
                == .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: Self.capabilities())))
        try await peer.send(Self.subscribe("t/+", qos: .atLeastOnce, packetIdentifier: 10))
        #expect(try await peer.next() == .subAck(SubAck(packetIdentifier: 10, reasonCodes: [.grantedQoS1])))
        try await peer.send(
            .publish(
                Publish(topicName: "t/1", payload: ByteBuffer(string: "hello"), qos: .atLeastOnce, packetIdentifier: 77)
            ))
        #expect(
            try await peer.next()
                == .publish(
                    Publish(
                        topicName: "t/1", payload: ByteBuffer(string: "hello"), qos: .atLeastOnce, packetIdentifier: 1))
        )
        #expect(try await peer.next() == .pubAck(PubAck(packetIdentifier: 77)))
        try await peer.send(.pubAck(PubAck(packetIdentifier: 1)))
        try await peer.send(.pingReq)
        #expect(try await peer.next() == .pingResp)
        try await peer.expectSilence()
        try await peer.send(.disconnect(Disconnect()))
        #expect(try await peer.waitUntilClosed())
        #expect(broker.orderer.withState { $0.sessionCount } == 0)
        try await broker.shutdown()
    }

    // Goal: two peers: the subscriber receives what the other publishes, and an empty client
    // identifier is assigned and announced (MQTT 5.0 §3.1.3.1, §3.2.2.3.7, §3.3.4).
    @Test func twoPeersAndAnAssignedIdentifier() async throws {
        let broker = ScriptedBroker()
        let subscriber = try await broker.peer(1)
        try await subscriber.send(Self.connect(""))
        guard case .connAck(let connAck) = try await subscriber.next() else {
            Issue.record("expected CONNACK")
            return
        }
        #expect(connAck.reasonCode == .success)
        #expect(connAck.properties.assignedClientIdentifier?.hasPrefix("foxmq-0-") == true)
        try await subscriber.send(Self.subscribe("news", qos: .atMostOnce))
        #expect(try await subscriber.next() == .subAck(SubAck(packetIdentifier: 1, reasonCodes: [.grantedQoS0])))

        let publisher = try await broker.peer(2)
        try await publisher.send(Self.connect("pub"))
        #expect(
            try await publisher.next()
                == .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: Self.capabilities())))
        try await publisher.send(
            .publish(
                Publish(topicName: "news", payload: ByteBuffer(string: "extra"), qos: .exactlyOnce, packetIdentifier: 5)
            ))
        #expect(try await publisher.next() == .pubRec(PubRec(packetIdentifier: 5)))
        #expect(
            try await subscriber.next() == .publish(Publish(topicName: "news", payload: ByteBuffer(string: "extra"))))
        try await publisher.send(.pubRel(PubRel(packetIdentifier: 5)))
        #expect(try await publisher.next() == .pubComp(PubComp(packetIdentifier: 5)))
        await subscriber.close()
        await publisher.close()
        try await broker.shutdown()
    }

    // Goal: a session takeover over the wire: the old peer gets DISCONNECT 0x8E and is closed,
    // the new one CONNACK with Session Present, the session having an expiry (MQTT 5.0 §3.1.4
    // [MQTT-3.1.4-3]).
    @Test func takeoverOverTheWire() async throws {
        let broker = ScriptedBroker()
        let old = try await broker.peer(1)
        try await old.send(Self.connect("same", cleanStart: false, sessionExpirySeconds: 60))
        _ = try await old.next()
        let new = try await broker.peer(2)
        try await new.send(Self.connect("same", cleanStart: false, sessionExpirySeconds: 60))
        #expect(try await old.next() == .disconnect(Disconnect(reasonCode: .sessionTakenOver)))
        #expect(try await old.waitUntilClosed())
        #expect(
            try await new.next()
                == .connAck(ConnAck(sessionPresent: true, reasonCode: .success, properties: Self.capabilities())))
        await new.close()
        try await broker.shutdown()
    }

    // Goal: a malformed packet (PUBLISH with QoS 3) is answered with DISCONNECT 0x81 and a
    // close (MQTT 5.0 §3.3.1.2 [MQTT-3.3.1-4], §4.13).
    @Test func malformedPacketDisconnects() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1)
        try await peer.send(Self.connect("bad"))
        _ = try await peer.next()
        // PUBLISH, flags 0110 (QoS 3), remaining length 4: topic "t", no properties byte.
        try await peer.send(bytes: [0x36, 0x04, 0x00, 0x01, 0x74, 0x00])
        guard case .disconnect(let disconnect) = try await peer.next() else {
            Issue.record("expected DISCONNECT")
            return
        }
        #expect(disconnect.reasonCode == .malformedPacket)
        #expect(try await peer.waitUntilClosed())
        try await broker.shutdown()
    }

    // Goal: a packet larger than the Maximum Packet Size we announced is answered with
    // DISCONNECT 0x95 (MQTT 5.0 §3.2.2.3.6, §4.13).
    @Test func packetTooLargeDisconnects() async throws {
        var limits = ConnectionLimits()
        limits.maximumPacketSizeBytes = 128
        let broker = ScriptedBroker(limits: limits)
        let peer = try await broker.peer(1)
        try await peer.send(Self.connect("big"))
        guard case .connAck(let connAck) = try await peer.next() else {
            Issue.record("expected CONNACK")
            return
        }
        #expect(connAck.properties.maximumPacketSize == 128)
        try await peer.send(.publish(Publish(topicName: "t", payload: ByteBuffer(repeating: 0x41, count: 200))))
        guard case .disconnect(let disconnect) = try await peer.next() else {
            Issue.record("expected DISCONNECT")
            return
        }
        #expect(disconnect.reasonCode == .packetTooLarge)
        #expect(try await peer.waitUntilClosed())
        try await broker.shutdown()
    }

    // Goal: bytes fed one at a time still make whole packets (MQTT 5.0 §2.1: framing is by
    // remaining length, not by read boundaries).
    @Test func bytesOneAtATime() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1)
        var script = ScriptedPeer.bytes(Self.connect("drip"), version: .v5)
        for byte in script { try await peer.send(bytes: [byte]) }
        #expect(
            try await peer.next()
                == .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: Self.capabilities())))
        // Two packets, their boundary inside a write: one byte at a time again.
        script =
            ScriptedPeer.bytes(Self.subscribe("d", qos: .atMostOnce, packetIdentifier: 3), version: .v5)
            + ScriptedPeer.bytes(.publish(Publish(topicName: "d", payload: ByteBuffer(string: "drop"))), version: .v5)
        for byte in script { try await peer.send(bytes: [byte]) }
        #expect(try await peer.next() == .subAck(SubAck(packetIdentifier: 3, reasonCodes: [.grantedQoS0])))
        #expect(try await peer.next() == .publish(Publish(topicName: "d", payload: ByteBuffer(string: "drop"))))
        for byte in ScriptedPeer.bytes(.pingReq, version: .v5) { try await peer.send(bytes: [byte]) }
        #expect(try await peer.next() == .pingResp)
        await peer.close()
        try await broker.shutdown()
    }

    // Goal: many packets in one write, CONNECT included, are all handled in order; the ones
    // after CONNECT wait for the credential check (MQTT 5.0 §2.1, §3.1.4).
    @Test func manyPacketsInOneWrite() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1)
        let script =
            ScriptedPeer.bytes(Self.connect("batch"), version: .v5)
            + ScriptedPeer.bytes(Self.subscribe("b", qos: .atMostOnce, packetIdentifier: 4), version: .v5)
            + ScriptedPeer.bytes(.publish(Publish(topicName: "b", payload: ByteBuffer(string: "1"))), version: .v5)
            + ScriptedPeer.bytes(.publish(Publish(topicName: "b", payload: ByteBuffer(string: "2"))), version: .v5)
        try await peer.send(bytes: script)
        #expect(
            try await peer.next()
                == .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: Self.capabilities())))
        #expect(try await peer.next() == .subAck(SubAck(packetIdentifier: 4, reasonCodes: [.grantedQoS0])))
        #expect(try await peer.next() == .publish(Publish(topicName: "b", payload: ByteBuffer(string: "1"))))
        #expect(try await peer.next() == .publish(Publish(topicName: "b", payload: ByteBuffer(string: "2"))))
        await peer.close()
        try await broker.shutdown()
    }

    // Goal: wrong credentials of a 5.0 client get CONNACK 0x86 and a close (MQTT 5.0 §3.2.2.2).
    @Test func badPassword5() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1)
        try await peer.send(Self.connect("x", password: "wrong"))
        #expect(try await peer.next() == .connAck(ConnAck(sessionPresent: false, reasonCode: .badUserNameOrPassword)))
        #expect(try await peer.waitUntilClosed())
        try await broker.shutdown()
    }

    // Goal: a 3.1.1 client is answered in 3.1.1: CONNACK with two bytes of variable header
    // (3.1.1 §3.2), PUBLISH without properties.
    @Test func session311() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1, version: .v311)
        try await peer.send(Self.connect("old", version: .v311))
        #expect(try await peer.nextFrameBytes() == [0x20, 0x02, 0x00, 0x00])
        try await peer.send(Self.subscribe("o", qos: .exactlyOnce))
        #expect(try await peer.nextFrameBytes() == [0x90, 0x03, 0x00, 0x01, 0x02])
        try await peer.send(.publish(Publish(topicName: "o", payload: ByteBuffer(string: "k"))))
        #expect(try await peer.nextFrameBytes() == [0x30, 0x04, 0x00, 0x01, 0x6F, 0x6B])
        await peer.close()
        try await broker.shutdown()
    }

    // Goal: a CONNECT with an unsupported protocol level is answered with CONNACK 0x84 and a
    // close (MQTT 5.0 §3.1.2.2 [MQTT-3.1.2-2]).
    @Test func unsupportedProtocolVersion() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1)
        var bytes = ScriptedPeer.bytes(Self.connect("v6"), version: .v5)
        // Fixed header (2 bytes), protocol name (6 bytes), then the level byte.
        #expect(bytes[8] == 5)
        bytes[8] = 6
        try await peer.send(bytes: bytes)
        guard case .connAck(let connAck) = try await peer.next() else {
            Issue.record("expected CONNACK")
            return
        }
        #expect(connAck.reasonCode == .unsupportedProtocolVersion)
        #expect(try await peer.waitUntilClosed())
        try await broker.shutdown()
    }

    // Goal: a socket that sends no CONNECT within the connect timeout is closed (MQTT 5.0
    // §4.13 allows the server to close; FoxMQ's ConnectionLimits.connectTimeoutSeconds).
    @Test func connectTimeout() async throws {
        let broker = ScriptedBroker()
        let peer = try await broker.peer(1)
        await peer.channel.testingEventLoop.advanceTime(by: .seconds(9))
        #expect(peer.channel.isActive)
        await peer.channel.testingEventLoop.advanceTime(by: .seconds(1))
        #expect(try await peer.waitUntilClosed())
        try await broker.shutdown()
    }

    // Goal: a client that closes its socket without DISCONNECT has its will published to the
    // other peers (MQTT 5.0 §3.1.2.5), through handler, registry and orderer.
    @Test func willOnSocketClose() async throws {
        let broker = ScriptedBroker()
        let watcher = try await broker.peer(1)
        try await watcher.send(Self.connect("watcher"))
        _ = try await watcher.next()
        try await watcher.send(Self.subscribe("wills", qos: .atMostOnce))
        _ = try await watcher.next()
        let dying = try await broker.peer(2)
        try await dying.send(
            .connect(
                Connect(
                    protocolVersion: .v5, cleanStart: true, keepAliveSeconds: 0, clientIdentifier: "dying",
                    will: Will(topicName: "wills", payload: ByteBuffer(string: "bye"), qos: .atMostOnce, retain: false),
                    username: "alice", password: Array("secret".utf8))))
        _ = try await dying.next()
        await dying.close()
        #expect(try await watcher.next() == .publish(Publish(topicName: "wills", payload: ByteBuffer(string: "bye"))))
        await watcher.close()
        try await broker.shutdown()
    }
}
