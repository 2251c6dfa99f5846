import FoxMQTT
import NIOCore
import Testing

@Suite struct ConnectTests {
    // Goal: a 3.1.1 CONNECT with user name and password round trips.
    // MQTT 3.1.1 §3.1.2 (variable header), §3.1.3 (payload).
    @Test func v311WithCredentials() throws {
        let bytes: [UInt8] = [
            0x10, 0x16,  // CONNECT, remaining length 22
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54,  // "MQTT"
            0x04,  // level 4
            0xC2,  // user name, password, clean session
            0x00, 0x3C,  // keep alive 60
            0x00, 0x03, 0x61, 0x62, 0x63,  // client id "abc"
            0x00, 0x01, 0x75,  // user name "u"
            0x00, 0x02, 0x70, 0x77,  // password "pw"
        ]
        let connect = Connect(
            protocolVersion: .v311, cleanStart: true, keepAliveSeconds: 60, clientIdentifier: "abc",
            username: "u", password: Array("pw".utf8))
        // The version argument is ignored for CONNECT.
        try expectRoundTrip(bytes, version: .v5, .connect(connect))
        try expectRoundTrip(bytes, version: .v311, .connect(connect))
    }

    // Goal: a 5.0 CONNECT with properties, a will with will properties, and credentials.
    // MQTT 5.0 §3.1.2.11 (properties), §3.1.3.2 (will properties), §3.1.3.
    @Test func v5WithWillAndProperties() throws {
        let bytes: [UInt8] = [
            0x10, 0x30,  // CONNECT, remaining length 48
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54,  // "MQTT"
            0x05,  // level 5
            0xEE,  // user name, password, will retain, will QoS 1, will, clean start
            0x00, 0x0A,  // keep alive 10
            0x08,  // property length 8
            0x11, 0x00, 0x00, 0x00, 0x78,  // session expiry interval 120
            0x21, 0x00, 0x14,  // receive maximum 20
            0x00, 0x02, 0x63, 0x31,  // client id "c1"
            0x07,  // will property length 7
            0x01, 0x01,  // payload format indicator 1
            0x18, 0x00, 0x00, 0x00, 0x05,  // will delay interval 5
            0x00, 0x03, 0x77, 0x2F, 0x74,  // will topic "w/t"
            0x00, 0x03, 0x62, 0x79, 0x65,  // will payload "bye"
            0x00, 0x01, 0x75,  // user name "u"
            0x00, 0x02, 0x01, 0x02,  // password [1, 2]
        ]
        var properties = Properties()
        properties.sessionExpiryIntervalSeconds = 120
        properties.receiveMaximum = 20
        var willProperties = Properties()
        willProperties.payloadFormatIndicator = 1
        willProperties.willDelayIntervalSeconds = 5
        let connect = Connect(
            protocolVersion: .v5, cleanStart: true, keepAliveSeconds: 10, clientIdentifier: "c1",
            will: Will(
                topicName: "w/t", payload: payload("bye"), qos: .atLeastOnce, retain: true, properties: willProperties),
            username: "u", password: [1, 2], properties: properties)
        try expectRoundTrip(bytes, version: .v311, .connect(connect))
    }

    // Goal: the smallest 5.0 CONNECT: empty client id, no flags, no properties.
    // MQTT 5.0 §3.1.3.1: a zero-length client identifier is allowed on the wire.
    @Test func v5Minimal() throws {
        let bytes: [UInt8] = [
            0x10, 0x0D,  // CONNECT, remaining length 13
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x05,  // "MQTT" level 5
            0x00, 0x00, 0x00,  // no flags, keep alive 0
            0x00,  // no properties
            0x00, 0x00,  // client id ""
        ]
        try expectRoundTrip(
            bytes, version: .v5,
            .connect(Connect(protocolVersion: .v5, cleanStart: false, keepAliveSeconds: 0, clientIdentifier: "")))
    }

