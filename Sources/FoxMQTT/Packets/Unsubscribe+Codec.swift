import NIOCore

/// UNSUBSCRIBE on the wire (MQTT 5.0 §3.10, 3.1.1 §3.10): packet identifier, [properties],
/// then topic filters, at least one.
extension Unsubscribe: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> Unsubscribe
    {
        let packetIdentifier = try body.readMQTTPacketIdentifier("UNSUBSCRIBE.packetIdentifier")
        var properties = Properties()
        if version == .v5 {
            properties = try Properties.read(from: &body, context: .unsubscribe)
        }
        var topicFilters: [String] = []
        while body.readableBytes > 0 {
            let filter = try body.readMQTTString("UNSUBSCRIBE.topicFilter")
            if filter.isEmpty { throw .malformed("UNSUBSCRIBE.topicFilter", "empty topic filter") }
            topicFilters.append(filter)
        }
        // §3.10.3 [MQTT-3.10.3-2]
        if topicFilters.isEmpty {
            throw MQTTDecodeError(
                version == .v5 ? .protocolError : .malformedPacket, field: "UNSUBSCRIBE.topicFilter",
                "no topic filter")
        }
        return Unsubscribe(packetIdentifier: packetIdentifier, topicFilters: topicFilters, properties: properties)
    }

    var fixedHeaderFlags: UInt8 { 0b0010 }

    func remainingLength(version: ProtocolVersion) -> Int {
        var length = 2
        if version == .v5 { length += properties.encodedLength }
        for filter in topicFilters { length += mqttStringLength(filter) }
        return length
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        buffer.writeInteger(packetIdentifier, endianness: .big)
        if version == .v5 { properties.write(to: &buffer, contentLength: properties.contentLength) }
        for filter in topicFilters { buffer.writeMQTTString(filter) }
    }
}
