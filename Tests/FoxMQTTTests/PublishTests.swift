import FoxMQTT
import NIOCore
import Testing

@Suite struct PublishTests {
    // Goal: 3.1.1 QoS 0 PUBLISH: no packet identifier, the rest is payload.
    // MQTT 3.1.1 §3.3.2, §3.3.3.
    @Test func v311QoS0() throws {
        let bytes: [UInt8] = [
            0x30, 0x07,  // PUBLISH QoS 0, remaining length 7
            0x00, 0x03, 0x61, 0x2F, 0x62,  // topic "a/b"
            0x68, 0x69,  // payload "hi"
        ]
        try expectRoundTrip(bytes, version: .v311, .publish(Publish(topicName: "a/b", payload: payload("hi"))))
    }

    // Goal: 3.1.1 QoS 1 with DUP and RETAIN: the flags and the packet identifier round trip.
    // MQTT 3.1.1 §3.3.1.1-3, §3.3.2.2.
    @Test func v311QoS1DupRetain() throws {
        let bytes: [UInt8] = [
            0x3B, 0x08,  // PUBLISH DUP, QoS 1, RETAIN, remaining length 8
            0x00, 0x03, 0x61, 0x2F, 0x62,  // topic "a/b"
            0x00, 0x0A,  // packet identifier 10
            0x78,  // payload "x"
        ]
        try expectRoundTrip(
            bytes, version: .v311,
            .publish(
                Publish(
                    topicName: "a/b", payload: payload("x"), qos: .atLeastOnce, retain: true, dup: true,
                    packetIdentifier: 10)))
    }

    // Goal: 5.0 QoS 2 PUBLISH with properties and an empty payload.
    // MQTT 5.0 §3.3.2.3: properties follow the packet identifier.
    @Test func v5QoS2WithProperties() throws {
        let bytes: [UInt8] = [
            0x34, 0x10,  // PUBLISH QoS 2, remaining length 16
            0x00, 0x01, 0x74,  // topic "t"
            0x00, 0x01,  // packet identifier 1
            0x0A,  // property length 10
            0x01, 0x01,  // payload format indicator 1
            0x02, 0x00, 0x00, 0x00, 0x3C,  // message expiry interval 60
            0x23, 0x00, 0x05,  // topic alias 5
        ]
        var properties = Properties()
        properties.payloadFormatIndicator = 1
        properties.messageExpiryIntervalSeconds = 60
        properties.topicAlias = 5
        try expectRoundTrip(
            bytes, version: .v5,
            .publish(
                Publish(
                    topicName: "t", payload: ByteBuffer(), qos: .exactlyOnce, packetIdentifier: 1,
                    properties: properties)))
    }

    // Goal: in 5.0 an empty topic name is allowed when a topic alias is present.
    // MQTT 5.0 §3.3.2.1, §3.3.2.3.4.
    @Test func v5EmptyTopicWithAlias() throws {
        let bytes: [UInt8] = [
            0x30, 0x07,  // PUBLISH QoS 0, remaining length 7
            0x00, 0x00,  // topic ""
            0x03, 0x23, 0x00, 0x07,  // properties: topic alias 7
            0x7A,  // payload "z"
        ]
        var properties = Properties()
        properties.topicAlias = 7
        try expectRoundTrip(
            bytes, version: .v5, .publish(Publish(topicName: "", payload: payload("z"), properties: properties)))
    }

    // Goal: a PUBLISH to a subscriber may carry several subscription identifiers.
    // MQTT 5.0 §3.3.2.3.8: multiple Subscription Identifiers are allowed in PUBLISH.
    @Test func v5SeveralSubscriptionIdentifiers() throws {
        let bytes: [UInt8] = [
            0x30, 0x09,  // PUBLISH QoS 0, remaining length 9
            0x00, 0x01, 0x74,  // topic "t"
            0x05,  // property length 5
            0x0B, 0x01,  // subscription identifier 1
            0x0B, 0x80, 0x01,  // subscription identifier 128
        ]
        var properties = Properties()
        properties.subscriptionIdentifiers = [1, 128]
        try expectRoundTrip(
            bytes, version: .v5, .publish(Publish(topicName: "t", payload: ByteBuffer(), properties: properties)))
    }

