import NIOCore

/// SUBSCRIBE on the wire (MQTT 5.0 §3.8, 3.1.1 §3.8): packet identifier, [properties], then
/// topic filter / subscription options pairs, at least one.
extension Subscribe: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> Subscribe
    {
        let packetIdentifier = try body.readMQTTPacketIdentifier("SUBSCRIBE.packetIdentifier")
        var properties = Properties()
        if version == .v5 {
            properties = try Properties.read(from: &body, context: .subscribe)
        }
        var subscriptions: [TopicSubscription] = []
        while body.readableBytes > 0 {
            // An empty filter breaks [MQTT-4.7.3-1] but not the packet: it is refused in its
            // SUBACK slot (0x8F, Topic Filter invalid; 0x80 for 3.1.1) like any invalid filter,
            // and the other filters of the packet are still served.
            let filter = try body.readMQTTString("SUBSCRIBE.topicFilter")
            let options = try SubscriptionOptions.read(
                try body.readMQTTByte("SUBSCRIBE.subscriptionOptions"), version: version)
            // §3.8.3.1 [MQTT-3.8.3-4]: No Local on a shared subscription.
            if options.noLocal && Topic.isShared(filter) {
                throw .protocolError("SUBSCRIBE.subscriptionOptions", "No Local on a shared subscription")
            }
            subscriptions.append(TopicSubscription(topicFilter: filter, options: options))
        }
        // §3.8.3 [MQTT-3.8.3-2]
        if subscriptions.isEmpty {
            throw MQTTDecodeError(
                version == .v5 ? .protocolError : .malformedPacket, field: "SUBSCRIBE.topicFilter",
                "no topic filter")
        }
        return Subscribe(packetIdentifier: packetIdentifier, subscriptions: subscriptions, properties: properties)
    }

    var fixedHeaderFlags: UInt8 { 0b0010 }

    func remainingLength(version: ProtocolVersion) -> Int {
        var length = 2
        if version == .v5 { length += properties.encodedLength }
        for subscription in subscriptions { length += mqttStringLength(subscription.topicFilter) + 1 }
        return length
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        buffer.writeInteger(packetIdentifier, endianness: .big)
        if version == .v5 { properties.write(to: &buffer, contentLength: properties.contentLength) }
        for subscription in subscriptions {
            buffer.writeMQTTString(subscription.topicFilter)
            buffer.writeInteger(subscription.options.byte(version: version))
        }
    }
}

extension SubscriptionOptions {
    /// The options byte (§3.8.3.1): bits 0-1 QoS, 2 No Local, 3 Retain As Published, 4-5 Retain
    /// Handling, 6-7 reserved. 3.1.1 has only the QoS; its other bits are reserved.
    static func read(_ byte: UInt8, version: ProtocolVersion) throws(MQTTDecodeError) -> SubscriptionOptions {
        let field = "SUBSCRIBE.subscriptionOptions"
        switch version {
        case .v311:
            // 3.1.1 [MQTT-3-8.3-4]
            if byte & 0b1111_1100 != 0 { throw .malformed(field, "reserved bits are set") }
        case .v5:
            // [MQTT-3.8.3-5]
            if byte & 0b1100_0000 != 0 { throw .malformed(field, "reserved bits are set") }
        }
        guard let qos = QoS(rawValue: byte & 0b11) else { throw .malformed(field, "QoS 3") }
        guard let retainHandling = RetainHandling(rawValue: (byte >> 4) & 0b11) else {
            throw .protocolError(field, "retain handling 3")
        }
        return SubscriptionOptions(
            qos: qos, noLocal: byte & 0b0100 != 0, retainAsPublished: byte & 0b1000 != 0,
            retainHandling: retainHandling)
    }

    func byte(version: ProtocolVersion) -> UInt8 {
        guard version == .v5 else { return qos.rawValue }
        return qos.rawValue | (noLocal ? 0b0100 : 0) | (retainAsPublished ? 0b1000 : 0) | retainHandling.rawValue << 4
    }
}
