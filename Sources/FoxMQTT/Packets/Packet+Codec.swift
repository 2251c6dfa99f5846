import NIOCore

/// What each packet type implements: reading its body from a frame and writing it back. The
/// fixed header (type, flags, remaining length) is handled once, in `Packet`.
protocol PacketCodec {
    /// Reads the variable header and payload. `flags` is the low nibble of the fixed header,
    /// already checked for the reserved values. Bytes left unread are rejected by the caller.
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> Self
    /// The low nibble of the fixed header.
    var fixedHeaderFlags: UInt8 { get }
    /// The bytes `write` produces.
    func remainingLength(version: ProtocolVersion) -> Int
    func write(to buffer: inout ByteBuffer, version: ProtocolVersion)
}

extension PacketCodec {
    var fixedHeaderFlags: UInt8 { 0 }
}

extension Packet {
    /// Parses one frame into a packet value (MQTT 5.0 §2, §3). `version` is the one the
    /// connection agreed in CONNECT; CONNECT itself carries its version and ignores it.
    ///
    /// Throws the reason code the specification names for the violation: Malformed Packet for
    /// reserved flags, short bodies, trailing bytes and invalid strings; Protocol Error for
    /// forbidden values; and the more specific codes where the specification has one.
    public static func decode(_ frame: Frame, version: ProtocolVersion) throws(MQTTDecodeError) -> Packet {
        try checkFlags(frame)
        var body = frame.body
        let packet: Packet
        switch frame.packetType {
        case .connect: packet = .connect(try Connect.read(flags: frame.flags, from: &body, version: version))
        case .connAck: packet = .connAck(try ConnAck.read(flags: frame.flags, from: &body, version: version))
        case .publish: packet = .publish(try Publish.read(flags: frame.flags, from: &body, version: version))
        case .pubAck: packet = .pubAck(try PubAck.read(flags: frame.flags, from: &body, version: version))
        case .pubRec: packet = .pubRec(try PubRec.read(flags: frame.flags, from: &body, version: version))
        case .pubRel: packet = .pubRel(try PubRel.read(flags: frame.flags, from: &body, version: version))
        case .pubComp: packet = .pubComp(try PubComp.read(flags: frame.flags, from: &body, version: version))
        case .subscribe: packet = .subscribe(try Subscribe.read(flags: frame.flags, from: &body, version: version))
        case .subAck: packet = .subAck(try SubAck.read(flags: frame.flags, from: &body, version: version))
        case .unsubscribe:
            packet = .unsubscribe(try Unsubscribe.read(flags: frame.flags, from: &body, version: version))
        case .unsubAck: packet = .unsubAck(try UnsubAck.read(flags: frame.flags, from: &body, version: version))
        case .pingReq: packet = .pingReq
        case .pingResp: packet = .pingResp
        case .disconnect:
            packet = .disconnect(try Disconnect.read(flags: frame.flags, from: &body, version: version))
        case .auth:
            guard version == .v5 else {
                throw .malformed("AUTH", "AUTH does not exist in MQTT 3.1.1")
            }
            packet = .auth(try Auth.read(flags: frame.flags, from: &body, version: version))
        }
        guard body.readableBytes == 0 else {
            throw .malformed(
                "\(frame.packetType.name).remainingLength", "\(body.readableBytes) bytes left over after the packet")
        }
        return packet
    }

    /// Fixed header flags (§2.1.3): reserved values are fixed; a PUBLISH may not have QoS 3, nor
    /// DUP with QoS 0 [MQTT-3.3.1-2, MQTT-3.3.1-4].
    private static func checkFlags(_ frame: Frame) throws(MQTTDecodeError) {
        switch frame.packetType {
        case .publish:
            let qos = (frame.flags >> 1) & 0b11
            if qos == 3 { throw .malformed("PUBLISH.qos", "QoS 3 is reserved") }
            if qos == 0 && frame.flags & 0b1000 != 0 {
                throw .malformed("PUBLISH.dup", "DUP set on a QoS 0 message")
            }
        case .pubRel, .subscribe, .unsubscribe:
            if frame.flags != 0b0010 {
                throw .malformed("\(frame.packetType.name).flags", "reserved flags must be 0010")
            }
        default:
            if frame.flags != 0 {
                throw .malformed("\(frame.packetType.name).flags", "reserved flags must be 0000")
            }
        }
    }

    /// The whole packet's size on the wire, fixed header included.
    public func encodedLength(version: ProtocolVersion) -> Int {
        let remaining = remainingLength(version: version)
        return 1 + variableByteIntegerLength(remaining) + remaining
    }

