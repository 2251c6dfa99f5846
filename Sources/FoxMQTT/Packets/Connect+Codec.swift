import NIOCore

/// CONNECT on the wire (MQTT 5.0 §3.1, 3.1.1 §3.1): protocol name "MQTT", protocol level
/// (4 or 5), connect flags, keep alive, [properties], then the payload: client identifier,
/// [will properties], will topic, will payload, user name, password.
extension Connect: PacketCodec {
    private enum Flag {
        static let reserved: UInt8 = 0b0000_0001
        static let cleanStart: UInt8 = 0b0000_0010
        static let will: UInt8 = 0b0000_0100
        static let willQoS: UInt8 = 0b0001_1000
        static let willRetain: UInt8 = 0b0010_0000
        static let password: UInt8 = 0b0100_0000
        static let username: UInt8 = 0b1000_0000
    }

    static func read(flags: UInt8, from body: inout ByteBuffer, version _: ProtocolVersion) throws(MQTTDecodeError)
        -> Connect
    {
        // §3.1.2.1: an incorrect protocol name; 3.1's "MQIsdp" is not supported either.
        let protocolName = try body.readMQTTString("CONNECT.protocolName")
        guard protocolName == "MQTT" else {
            var error = MQTTDecodeError(
                .unsupportedProtocolVersion, field: "CONNECT.protocolName", "protocol name \"\(protocolName)\"")
            // MQTT 3.1 called itself "MQIsdp".
            if protocolName == "MQIsdp" { error.protocolLevel = 3 }
            throw error
        }
        let level = try body.readMQTTByte("CONNECT.protocolLevel")
        guard let version = ProtocolVersion(rawValue: level) else {
            var error = MQTTDecodeError(
                .unsupportedProtocolVersion, field: "CONNECT.protocolLevel", "protocol level \(level)")
            error.protocolLevel = level
            throw error
        }
        let connectFlags = try body.readMQTTByte("CONNECT.flags")
        // §3.1.2.3 [MQTT-3.1.2-3]
        if connectFlags & Flag.reserved != 0 {
            throw .malformed("CONNECT.flags", "reserved flag is set")
        }
        let hasWill = connectFlags & Flag.will != 0
        let willQoSBits = (connectFlags & Flag.willQoS) >> 3
        let willRetain = connectFlags & Flag.willRetain != 0
        if !hasWill && (willQoSBits != 0 || willRetain) {
            // [MQTT-3.1.2-11, MQTT-3.1.2-13]
            throw .malformed("CONNECT.flags", "will QoS or will retain set without the will flag")
        }
        guard let willQoS = QoS(rawValue: willQoSBits) else {
            // [MQTT-3.1.2-12]
            throw .malformed("CONNECT.flags", "will QoS 3")
        }
        let hasUsername = connectFlags & Flag.username != 0
        let hasPassword = connectFlags & Flag.password != 0
        if version == .v311 && hasPassword && !hasUsername {
            // 3.1.1 [MQTT-3.1.2-22]
            throw .malformed("CONNECT.flags", "password flag without user name flag")
        }
        let keepAlive = try body.readMQTTUInt16("CONNECT.keepAlive")
        var properties = Properties()
        if version == .v5 {
            properties = try Properties.read(from: &body, context: .connect)
            // §3.1.2.11.10: authentication data without a method.
            if properties.authenticationData != nil && properties.authenticationMethod == nil {
                throw .protocolError("properties.0x16", "authentication data without authentication method")
            }
        }
        let clientIdentifier = try body.readMQTTString("CONNECT.clientIdentifier")
        var will: Will?
        if hasWill {
            var willProperties = Properties()
            if version == .v5 {
                willProperties = try Properties.read(from: &body, context: .will)
            }
            let (topic, hasWildcard) = try body.readMQTTTopicString("CONNECT.willTopic")
            if topic.isEmpty || hasWildcard {
                throw MQTTDecodeError(.topicNameInvalid, field: "CONNECT.willTopic", "not a valid topic name")
            }
            let payload = try body.readMQTTBinarySlice("CONNECT.willPayload")
            will = Will(
                topicName: topic, payload: payload, qos: willQoS, retain: willRetain, properties: willProperties)
        }
        let username = hasUsername ? try body.readMQTTString("CONNECT.username") : nil
        let password = hasPassword ? try body.readMQTTBinary("CONNECT.password") : nil
        return Connect(
            protocolVersion: version, cleanStart: connectFlags & Flag.cleanStart != 0, keepAliveSeconds: keepAlive,
            clientIdentifier: clientIdentifier, will: will, username: username, password: password,
            properties: properties)
    }

    /// Writes `protocolVersion`, not the connection's version: CONNECT chooses it.
    func remainingLength(version _: ProtocolVersion) -> Int {
        var length = 6 + 1 + 1 + 2  // "MQTT", level, flags, keep alive
        if protocolVersion == .v5 { length += properties.encodedLength }
        length += mqttStringLength(clientIdentifier)
        if let will {
            if protocolVersion == .v5 { length += will.properties.encodedLength }
            length += mqttStringLength(will.topicName) + 2 + will.payload.readableBytes
        }
        if let username { length += mqttStringLength(username) }
        if let password { length += 2 + password.count }
        return length
    }

    func write(to buffer: inout ByteBuffer, version _: ProtocolVersion) {
        buffer.writeMQTTString("MQTT")
        buffer.writeInteger(protocolVersion.rawValue)
        var flags: UInt8 = 0
        if cleanStart { flags |= Flag.cleanStart }
        if let will {
            flags |= Flag.will | will.qos.rawValue << 3
            if will.retain { flags |= Flag.willRetain }
        }
        if username != nil { flags |= Flag.username }
        if password != nil { flags |= Flag.password }
        buffer.writeInteger(flags)
        buffer.writeInteger(keepAliveSeconds, endianness: .big)
        if protocolVersion == .v5 { properties.write(to: &buffer, contentLength: properties.contentLength) }
        buffer.writeMQTTString(clientIdentifier)
        if let will {
            if protocolVersion == .v5 {
                will.properties.write(to: &buffer, contentLength: will.properties.contentLength)
            }
            buffer.writeMQTTString(will.topicName)
            buffer.writeMQTTBinary(will.payload)
        }
        if let username { buffer.writeMQTTString(username) }
        if let password { buffer.writeMQTTBinary(password) }
    }
}
