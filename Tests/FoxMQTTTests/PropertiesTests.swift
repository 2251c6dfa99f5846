import FoxMQTT
import NIOCore
import Testing

/// One property: its identifier, how to set it, its value bytes, and a packet that allows it.
struct PropertyCase: Sendable, CustomTestStringConvertible {
    var identifier: UInt8
    var value: [UInt8]
    var set: @Sendable (inout Properties) -> Void
    var context: PropertyContext
    var testDescription: String { "0x" + String(identifier, radix: 16) + " in \(context)" }
}

/// Every property identifier of MQTT 5.0 §2.2.2.2, each in every context that allows it.
let propertyCases: [PropertyCase] = {
    let string: [UInt8] = [0x00, 0x02, 0x61, 0x62]  // "ab"
    let binary: [UInt8] = [0x00, 0x02, 0x01, 0x02]  // [1, 2]
    let u32: [UInt8] = [0x00, 0x01, 0x00, 0x02]  // 65538
    let u16: [UInt8] = [0x01, 0x02]  // 258
    let table: [(UInt8, [UInt8], @Sendable (inout Properties) -> Void, [PropertyContext])] = [
        (0x01, [0x01], { $0.payloadFormatIndicator = 1 }, [.publish, .will]),
        (0x02, u32, { $0.messageExpiryIntervalSeconds = 65538 }, [.publish, .will]),
        (0x03, string, { $0.contentType = "ab" }, [.publish, .will]),
        (0x08, string, { $0.responseTopic = "ab" }, [.publish, .will]),
        (0x09, binary, { $0.correlationData = [1, 2] }, [.publish, .will]),
        (0x0B, [0xFF, 0xFF, 0xFF, 0x7F], { $0.subscriptionIdentifiers = [268_435_455] }, [.publish, .subscribe]),
        (0x11, u32, { $0.sessionExpiryIntervalSeconds = 65538 }, [.connect, .connAck, .disconnect]),
        (0x12, string, { $0.assignedClientIdentifier = "ab" }, [.connAck]),
        (0x13, u16, { $0.serverKeepAliveSeconds = 258 }, [.connAck]),
        (0x15, string, { $0.authenticationMethod = "ab" }, [.connect, .connAck, .auth]),
        (0x17, [0x01], { $0.requestProblemInformation = 1 }, [.connect]),
        (0x18, u32, { $0.willDelayIntervalSeconds = 65538 }, [.will]),
        (0x19, [0x01], { $0.requestResponseInformation = 1 }, [.connect]),
        (0x1A, string, { $0.responseInformation = "ab" }, [.connAck]),
        (0x1C, string, { $0.serverReference = "ab" }, [.connAck, .disconnect]),
        (
            0x1F, string, { $0.reasonString = "ab" },
            [.connAck, .pubAck, .pubRec, .pubRel, .pubComp, .subAck, .unsubAck, .disconnect, .auth]
        ),
        (0x21, u16, { $0.receiveMaximum = 258 }, [.connect, .connAck]),
        (0x22, u16, { $0.topicAliasMaximum = 258 }, [.connect, .connAck]),
        (0x23, u16, { $0.topicAlias = 258 }, [.publish]),
        (0x24, [0x01], { $0.maximumQoS = 1 }, [.connAck]),
        (0x25, [0x00], { $0.retainAvailable = 0 }, [.connAck]),
        (
            0x26, string + [0x00, 0x01, 0x63], { $0.userProperties = [UserProperty("ab", "c")] },
            [
                .connect, .will, .connAck, .publish, .pubAck, .pubRec, .pubRel, .pubComp, .subscribe, .subAck,
                .unsubscribe, .unsubAck, .disconnect, .auth,
            ]
        ),
        (0x27, u32, { $0.maximumPacketSize = 65538 }, [.connect, .connAck]),
        (0x28, [0x01], { $0.wildcardSubscriptionAvailable = 1 }, [.connAck]),
        (0x29, [0x00], { $0.subscriptionIdentifierAvailable = 0 }, [.connAck]),
        (0x2A, [0x01], { $0.sharedSubscriptionAvailable = 1 }, [.connAck]),
    ]
    return table.flatMap { identifier, value, set, contexts in
        contexts.map { PropertyCase(identifier: identifier, value: value, set: set, context: $0) }
    }
}()