    // Goal: 5.0 allows a password without a user name.
    // MQTT 5.0 §3.1.2.9: the password flag no longer depends on the user name flag.
    @Test func v5PasswordWithoutUsername() throws {
        let bytes: [UInt8] = [
            0x10, 0x11,  // CONNECT, remaining length 17
            0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x05,  // "MQTT" level 5
            0x40, 0x00, 0x00,  // password flag, keep alive 0
            0x00,  // no properties
            0x00, 0x00,  // client id ""
            0x00, 0x02, 0x09, 0x08,  // password [9, 8]
        ]
        try expectRoundTrip(
            bytes, version: .v5,
            .connect(
                Connect(
                    protocolVersion: .v5, cleanStart: false, keepAliveSeconds: 0, clientIdentifier: "",
                    password: [9, 8])))
    }

    /// A 3.1.1 or 5.0 CONNECT header with the given name bytes, level and flags, then `rest`.
    private func connect(name: [UInt8] = [0x4D, 0x51, 0x54, 0x54], level: UInt8, flags: UInt8, _ rest: [UInt8])
        -> [UInt8]
    {
        let body: [UInt8] = [0x00, UInt8(name.count)] + name + [level, flags, 0x00, 0x3C] + rest
        return [0x10, UInt8(body.count)] + body
    }

    // Goal: protocol level 3 (MQTT 3.1) and 6 are refused as unsupported.
    // MQTT 5.0 §3.1.2.2 [MQTT-3.1.2-2]: Unsupported Protocol Version 0x84.
    @Test(arguments: [UInt8(3), 6, 0])
    func unknownLevel(level: UInt8) {
        expectDecodeError(
            connect(level: level, flags: 0x02, [0x00, 0x00]), version: .v5, .unsupportedProtocolVersion,
            field: "CONNECT.protocolLevel")
    }

    // Goal: any protocol name but "MQTT" is refused, "MQIsdp" included.
    // MQTT 5.0 §3.1.2.1 [MQTT-3.1.2-1].
    @Test func unknownProtocolName() {
        let mqisdp: [UInt8] = Array("MQIsdp".utf8)
        expectDecodeError(
            connect(name: mqisdp, level: 3, flags: 0x02, [0x00, 0x00]), version: .v311, .unsupportedProtocolVersion,
            field: "CONNECT.protocolName")
        expectDecodeError(
            connect(name: Array("MQTX".utf8), level: 4, flags: 0x02, [0x00, 0x00]), version: .v311,
            .unsupportedProtocolVersion, field: "CONNECT.protocolName")
    }

    // Goal: the reserved connect flag must be 0.
    // MQTT 5.0 §3.1.2.3 [MQTT-3.1.2-3]: Malformed Packet.
    @Test func reservedFlag() {
        expectDecodeError(
            connect(level: 4, flags: 0x03, [0x00, 0x00]), version: .v311, .malformedPacket, field: "CONNECT.flags")
        expectDecodeError(
            connect(level: 5, flags: 0x01, [0x00, 0x00, 0x00]), version: .v5, .malformedPacket, field: "CONNECT.flags")
    }

    // Goal: will QoS or will retain without the will flag are malformed.
    // MQTT 5.0 §3.1.2.6 [MQTT-3.1.2-11], §3.1.2.7 [MQTT-3.1.2-13].
    @Test(arguments: [UInt8(0x08), 0x10, 0x20])
    func willBitsWithoutWill(flags: UInt8) {
        expectDecodeError(
            connect(level: 4, flags: flags, [0x00, 0x00]), version: .v311, .malformedPacket, field: "CONNECT.flags")
    }

    // Goal: will QoS 3 is malformed.
    // MQTT 5.0 §3.1.2.6 [MQTT-3.1.2-12].
    @Test func willQoS3() {
        let rest: [UInt8] = [0x00, 0x00, 0x00, 0x01, 0x74, 0x00, 0x00]  // id "", will topic "t", will payload ""
        expectDecodeError(
            connect(level: 4, flags: 0x1C, rest), version: .v311, .malformedPacket, field: "CONNECT.flags")
    }

