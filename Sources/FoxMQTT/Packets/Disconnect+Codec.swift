import NIOCore

/// DISCONNECT on the wire (MQTT 5.0 §3.14, 3.1.1 §3.14). 3.1.1: no body. 5.0: reason code and
/// properties; remaining length 0 means Normal disconnection, and below 2 there is no property
/// length (§3.14.2.1, §3.14.2.2.1).
extension Disconnect: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> Disconnect
    {
        guard version == .v5, body.readableBytes > 0 else { return Disconnect() }
        let reasonCode = ReasonCode(rawValue: try body.readMQTTByte("DISCONNECT.reasonCode"))
        let properties = body.readableBytes > 0 ? try Properties.read(from: &body, context: .disconnect) : Properties()
        return Disconnect(reasonCode: reasonCode, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        guard version == .v5 else { return 0 }
        if !properties.isEmpty { return 1 + properties.encodedLength }
        return reasonCode == .normalDisconnection ? 0 : 1
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        guard version == .v5 else { return }
        let hasProperties = !properties.isEmpty
        if reasonCode != .normalDisconnection || hasProperties { buffer.writeInteger(reasonCode.rawValue) }
        if hasProperties { properties.write(to: &buffer, contentLength: properties.contentLength) }
    }
}
