import NIOCore

/// The cluster wire's framing: every frame is a 4-byte big-endian payload length followed by
/// the payload. Nothing else is on the wire; the handshake and the messages are payloads.
enum ClusterFrame {
    static let headerBytes = 4

    /// A frame ready to write: the header, then the payload.
    static func encode(_ payload: some Collection<UInt8>, allocator: ByteBufferAllocator = ByteBufferAllocator())
        -> ByteBuffer
    {
        precondition(payload.count <= Int(UInt32.max), "a frame payload must fit a UInt32 length")
        var buffer = allocator.buffer(capacity: headerBytes + payload.count)
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }
}

/// A frame longer than the reader accepts. The reader throws it on the header, before any of
/// the payload is buffered.
struct ClusterFrameTooLarge: Error, Equatable, CustomStringConvertible {
    var payloadBytes: Int
    var maxBytes: Int
    var description: String { "a frame of \(payloadBytes) bytes exceeds the limit of \(maxBytes) bytes" }
}

/// Incremental frame decoding: append what the socket delivered, then take frames until `next()`
/// returns nil ("not enough bytes"; a partial frame is never consumed). The limit may change
/// between two `next()` calls, which is how a connection raises it once the handshake is done:
/// frames are only measured when `next()` reaches their header.
struct ClusterFrameReader {
    var maxFrameBytes: Int
    private var buffer: ByteBuffer?

    init(maxFrameBytes: Int) {
        precondition(maxFrameBytes >= 0)
        self.maxFrameBytes = maxFrameBytes
    }

    /// Bytes received and not yet returned as frames.
    var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        guard var current = buffer, current.readableBytes > 0 else {
            buffer = bytes
            return
        }
        buffer = nil  // keeps the storage uniquely referenced: the write appends in place
        current.writeImmutableBuffer(bytes)
        buffer = current
    }

    /// The next complete frame's payload, nil until one is buffered entirely.
    mutating func next() throws(ClusterFrameTooLarge) -> ByteBuffer? {
        guard var current = buffer, let length = current.getInteger(at: current.readerIndex, as: UInt32.self)
        else { return nil }
        guard length <= maxFrameBytes else {
            throw ClusterFrameTooLarge(payloadBytes: Int(length), maxBytes: maxFrameBytes)
        }
        let frameBytes = ClusterFrame.headerBytes + Int(length)
        guard current.readableBytes >= frameBytes else {
            // A large frame arrives in many reads: make room once rather than doubling per read.
            if current.capacity - current.readerIndex < frameBytes {
                buffer = nil  // keeps the storage uniquely referenced, so reserving does not copy twice
                current.discardReadBytes()
                current.reserveCapacity(frameBytes)
                buffer = current
            }
            return nil
        }
        buffer = nil
        current.moveReaderIndex(forwardBy: ClusterFrame.headerBytes)
        guard let payload = current.readSlice(length: Int(length)) else { preconditionFailure("length checked above") }
        if current.readableBytes > 0 {
            buffer = current
        }
        return payload
    }
}
