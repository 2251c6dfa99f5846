import FoxMQTT
import NIOCore
import Testing

@Suite struct SubscribeTests {
    // Goal: 3.1.1 SUBSCRIBE with two filters; only the QoS is in the options byte.
    // MQTT 3.1.1 §3.8.2, §3.8.3.
    @Test func v311() throws {
        let bytes: [UInt8] = [
            0x82, 0x0C,  // SUBSCRIBE (flags 0010), remaining length 12
            0x00, 0x0A,  // packet identifier 10
            0x00, 0x03, 0x61, 0x2F, 0x2B, 0x01,  // "a/+" QoS 1
            0x00, 0x01, 0x23, 0x02,  // "#" QoS 2
        ]
        try expectRoundTrip(
            bytes, version: .v311,
            .subscribe(
                Subscribe(
                    packetIdentifier: 10,
                    subscriptions: [
                        TopicSubscription(topicFilter: "a/+", options: SubscriptionOptions(qos: .atLeastOnce)),
                        TopicSubscription(topicFilter: "#", options: SubscriptionOptions(qos: .exactlyOnce)),
                    ])))
    }

    // Goal: 5.0 SUBSCRIBE with a subscription identifier and every option bit.
    // MQTT 5.0 §3.8.2.1, §3.8.3.1.
    @Test func v5() throws {
        let bytes: [UInt8] = [
            0x82, 0x0C,  // SUBSCRIBE, remaining length 12
            0x00, 0x01,  // packet identifier 1
            0x03, 0x0B, 0x80, 0x01,  // properties: subscription identifier 128
            0x00, 0x03, 0x61, 0x2F, 0x62,  // "a/b"
            0x2D,  // retain handling 2, retain as published, no local, QoS 1
        ]
        var properties = Properties()
        properties.subscriptionIdentifiers = [128]
        let options = SubscriptionOptions(
            qos: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend)
        try expectRoundTrip(
            bytes, version: .v5,
            .subscribe(
                Subscribe(
                    packetIdentifier: 1, subscriptions: [TopicSubscription(topicFilter: "a/b", options: options)],
                    properties: properties)))
    }

    // Goal: wildcard misuse is not the decoder's business: the broker answers SUBACK 0x8F.
    // MQTT 5.0 §3.8.3: the filter is a UTF-8 string; §3.9.3 0x8F Topic Filter Invalid.
    @Test func wildcardMisuseIsDecoded() throws {
        let bytes: [UInt8] = [
            0x82, 0x09, 0x00, 0x01, /* id 1 */ 0x00, 0x04, 0x61, 0x2F, 0x62, 0x23, /* "a/b#" */ 0x00,
        ]
        try expectRoundTrip(
            bytes, version: .v311,
            .subscribe(
                Subscribe(
                    packetIdentifier: 1,
                    subscriptions: [
                        TopicSubscription(topicFilter: "a/b#", options: SubscriptionOptions(qos: .atMostOnce))
                    ])))
    }

    // Goal: a SUBSCRIBE without filters is a protocol error in 5.0 and malformed in 3.1.1.
    // MQTT 5.0 §3.8.3 [MQTT-3.8.3-2]; MQTT 3.1.1 §3.8.3-3.
    @Test func noFilters() {
        expectDecodeError([0x82, 0x03, 0x00, 0x01, 0x00], version: .v5, .protocolError, field: "SUBSCRIBE.topicFilter")
        expectDecodeError([0x82, 0x02, 0x00, 0x01], version: .v311, .malformedPacket, field: "SUBSCRIBE.topicFilter")
    }

    // Goal: the fixed header flags must be 0010.
    // MQTT 5.0 §3.8.1 [MQTT-3.8.1-1].
    @Test func reservedFlags() {
        expectDecodeError(
            [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00], version: .v311, .malformedPacket, field: "SUBSCRIBE.flags"
        )
    }

    // Goal: option byte checks: reserved bits 6-7, QoS 3, retain handling 3.
    // MQTT 5.0 §3.8.3.1 [MQTT-3.8.3-5]: reserved bits malformed; retain handling 3 protocol error.
    @Test(arguments: [
        (UInt8(0x40), ReasonCode.malformedPacket), (0x80, .malformedPacket), (0x03, .malformedPacket),
        (0x30, .protocolError),
    ])
    func v5Options(options: UInt8, reasonCode: ReasonCode) {
        expectDecodeError(
            [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61, options], version: .v5, reasonCode,
            field: "SUBSCRIBE.subscriptionOptions")
    }

    // Goal: in 3.1.1 the upper six bits of the requested QoS byte are reserved.
    // MQTT 3.1.1 §3.8.3.1 [MQTT-3-8.3-4].
    @Test(arguments: [UInt8(0x04), 0x20, 0x80, 0x03])
    func v311Options(options: UInt8) {
        expectDecodeError(
            [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, options], version: .v311, .malformedPacket,
            field: "SUBSCRIBE.subscriptionOptions")
    }

    // Goal: No Local on a shared subscription is a protocol error.
    // MQTT 5.0 §3.8.3.1 [MQTT-3.8.3-4].
    @Test func noLocalOnSharedSubscription() {
        let filter = Array("$share/g/a".utf8)
        let bytes: [UInt8] =
            [0x82, UInt8(6 + filter.count), 0x00, 0x01, 0x00, 0x00, UInt8(filter.count)] + filter + [0x04]
        expectDecodeError(bytes, version: .v5, .protocolError, field: "SUBSCRIBE.subscriptionOptions")
    }

    // Goal: an empty topic filter decodes (the packet is well formed); the broker refuses the
    // filter in its SUBACK slot (0x8F), not the connection. MQTT 5.0 §4.7.3 [MQTT-4.7.3-1].
    @Test func emptyFilterDecodesForItsSubAckSlot() throws {
        let packets = try decodeAll([0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01], version: .v311)
        guard packets.count == 1, case .subscribe(let subscribe) = packets[0] else {
            Issue.record("not one SUBSCRIBE: \(packets)")
            return
        }
        #expect(subscribe.subscriptions.map(\.topicFilter) == [""])
    }

    // Goal: a filter without its options byte is malformed.
    // MQTT 5.0 §3.8.3: each filter is followed by an options byte.
    @Test func missingOptions() {
        expectDecodeError(
            [0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 0x61], version: .v311, .malformedPacket,
            field: "SUBSCRIBE.subscriptionOptions")
    }

    // Goal: packet identifier 0 is a protocol error.
    // MQTT 5.0 §2.2.1 [MQTT-2.2.1-3].
    @Test func packetIdentifierZero() {
        expectDecodeError(
            [0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00], version: .v311, .protocolError,
            field: "SUBSCRIBE.packetIdentifier")
    }

    // Goal: SUBSCRIBE allows one subscription identifier; two are a protocol error, 0 too.
    // MQTT 5.0 §3.8.2.1.2, §2.2.2.2.
    @Test func subscriptionIdentifierRules() {
        expectDecodeError(
            [0x82, 0x0A, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, 0x61, 0x00], version: .v5,
            .protocolError, field: "properties.0x0B")
        expectDecodeError(
            [0x82, 0x08, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, 0x61, 0x00], version: .v5, .protocolError,
            field: "properties.0x0B")
    }
}
