import NIOCore

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout (MQTT 5.0 §3.4-§3.7): packet identifier,
/// then in 5.0 a reason code and properties, both omitted when they are Success and empty
/// (§3.4.2.1: remaining length 2 means Success; below 4 there is no property length).
/// In 3.1.1 only the packet identifier is on the wire.
protocol PublishAcknowledgement: PacketCodec {
    static var context: PropertyContext { get }
    init(packetIdentifier: UInt16, reasonCode: ReasonCode, properties: Properties)
    var packetIdentifier: UInt16 { get }
    var reasonCode: ReasonCode { get }
    var properties: Properties { get }
}

extension PublishAcknowledgement {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> Self
    {
        let name = context.name
        let packetIdentifier = try body.readMQTTPacketIdentifier("\(name).packetIdentifier")
        guard version == .v5, body.readableBytes > 0 else {
            // 3.1.1 leaves nothing more; Packet.decode rejects any bytes left over.
            return Self(packetIdentifier: packetIdentifier, reasonCode: .success, properties: Properties())
        }
        let reasonCode = ReasonCode(rawValue: try body.readMQTTByte("\(name).reasonCode"))
        let properties = body.readableBytes > 0 ? try Properties.read(from: &body, context: context) : Properties()
        return Self(packetIdentifier: packetIdentifier, reasonCode: reasonCode, properties: properties)
    }

    func remainingLength(version: ProtocolVersion) -> Int {
        guard version == .v5 else { return 2 }
        if !properties.isEmpty { return 3 + properties.encodedLength }
        return reasonCode == .success ? 2 : 3
    }

    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {
        buffer.writeInteger(packetIdentifier, endianness: .big)
        guard version == .v5 else { return }
        let hasProperties = !properties.isEmpty
        if reasonCode != .success || hasProperties { buffer.writeInteger(reasonCode.rawValue) }
        if hasProperties { properties.write(to: &buffer, contentLength: properties.contentLength) }
    }
}

extension PubAck: PublishAcknowledgement {
    static var context: PropertyContext { .pubAck }
}

extension PubRec: PublishAcknowledgement {
    static var context: PropertyContext { .pubRec }
}

extension PubRel: PublishAcknowledgement {
    static var context: PropertyContext { .pubRel }
    var fixedHeaderFlags: UInt8 { 0b0010 }
}

extension PubComp: PublishAcknowledgement {
    static var context: PropertyContext { .pubComp }
}