    // Goal: multi-byte UTF-8 topics are accepted.
    // MQTT 5.0 §1.5.4: topics are UTF-8 strings.
    @Test func utf8Topic() throws {
        let bytes: [UInt8] = [
            0x30, 0x07,  // PUBLISH QoS 0, remaining length 7
            0x00, 0x05, 0xC3, 0xA9, 0xF0, 0x9F, 0xA6,  // "é" and the first bytes of U+1F98A ...
        ]
        // ... cut short: the string is ill-formed, so this is a negative check first.
        expectDecodeError(bytes, version: .v311, .malformedPacket, field: "PUBLISH.topicName")
        let fox: [UInt8] = [0x30, 0x08, 0x00, 0x06, 0xC3, 0xA9, 0xF0, 0x9F, 0xA6, 0x8A]  // "é🦊"
        try expectRoundTrip(fox, version: .v311, .publish(Publish(topicName: "é🦊", payload: ByteBuffer())))
    }

    // Goal: QoS 3 in the fixed header is malformed.
    // MQTT 5.0 §3.3.1.2 [MQTT-3.3.1-4].
    @Test func qos3() {
        expectDecodeError(
            [0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01], version: .v311, .malformedPacket, field: "PUBLISH.qos")
        expectDecodeError(
            [0x36, 0x06, 0x00, 0x01, 0x74, 0x00, 0x01, 0x00], version: .v5, .malformedPacket, field: "PUBLISH.qos")
    }

    // Goal: DUP on a QoS 0 message is malformed (3.1.1 too).
    // MQTT 5.0 §3.3.1.1 [MQTT-3.3.1-2]; MQTT 3.1.1 §3.3.1.1.
    @Test func dupWithQoS0() {
        expectDecodeError([0x38, 0x03, 0x00, 0x01, 0x74], version: .v311, .malformedPacket, field: "PUBLISH.dup")
        expectDecodeError([0x38, 0x04, 0x00, 0x01, 0x74, 0x00], version: .v5, .malformedPacket, field: "PUBLISH.dup")
    }

    // Goal: wildcards in a topic name are Topic Name Invalid.
    // MQTT 5.0 §3.3.2.1 [MQTT-3.3.2-2].
    @Test func wildcardInTopicName() {
        expectDecodeError(
            [0x30, 0x05, 0x00, 0x03, 0x61, 0x2B, 0x62], version: .v311, .topicNameInvalid, field: "PUBLISH.topicName")
        expectDecodeError(
            [0x30, 0x06, 0x00, 0x03, 0x61, 0x2F, 0x23, 0x00], version: .v5, .topicNameInvalid,
            field: "PUBLISH.topicName")
    }

    // Goal: packet identifier 0 on a QoS > 0 PUBLISH is a protocol error.
    // MQTT 5.0 §2.2.1 [MQTT-2.2.1-3].
    @Test func packetIdentifierZero() {
        expectDecodeError(
            [0x32, 0x05, 0x00, 0x01, 0x74, 0x00, 0x00], version: .v311, .protocolError,
            field: "PUBLISH.packetIdentifier")
        expectDecodeError(
            [0x34, 0x06, 0x00, 0x01, 0x74, 0x00, 0x00, 0x00], version: .v5, .protocolError,
            field: "PUBLISH.packetIdentifier")
    }

    // Goal: an empty topic name is invalid in 3.1.1, and a protocol error in 5.0 without alias.
    // MQTT 3.1.1 §4.7.3 [MQTT-4.7.3-1]; MQTT 5.0 §3.3.2.1, §3.3.2.3.4.
    @Test func emptyTopicName() {
        expectDecodeError([0x30, 0x02, 0x00, 0x00], version: .v311, .topicNameInvalid, field: "PUBLISH.topicName")
        expectDecodeError([0x30, 0x03, 0x00, 0x00, 0x00], version: .v5, .protocolError, field: "PUBLISH.topicName")
    }

