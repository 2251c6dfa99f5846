import NIOCore

/// PUBLISH on the wire (MQTT 5.0 §3.3, 3.1.1 §3.3): flags DUP/QoS/RETAIN in the fixed header,
/// topic name, packet identifier when QoS > 0, [properties], payload (the rest of the body).
extension Publish: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> Publish
    {
        // Packet.decode has rejected QoS 3 and DUP with QoS 0.
        let qos = QoS(rawValue: (flags >> 1) & 0b11)!
        let (topicName, hasWildcard) = try body.readMQTTTopicString("PUBLISH.topicName")
        // §3.3.2.1 [MQTT-3.3.2-2]
        if hasWildcard {
            throw MQTTDecodeError(.topicNameInvalid, field: "PUBLISH.topicName", "topic name contains a wildcard")
        }
        let packetIdentifier = qos == .atMostOnce ? nil : try body.readMQTTPacketIdentifier("PUBLISH.packetIdentifier")
        var properties = Properties()
        if version == .v5 {
            properties = try Properties.read(from: &body, context: .publish)
        }
        if topicName.isEmpty {
            // 5.0 §3.3.2.3.4: an empty topic name stands for the topic alias.
            if version == .v311 {
                throw MQTTDecodeError(.topicNameInvalid, field: "PUBLISH.topicName", "empty topic name")
            }
            if properties.topicAlias == nil {
                throw .protocolError("PUBLISH.topicName", "empty topic name without a topic alias")
            }
        }
        let payload = body.readSlice(length: body.readableBytes)!
        return Publish(
            topicName: topicName, payload: payload, qos: qos, retain: flags & 1 != 0, dup: flags & 0b1000 != 0,
            packetIdentifier: packetIdentifier, properties: properties)
    }

    var fixedHeaderFlags: UInt8 {
        (dup ? 0b1000 : 0) | qos.rawValue << 1 | (retain ? 1 : 0)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        var length = mqttStringLength(topicName) + payload.readableBytes
        if qos != .atMostOnce { length += 2 }
        if version == .v5 { length += properties.encodedLength }
        return length
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        buffer.writeMQTTString(topicName)
        if qos != .atMostOnce {
            guard let packetIdentifier, packetIdentifier != 0 else {
                preconditionFailure("PUBLISH with QoS > 0 needs a non-zero packet identifier")
            }
            buffer.writeInteger(packetIdentifier, endianness: .big)
        }
        if version == .v5 { properties.write(to: &buffer, contentLength: properties.contentLength) }
        buffer.writeImmutableBuffer(payload)
    }
}
