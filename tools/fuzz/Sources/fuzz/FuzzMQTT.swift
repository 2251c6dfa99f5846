import FoxMQTT
import NIOCore

/// `mqtt`: the wire decoder. Every input is fed, as a stream, to the frame decoder and the packet
/// decoder of both protocol versions. A packet that decodes is encoded again (its announced
/// length must be what it writes), and that encoding decodes to the same packet. The stream is
/// also fed in two reads, split where the first byte says: the frames must be the same.
let mqttHarness = Harness(
    name: "mqtt", summary: "frame and packet decoders, 3.1.1 and 5.0, decode-encode-decode",
    run: fuzzMQTT, seeds: mqttSeeds)

@Sendable func fuzzMQTT(_ bytes: [UInt8]) {
    for version in [ProtocolVersion.v5, .v311] {
        var decoder = FrameDecoder(maximumPacketSize: 1 << 20)
        var buffer = ByteBuffer(bytes: bytes)
        var frames: [(PacketType, UInt8, ByteBuffer)] = []
        while true {
            guard let frame = try? decoder.nextFrame(from: &buffer) else { break }
            frames.append((frame.packetType, frame.flags, frame.body))
            guard let packet = try? Packet.decode(frame, version: version) else { break }
            var encoded = ByteBuffer()
            packet.encode(into: &encoded, version: version)
            require(
                encoded.readableBytes == packet.encodedLength(version: version),
                "\(packet) announces \(packet.encodedLength(version: version)) bytes, writes \(encoded.readableBytes)")
            var again = FrameDecoder(maximumPacketSize: 1 << 21)
            guard let reframed = try? again.nextFrame(from: &encoded),
                let decodedAgain = try? Packet.decode(reframed, version: version)
            else {
                fatalError("\(packet) re-encoded to bytes that do not decode")
            }
            require(encoded.readableBytes == 0, "\(packet) re-encoded to more than one frame")
            require(decodedAgain == packet, "round trip changed \(packet) into \(decodedAgain)")
        }
        if version == .v5 { checkSplitStream(bytes, frames: frames) }
    }
}

/// The same bytes in two reads give the same frames (the decoder consumes nothing of a partial
/// frame).
private func checkSplitStream(_ bytes: [UInt8], frames: [(PacketType, UInt8, ByteBuffer)]) {
    guard let first = bytes.first else { return }
    let split = Int(first) % (bytes.count + 1)
    var decoder = FrameDecoder(maximumPacketSize: 1 << 20)
    var buffer = ByteBuffer(bytes: bytes[0..<split])
    var found: [(PacketType, UInt8, ByteBuffer)] = []
    var failed = false
    func drain() {
        while !failed {
            do {
                guard let frame = try decoder.nextFrame(from: &buffer) else { return }
                found.append((frame.packetType, frame.flags, frame.body))
            } catch {
                failed = true
            }
        }
    }
    drain()
    buffer.writeBytes(bytes[split...])
    drain()
    // The whole-buffer pass stops at the first frame that fails to decode as a packet, this one
    // only at a framing error: compare what both saw.
    let count = min(found.count, frames.count)
    for index in 0..<count {
        require(
            found[index].0 == frames[index].0 && found[index].1 == frames[index].1 && found[index].2 == frames[index].2,
            "frame \(index) differs when the stream is split at \(split)")
    }
    require(found.count >= frames.count, "the split stream at \(split) gave fewer frames")
}