    // Goal: topic alias 0 is Topic Alias Invalid.
    // MQTT 5.0 §3.3.2.3.4 [MQTT-3.3.2-8].
    @Test func topicAliasZero() {
        expectDecodeError(
            [0x30, 0x07, 0x00, 0x01, 0x74, 0x03, 0x23, 0x00, 0x00], version: .v5, .topicAliasInvalid,
            field: "properties.0x23")
    }

    // Goal: ill-formed UTF-8 topic names are malformed: overlong '/', a surrogate, U+0000.
    // MQTT 5.0 §1.5.4 [MQTT-1.5.4-1, MQTT-1.5.4-2].
    @Test(arguments: [[UInt8(0xC0), 0xAF], [0xED, 0xA0, 0x80], [0x61, 0x00], [0xFF], [0xF4, 0x90, 0x80, 0x80]])
    func illFormedTopicName(topic: [UInt8]) {
        let bytes: [UInt8] = [0x30, UInt8(2 + topic.count), 0x00, UInt8(topic.count)] + topic
        expectDecodeError(bytes, version: .v311, .malformedPacket, field: "PUBLISH.topicName")
    }

    // Goal: a topic length running past the body is malformed.
    // MQTT 5.0 §1.5.4: the two-byte length prefixes the string.
    @Test func shortBody() {
        expectDecodeError([0x30, 0x03, 0x00, 0x05, 0x61], version: .v311, .malformedPacket, field: "PUBLISH.topicName")
        expectDecodeError(
            [0x32, 0x04, 0x00, 0x01, 0x74, 0x00], version: .v311, .malformedPacket, field: "PUBLISH.packetIdentifier")
    }

    // Goal: a property length running past the body is malformed.
    // MQTT 5.0 §2.2.2.1.
    @Test func propertyLengthTooLong() {
        expectDecodeError(
            [0x30, 0x05, 0x00, 0x01, 0x74, 0x05, 0x01], version: .v5, .malformedPacket, field: "PUBLISH.propertyLength")
    }

    // Goal: properties of other packets are malformed in PUBLISH; repeats are protocol errors.
    // MQTT 5.0 §2.2.2.2 (table), §3.3.2.3.
    @Test func propertyRules() {
        expectDecodeError(
            [0x30, 0x09, 0x00, 0x01, 0x74, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01], version: .v5, .malformedPacket,
            field: "properties.0x11")
        expectDecodeError(
            [0x30, 0x0E, 0x00, 0x01, 0x74, 0x0A, 0x02, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02],
            version: .v5,
            .protocolError, field: "properties.0x02")
        expectDecodeError(
            [0x30, 0x06, 0x00, 0x01, 0x74, 0x02, 0x01, 0x02], version: .v5, .protocolError, field: "properties.0x01")
    }

    // Goal: encoding writes the payload slice as is, and reserves once: the encoded bytes follow
    // an existing prefix in the same buffer.
    // MQTT 5.0 §3.3.3: the payload is the rest of the packet.
    @Test func encodeAppends() {
        var buffer = ByteBuffer(bytes: [0xEE])
        var big = ByteBuffer(repeating: 0x41, count: 300)
        big.moveReaderIndex(forwardBy: 100)  // a slice of 200 bytes
        let publish = Packet.publish(Publish(topicName: "t", payload: big, qos: .atLeastOnce, packetIdentifier: 3))
        publish.encode(into: &buffer, version: .v5)
        // 0xEE, 0x32, remaining length 206 = 0xCE 0x01, "t", id 3, no properties, payload
        #expect(
            Array(buffer.readableBytesView.prefix(10)) == [0xEE, 0x32, 0xCE, 0x01, 0x00, 0x01, 0x74, 0x00, 0x03, 0x00])
        #expect(buffer.readableBytes == 1 + 3 + 206)
        #expect(publish.encodedLength(version: .v5) == 209)
    }
}