/// A 5.0 packet whose property block (in `context`) is `properties`.
func packet(carrying properties: Properties, in context: PropertyContext) -> Packet {
    switch context {
    case .connect:
        .connect(
            Connect(
                protocolVersion: .v5, cleanStart: true, keepAliveSeconds: 0, clientIdentifier: "c",
                properties: properties))
    case .will:
        .connect(
            Connect(
                protocolVersion: .v5, cleanStart: true, keepAliveSeconds: 0, clientIdentifier: "c",
                will: Will(
                    topicName: "w", payload: ByteBuffer(), qos: .atMostOnce, retain: false, properties: properties)))
    case .connAck: .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: properties))
    case .publish: .publish(Publish(topicName: "t", payload: ByteBuffer(), properties: properties))
    case .pubAck: .pubAck(PubAck(packetIdentifier: 1, properties: properties))
    case .pubRec: .pubRec(PubRec(packetIdentifier: 1, properties: properties))
    case .pubRel: .pubRel(PubRel(packetIdentifier: 1, properties: properties))
    case .pubComp: .pubComp(PubComp(packetIdentifier: 1, properties: properties))
    case .subscribe:
        .subscribe(
            Subscribe(
                packetIdentifier: 1,
                subscriptions: [TopicSubscription(topicFilter: "f", options: SubscriptionOptions(qos: .atMostOnce))],
                properties: properties))
    case .subAck: .subAck(SubAck(packetIdentifier: 1, reasonCodes: [.grantedQoS0], properties: properties))
    case .unsubscribe: .unsubscribe(Unsubscribe(packetIdentifier: 1, topicFilters: ["f"], properties: properties))
    case .unsubAck: .unsubAck(UnsubAck(packetIdentifier: 1, reasonCodes: [.success], properties: properties))
    case .disconnect: .disconnect(Disconnect(properties: properties))
    case .auth: .auth(Auth(reasonCode: .continueAuthentication, properties: properties))
    }
}

@Suite struct PropertiesTests {
    // Goal: every property round trips in every packet that allows it, and its bytes on the wire
    // are identifier then value, inside a property length that counts them.
    // MQTT 5.0 §2.2.2.2 (table of identifiers and packets), §3.x property sections.
    @Test(arguments: propertyCases)
    func roundTrip(property: PropertyCase) throws {
        var properties = Properties()
        property.set(&properties)
        let value = packet(carrying: properties, in: property.context)
        var buffer = ByteBuffer()
        value.encode(into: &buffer, version: .v5)
        let bytes = Array(buffer.readableBytesView)
        let block: [UInt8] = [UInt8(1 + property.value.count), property.identifier] + property.value
        #expect(bytes.firstRange(of: block) != nil, "property block \(block) not in \(bytes)")
        #expect(value.encodedLength(version: .v5) == bytes.count)
        try expectDecode(bytes, version: .v5, value)
    }

    // Goal: every property is refused (Malformed) in each packet that does not allow it.
    // MQTT 5.0 §2.2.2.2: "a Control Packet that contains an Identifier not valid for its type" is malformed.
    @Test(arguments: [
        PropertyContext.connect, .will, .connAck, .publish, .pubAck, .pubRec, .pubRel, .pubComp, .subscribe, .subAck,
        .unsubscribe, .unsubAck, .disconnect, .auth,
    ])
    func foreignPropertiesAreMalformed(context: PropertyContext) throws {
        let allowed = Set(propertyCases.filter { $0.context == context }.map(\.identifier))
        var tested = 0
        for property in propertyCases where !allowed.contains(property.identifier) {
            // Put the foreign property in an otherwise valid packet: encode with a reason string
            // or user property placeholder, then replace its block.
            var marker = Properties()
            marker.userProperties = [UserProperty("ab", "c")]
            var buffer = ByteBuffer()
            packet(carrying: marker, in: context).encode(into: &buffer, version: .v5)
            let markerBlock: [UInt8] = [0x26, 0x00, 0x02, 0x61, 0x62, 0x00, 0x01, 0x63]
            var bytes = Array(buffer.readableBytesView)
            let range = try #require(bytes.firstRange(of: [UInt8(markerBlock.count)] + markerBlock))
            let foreign = [property.identifier] + property.value
            bytes.replaceSubrange(range, with: [UInt8(foreign.count)] + foreign)
            bytes[1] = UInt8(bytes.count - 2)  // all these packets are short: one-byte remaining length
            expectDecodeError(bytes, version: .v5, .malformedPacket, field: String(format: property.identifier))
            tested += 1
        }
        #expect(tested > 0)
    }