    /// Writes the whole packet, fixed header included. Properties are written only for 5.0;
    /// 3.1.1 gets the older form of each packet (see the packet types). Writing AUTH for 3.1.1
    /// is a programmer error.
    public func encode(into buffer: inout ByteBuffer, version: ProtocolVersion) {
        // A switch rather than an existential, so that no packet is boxed on the way out.
        switch self {
        case .connect(let p): Packet.encode(p, type: .connect, into: &buffer, version: version)
        case .connAck(let p): Packet.encode(p, type: .connAck, into: &buffer, version: version)
        case .publish(let p): Packet.encode(p, type: .publish, into: &buffer, version: version)
        case .pubAck(let p): Packet.encode(p, type: .pubAck, into: &buffer, version: version)
        case .pubRec(let p): Packet.encode(p, type: .pubRec, into: &buffer, version: version)
        case .pubRel(let p): Packet.encode(p, type: .pubRel, into: &buffer, version: version)
        case .pubComp(let p): Packet.encode(p, type: .pubComp, into: &buffer, version: version)
        case .subscribe(let p): Packet.encode(p, type: .subscribe, into: &buffer, version: version)
        case .subAck(let p): Packet.encode(p, type: .subAck, into: &buffer, version: version)
        case .unsubscribe(let p): Packet.encode(p, type: .unsubscribe, into: &buffer, version: version)
        case .unsubAck(let p): Packet.encode(p, type: .unsubAck, into: &buffer, version: version)
        case .pingReq: Packet.encode(EmptyBody(), type: .pingReq, into: &buffer, version: version)
        case .pingResp: Packet.encode(EmptyBody(), type: .pingResp, into: &buffer, version: version)
        case .disconnect(let p): Packet.encode(p, type: .disconnect, into: &buffer, version: version)
        case .auth(let p):
            precondition(version == .v5, "AUTH does not exist in MQTT 3.1.1")
            Packet.encode(p, type: .auth, into: &buffer, version: version)
        }
    }

    private func remainingLength(version: ProtocolVersion) -> Int {
        switch self {
        case .connect(let p): p.remainingLength(version: version)
        case .connAck(let p): p.remainingLength(version: version)
        case .publish(let p): p.remainingLength(version: version)
        case .pubAck(let p): p.remainingLength(version: version)
        case .pubRec(let p): p.remainingLength(version: version)
        case .pubRel(let p): p.remainingLength(version: version)
        case .pubComp(let p): p.remainingLength(version: version)
        case .subscribe(let p): p.remainingLength(version: version)
        case .subAck(let p): p.remainingLength(version: version)
        case .unsubscribe(let p): p.remainingLength(version: version)
        case .unsubAck(let p): p.remainingLength(version: version)
        case .pingReq, .pingResp: 0
        case .disconnect(let p): p.remainingLength(version: version)
        case .auth(let p): p.remainingLength(version: version)
        }
    }

    private static func encode<P: PacketCodec>(
        _ packet: P, type: PacketType, into buffer: inout ByteBuffer, version: ProtocolVersion
    ) {
        let remaining = packet.remainingLength(version: version)
        precondition(remaining <= MQTTLimits.variableByteIntegerMax, "packet larger than MQTT allows")
        buffer.reserveCapacity(minimumWritableBytes: 1 + variableByteIntegerLength(remaining) + remaining)
        buffer.writeInteger(type.rawValue << 4 | packet.fixedHeaderFlags)
        buffer.writeMQTTVariableByteInteger(remaining)
        let bodyStart = buffer.writerIndex
        packet.write(to: &buffer, version: version)
        assert(buffer.writerIndex - bodyStart == remaining, "\(type.name): remainingLength disagrees with write")
    }
}

/// PINGREQ and PINGRESP: a fixed header only (§3.12, §3.13).
private struct EmptyBody: PacketCodec {
    static func read(flags: UInt8, from body: inout ByteBuffer, version: ProtocolVersion) throws(MQTTDecodeError)
        -> EmptyBody
    {
        EmptyBody()
    }
    func remainingLength(version: ProtocolVersion) -> Int { 0 }
    func write(to buffer: inout ByteBuffer, version: ProtocolVersion) {}
}

extension PacketType {
    /// The name the specification uses, for error fields and logs.
    public var name: String {
        switch self {
        case .connect: "CONNECT"
        case .connAck: "CONNACK"
        case .publish: "PUBLISH"
        case .pubAck: "PUBACK"
        case .pubRec: "PUBREC"
        case .pubRel: "PUBREL"
        case .pubComp: "PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .subAck: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsubAck: "UNSUBACK"
        case .pingReq: "PINGREQ"
        case .pingResp: "PINGRESP"
        case .disconnect: "DISCONNECT"
        case .auth: "AUTH"
        }
    }
}

/// Shared readers of the packet types.
extension ByteBuffer {
    /// A non-zero packet identifier (§2.2.1) [MQTT-2.2.1-3]: 0 is a Protocol Error.
    mutating func readMQTTPacketIdentifier(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> UInt16 {
        let value = try readMQTTUInt16(field())
        guard value != 0 else { throw .protocolError(field(), "packet identifier 0") }
        return value
    }
}
