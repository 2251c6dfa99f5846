import NIOCore

/// SUBACK on the wire (MQTT 5.0 §3.9, 3.1.1 §3.9): packet identifier, [properties], one reason
/// code per topic filter. 3.1.1 has return codes 0x00-0x02 and 0x80 (failure) only.
extension SubAck: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> SubAck
    {
        let packetIdentifier = try body.readMQTTPacketIdentifier("SUBACK.packetIdentifier")
        var properties = Properties()
        if version == .v5 {
            properties = try Properties.read(from: &body, context: .subAck)
        }
        var reasonCodes: [ReasonCode] = []
        reasonCodes.reserveCapacity(body.readableBytes)
        while let code = body.readInteger(as: UInt8.self) {
            if version == .v311 && code > 2 && code != 0x80 {
                throw .malformed("SUBACK.returnCode", "return code \(code) is reserved")
            }
            reasonCodes.append(ReasonCode(rawValue: code))
        }
        if reasonCodes.isEmpty { throw .malformed("SUBACK.reasonCode", "no reason code") }
        return SubAck(packetIdentifier: packetIdentifier, reasonCodes: reasonCodes, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        2 + reasonCodes.count + (version == .v5 ? properties.encodedLength : 0)
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        buffer.writeInteger(packetIdentifier, endianness: .big)
        if version == .v5 { properties.write(to: &buffer, contentLength: properties.contentLength) }
        for code in reasonCodes {
            buffer.writeInteger(version == .v311 && code.isFailure ? 0x80 : code.rawValue)
        }
    }
}
