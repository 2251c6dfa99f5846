import NIOCore

/// UNSUBACK on the wire (MQTT 5.0 §3.11, 3.1.1 §3.11): packet identifier, then in 5.0
/// properties and one reason code per topic filter. 3.1.1 has no payload.
extension UnsubAck: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> UnsubAck
    {
        let packetIdentifier = try body.readMQTTPacketIdentifier("UNSUBACK.packetIdentifier")
        guard version == .v5 else {
            // Packet.decode rejects any bytes left over.
            return UnsubAck(packetIdentifier: packetIdentifier, reasonCodes: [])
        }
        let properties = try Properties.read(from: &body, context: .unsubAck)
        var reasonCodes: [ReasonCode] = []
        reasonCodes.reserveCapacity(body.readableBytes)
        while let code = body.readInteger(as: UInt8.self) { reasonCodes.append(ReasonCode(rawValue: code)) }
        if reasonCodes.isEmpty { throw .malformed("UNSUBACK.reasonCode", "no reason code") }
        return UnsubAck(packetIdentifier: packetIdentifier, reasonCodes: reasonCodes, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        version == .v5 ? 2 + properties.encodedLength + reasonCodes.count : 2
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        buffer.writeInteger(packetIdentifier, endianness: .big)
        guard version == .v5 else { return }
        properties.write(to: &buffer, contentLength: properties.contentLength)
        for code in reasonCodes { buffer.writeInteger(code.rawValue) }
    }
}
