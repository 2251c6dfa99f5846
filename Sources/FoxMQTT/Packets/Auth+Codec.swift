import NIOCore

/// AUTH on the wire (MQTT 5.0 §3.15), 5.0 only: reason code and properties, both omitted when
/// Success without properties (remaining length 0, §3.15.2.1). A reason code without a property
/// length is accepted, as for the other packets with a reason code.
extension Auth: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> Auth
    {
        guard body.readableBytes > 0 else { return Auth() }
        let reasonCode = ReasonCode(rawValue: try body.readMQTTByte("AUTH.reasonCode"))
        let properties = body.readableBytes > 0 ? try Properties.read(from: &body, context: .auth) : Properties()
        // §3.15.2.2.3-4: authentication data without a method.
        if properties.authenticationData != nil && properties.authenticationMethod == nil {
            throw .protocolError("properties.0x16", "authentication data without authentication method")
        }
        return Auth(reasonCode: reasonCode, properties: properties)
    }

    /// Success without properties is written as remaining length 0; anything else as reason
    /// code plus property block (the property length is always written then).
    func remainingLength(version: ProtocolVersion) -> Int {
        if reasonCode == .success && properties.isEmpty { return 0 }
        return 1 + properties.encodedLength
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        if reasonCode == .success && properties.isEmpty { return }
        buffer.writeInteger(reasonCode.rawValue)
        properties.write(to: &buffer, contentLength: properties.contentLength)
    }
}