    // Goal: in 3.1.1 a password requires a user name.
    // MQTT 3.1.1 §3.1.2.9 [MQTT-3.1.2-22].
    @Test func v311PasswordWithoutUsername() {
        expectDecodeError(
            connect(level: 4, flags: 0x40, [0x00, 0x00, 0x00, 0x01, 0x70]), version: .v311, .malformedPacket,
            field: "CONNECT.flags")
    }

    // Goal: a will topic with a wildcard, or empty, is refused as Topic Name Invalid.
    // MQTT 5.0 §3.1.3.3: the will topic is a topic name; §4.7.3.
    @Test func willTopicWithWildcard() {
        let rest: [UInt8] = [0x00, 0x00, 0x00, 0x01, 0x23, 0x00, 0x00]  // id "", will topic "#", payload ""
        expectDecodeError(
            connect(level: 4, flags: 0x04, rest), version: .v311, .topicNameInvalid, field: "CONNECT.willTopic")
        let empty: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        expectDecodeError(
            connect(level: 4, flags: 0x04, empty), version: .v311, .topicNameInvalid, field: "CONNECT.willTopic")
    }

    // Goal: a body that ends inside a field, or has bytes after the last field, is malformed.
    // MQTT 5.0 §1.5.4, §2.1.4: the remaining length covers exactly the fields.
    @Test func shortAndLongBodies() {
        expectDecodeError(
            connect(level: 4, flags: 0x02, [0x00, 0x05, 0x61]), version: .v311, .malformedPacket,
            field: "CONNECT.clientIdentifier")
        expectDecodeError(
            connect(level: 4, flags: 0x82, [0x00, 0x00]), version: .v311, .malformedPacket, field: "CONNECT.username")
        expectDecodeError(
            connect(level: 4, flags: 0x02, [0x00, 0x00, 0xAA]), version: .v311, .malformedPacket,
            field: "CONNECT.remainingLength")
    }

    // Goal: CONNECT properties are read in context .connect: a PUBLISH-only property is malformed.
    // MQTT 5.0 §2.2.2.2: Topic Alias (0x23) is not a CONNECT property.
    @Test func propertyOutsideContext() {
        expectDecodeError(
            connect(level: 5, flags: 0x02, [0x03, 0x23, 0x00, 0x01, 0x00, 0x00]), version: .v5, .malformedPacket,
            field: "properties.0x23")
    }

    // Goal: will properties are read in context .will: session expiry is not a will property.
    // MQTT 5.0 §3.1.3.2, §2.2.2.2.
    @Test func willPropertyOutsideContext() {
        let rest: [UInt8] = [
            0x00,  // no properties
            0x00, 0x00,  // id ""
            0x05, 0x11, 0x00, 0x00, 0x00, 0x01,  // will properties: session expiry (not allowed)
            0x00, 0x01, 0x74, 0x00, 0x00,  // will topic "t", payload ""
        ]
        expectDecodeError(
            connect(level: 5, flags: 0x04, rest), version: .v5, .malformedPacket, field: "properties.0x11")
    }

    // Goal: authentication data without an authentication method is a protocol error.
    // MQTT 5.0 §3.1.2.11.10.
    @Test func authenticationDataWithoutMethod() {
        expectDecodeError(
            connect(level: 5, flags: 0x02, [0x04, 0x16, 0x00, 0x01, 0xAB, 0x00, 0x00]), version: .v5, .protocolError,
            field: "properties.0x16")
    }

    // Goal: the client identifier must be valid UTF-8 without U+0000.
    // MQTT 5.0 §1.5.4 [MQTT-1.5.4-1, MQTT-1.5.4-2].
    @Test func clientIdentifierNotUTF8() {
        expectDecodeError(
            connect(level: 4, flags: 0x02, [0x00, 0x02, 0xC3, 0x28]), version: .v311, .malformedPacket,
            field: "CONNECT.clientIdentifier")
        expectDecodeError(
            connect(level: 4, flags: 0x02, [0x00, 0x02, 0x61, 0x00]), version: .v311, .malformedPacket,
            field: "CONNECT.clientIdentifier")
    }
}