    // Goal: values the specification forbids are protocol errors; topic alias 0 is its own code.
    // MQTT 5.0 §3.1.2.11.x, §3.2.2.3.x, §3.3.2.3.x, §3.8.2.1.2.
    @Test(arguments: [
        (PropertyContext.publish, UInt8(0x01), [UInt8(0x02)], ReasonCode.protocolError),
        (.connect, 0x17, [0x02], .protocolError),
        (.connect, 0x19, [0x02], .protocolError),
        (.connect, 0x21, [0x00, 0x00], .protocolError),
        (.connAck, 0x21, [0x00, 0x00], .protocolError),
        (.connect, 0x27, [0x00, 0x00, 0x00, 0x00], .protocolError),
        (.subscribe, 0x0B, [0x00], .protocolError),
        (.connAck, 0x24, [0x02], .protocolError),
        (.connAck, 0x25, [0x02], .protocolError),
        (.connAck, 0x28, [0x02], .protocolError),
        (.connAck, 0x29, [0x02], .protocolError),
        (.connAck, 0x2A, [0x02], .protocolError),
        (.publish, 0x23, [0x00, 0x00], .topicAliasInvalid),
    ])
    func forbiddenValues(context: PropertyContext, identifier: UInt8, value: [UInt8], reasonCode: ReasonCode) throws {
        var marker = Properties()
        marker.userProperties = [UserProperty("ab", "c")]
        var buffer = ByteBuffer()
        packet(carrying: marker, in: context).encode(into: &buffer, version: .v5)
        let markerBlock: [UInt8] = [0x26, 0x00, 0x02, 0x61, 0x62, 0x00, 0x01, 0x63]
        var bytes = Array(buffer.readableBytesView)
        let range = try #require(bytes.firstRange(of: [UInt8(markerBlock.count)] + markerBlock))
        let property = [identifier] + value
        bytes.replaceSubrange(range, with: [UInt8(property.count)] + property)
        bytes[1] = UInt8(bytes.count - 2)
        expectDecodeError(bytes, version: .v5, reasonCode, field: String(format: identifier))
    }

    // Goal: a property repeated is a protocol error, except User Property (order kept).
    // MQTT 5.0 §2.2.2.2, §3.1.2.11.8: user properties may appear multiple times.
    @Test func repeats() throws {
        var properties = Properties()
        properties.userProperties = [UserProperty("a", "1"), UserProperty("a", "2"), UserProperty("b", "")]
        try expectEncodeDecode(
            .connAck(ConnAck(sessionPresent: false, reasonCode: .success, properties: properties)), version: .v5)
        // CONNACK with receive maximum twice
        expectDecodeError(
            [0x20, 0x09, 0x00, 0x00, 0x06, 0x21, 0x00, 0x01, 0x21, 0x00, 0x02], version: .v5, .protocolError,
            field: "properties.0x21")
    }

    // Goal: an unknown identifier is malformed, also one encoded as a multi-byte varint.
    // MQTT 5.0 §2.2.2.2: the identifier is a variable byte integer.
    @Test func unknownIdentifier() {
        expectDecodeError(
            [0x20, 0x05, 0x00, 0x00, 0x02, 0x04, 0x00], version: .v5, .malformedPacket, field: "properties.0x04")
        expectDecodeError(
            [0x20, 0x05, 0x00, 0x00, 0x02, 0x81, 0x01], version: .v5, .malformedPacket, field: "properties.0x81")
    }

    // Goal: decoding is linear in the number of User Properties. A CONNECT of 50,000 took
    // about 20 s when each append copied the array (quadratic: CPU spent before the client is
    // authenticated); linear it takes milliseconds. The bound, 2 s, is 100 times the linear
    // time on this machine and a tenth of the quadratic one.
    @Test func manyUserPropertiesDecodeInLinearTime() throws {
        var properties = Properties()
        let count = 50_000
        for index in 0..<count { properties.appendUserProperty(UserProperty("k", "\(index % 10)")) }
        let connect = Packet.connect(
            Connect(
                protocolVersion: .v5, cleanStart: true, keepAliveSeconds: 0, clientIdentifier: "c",
                properties: properties))
        var buffer = ByteBuffer()
        connect.encode(into: &buffer, version: .v5)
        let bytes = Array(buffer.readableBytesView)
        let started = ContinuousClock.now
        let packets = try decodeAll(bytes, version: .v5)
        let elapsed = ContinuousClock.now - started
        guard case .connect(let decoded) = packets.first else {
            Issue.record("not a CONNECT: \(packets)")
            return
        }
        #expect(decoded.properties.userProperties.count == count)
        #expect(elapsed < .seconds(2), "\(count) user properties took \(elapsed)")
    }

    // Goal: a property value cut short by the property length is malformed.
    // MQTT 5.0 §2.2.2.1: the property length bounds the properties.
    @Test func valueCutByPropertyLength() {
        // property length 2 holds only the identifier and one of the two bytes of receive maximum
        expectDecodeError(
            [0x20, 0x06, 0x00, 0x00, 0x02, 0x21, 0x00, 0x01], version: .v5, .malformedPacket, field: "properties.0x21")
    }
}

extension String {
    /// "properties.0xNN" for an identifier.
    fileprivate init(format identifier: UInt8) {
        let hex = String(identifier, radix: 16, uppercase: true)
        self = "properties.0x" + (hex.count < 2 ? "0" + hex : hex)
    }
}
