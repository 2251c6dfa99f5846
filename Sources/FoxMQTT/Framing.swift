import NIOCore

/// One MQTT control packet cut from the byte stream, not yet parsed (MQTT 5.0 §2.1).
public struct Frame: Sendable {
    public var packetType: PacketType
    /// The low nibble of the first byte: DUP/QoS/RETAIN for PUBLISH, reserved for the others.
    public var flags: UInt8
    /// The variable header and payload: exactly `remaining length` bytes, a slice of the read
    /// buffer (no copy).
    public var body: ByteBuffer

    public init(packetType: PacketType, flags: UInt8, body: ByteBuffer) {
        self.packetType = packetType
        self.flags = flags
        self.body = body
    }
}

/// Cuts frames out of a byte stream (MQTT 5.0 §2.1.1): the fixed header byte, the remaining
/// length as a variable byte integer of at most four bytes, then that many bytes.
///
/// Incremental: `nextFrame` returns nil and consumes nothing while a frame is incomplete, so the
/// caller keeps accumulating bytes and calls again.
public struct FrameDecoder: Sendable {
    /// The largest whole packet (fixed header included) accepted, e.g. the Maximum Packet Size
    /// the server announces in CONNACK. Checked as soon as the remaining length is known, before
    /// waiting for the body, so an oversized packet is never buffered.
    public var maximumPacketSize: Int

    public init(maximumPacketSize: Int) {
        precondition(maximumPacketSize >= 2, "no MQTT packet is shorter than two bytes")
        self.maximumPacketSize = maximumPacketSize
    }

    public mutating func nextFrame(from buffer: inout ByteBuffer) throws(MQTTDecodeError) -> Frame? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard let packetType = PacketType(rawValue: first >> 4) else {
            throw .malformed("fixedHeader.packetType", "packet type 0 is reserved")
        }
        var remainingLength = 0
        var headerLength = 1
        while true {
            guard let byte = buffer.getInteger(at: start + headerLength, as: UInt8.self) else { return nil }
            remainingLength |= Int(byte & 0x7F) << (7 * (headerLength - 1))
            headerLength += 1
            if byte & 0x80 == 0 {
                if headerLength > 2 && byte == 0 {
                    throw .malformed("fixedHeader.remainingLength", "not in its shortest form")
                }
                break
            }
            if headerLength == MQTTLimits.fixedHeaderLengthMax {
                throw .malformed("fixedHeader.remainingLength", "longer than four bytes")
            }
        }
        let packetSize = headerLength + remainingLength
        guard packetSize <= maximumPacketSize else {
            throw MQTTDecodeError(
                .packetTooLarge, field: "fixedHeader.remainingLength",
                "packet of \(packetSize) bytes exceeds the maximum of \(maximumPacketSize)")
        }
        guard buffer.readableBytes >= packetSize else { return nil }
        buffer.moveReaderIndex(forwardBy: headerLength)
        // readableBytes was checked above.
        let body = buffer.readSlice(length: remainingLength)!
        return Frame(packetType: packetType, flags: first & 0x0F, body: body)
    }
}