@Sendable func mqttSeeds() -> [Seed] {
    var properties = Properties()
    properties.contentType = "text/plain"
    properties.messageExpiryIntervalSeconds = 60
    properties.correlationData = [1, 2, 3]
    properties.responseTopic = "reply/to"
    properties.appendUserProperty(UserProperty("k", "v"))
    properties.appendSubscriptionIdentifier(7)
    var connectProperties = Properties()
    connectProperties.sessionExpiryIntervalSeconds = 3600
    connectProperties.receiveMaximum = 10
    connectProperties.maximumPacketSize = 65536
    connectProperties.topicAliasMaximum = 4
    connectProperties.authenticationMethod = "SCRAM"
    connectProperties.authenticationData = [9, 9]
    var willProperties = Properties()
    willProperties.willDelayIntervalSeconds = 5
    willProperties.payloadFormatIndicator = 1
    let will = Will(
        topicName: "will/topic", payload: ByteBuffer(string: "gone"), qos: .atLeastOnce, retain: true,
        properties: willProperties)
    var reason = Properties()
    reason.reasonString = "why"
    var connAckProperties = Properties()
    connAckProperties.assignedClientIdentifier = "auto-1"
    connAckProperties.serverKeepAliveSeconds = 30
    connAckProperties.maximumQoS = 1
    connAckProperties.retainAvailable = 1
    connAckProperties.wildcardSubscriptionAvailable = 1
    connAckProperties.sharedSubscriptionAvailable = 0
    connAckProperties.subscriptionIdentifierAvailable = 1
    connAckProperties.topicAliasMaximum = 10
    var subscribeProperties = Properties()
    subscribeProperties.appendSubscriptionIdentifier(42)
    let subscriptions = [
        TopicSubscription(topicFilter: "a/+/c", options: SubscriptionOptions(qos: .exactlyOnce)),
        TopicSubscription(
            topicFilter: "$share/g/x/#",
            options: SubscriptionOptions(
                qos: .atLeastOnce, noLocal: false, retainAsPublished: true, retainHandling: .doNotSend)),
    ]
    let both: [(String, Packet)] = [
        (
            "connect",
            .connect(Connect(protocolVersion: .v5, cleanStart: true, keepAliveSeconds: 60, clientIdentifier: "c"))
        ),
        ("publish-qos0", .publish(Publish(topicName: "a/b", payload: ByteBuffer(string: "hello")))),
        (
            "publish-qos2",
            .publish(
                Publish(
                    topicName: "a/b", payload: ByteBuffer(string: "x"), qos: .exactlyOnce, retain: true, dup: true,
                    packetIdentifier: 9))
        ),
        ("puback", .pubAck(PubAck(packetIdentifier: 1))),
        ("pubrec", .pubRec(PubRec(packetIdentifier: 2))),
        ("pubrel", .pubRel(PubRel(packetIdentifier: 3))),
        ("pubcomp", .pubComp(PubComp(packetIdentifier: 4))),
        ("subscribe", .subscribe(Subscribe(packetIdentifier: 5, subscriptions: subscriptions))),
        ("suback", .subAck(SubAck(packetIdentifier: 5, reasonCodes: [.grantedQoS1, .unspecifiedError]))),
        ("unsubscribe", .unsubscribe(Unsubscribe(packetIdentifier: 6, topicFilters: ["a/+/c", "#"]))),
        ("unsuback", .unsubAck(UnsubAck(packetIdentifier: 6, reasonCodes: [.success]))),
        ("connack", .connAck(ConnAck(sessionPresent: true, reasonCode: .success))),
        ("pingreq", .pingReq),
        ("pingresp", .pingResp),
        ("disconnect", .disconnect(Disconnect())),
    ]
    let v5Only: [(String, Packet)] = [
        (
            "connect-will-properties",
            .connect(
                Connect(
                    protocolVersion: .v5, cleanStart: false, keepAliveSeconds: 10, clientIdentifier: "client-1",
                    will: will, username: "user", password: [1, 2, 3], properties: connectProperties))
        ),
        (
            "publish-properties",
            .publish(
                Publish(
                    topicName: "t", payload: ByteBuffer(string: "p"), qos: .atLeastOnce, packetIdentifier: 1,
                    properties: properties))
        ),
        ("puback-reason", .pubAck(PubAck(packetIdentifier: 1, reasonCode: .noMatchingSubscribers, properties: reason))),
        (
            "connack-properties",
            .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: connAckProperties))
        ),
        (
            "subscribe-identifier",
            .subscribe(Subscribe(packetIdentifier: 8, subscriptions: subscriptions, properties: subscribeProperties))
        ),
        ("disconnect-reason", .disconnect(Disconnect(reasonCode: .serverShuttingDown, properties: reason))),
        ("auth", .auth(Auth(reasonCode: .continueAuthentication, properties: connectProperties))),
    ]
    func encode(_ packets: [Packet], _ version: ProtocolVersion) -> [UInt8] {
        var buffer = ByteBuffer()
        for packet in packets { packet.encode(into: &buffer, version: version) }
        return Array(buffer.readableBytesView)
    }
    var seeds: [Seed] = []
    for (name, packet) in both {
        seeds.append(Seed("v5-" + name, encode([packet], .v5)))
        var v311 = packet
        if case .connect(var connect) = packet {
            connect.protocolVersion = .v311
            v311 = .connect(connect)
        }
        seeds.append(Seed("v311-" + name, encode([v311], .v311)))
    }
    for (name, packet) in v5Only { seeds.append(Seed("v5-" + name, encode([packet], .v5))) }
    // A session's worth of packets in one stream.
    seeds.append(Seed("v5-stream", encode(both.map(\.1) + v5Only.map(\.1), .v5)))
    return seeds
}
