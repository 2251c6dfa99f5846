import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Nanoseconds of CLOCK_MONOTONIC. Publishers and subscribers run in one process, so the send
/// time written into a payload and the receive time read on delivery come from the same clock.
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// The first bytes of every payload foxbench publishes, written in place into a pre-encoded
/// PUBLISH so that a message costs a copy of the template and three integer stores.
///
///     offset 0  magic "FXB1"      (UInt32, big endian)
///     offset 4  publisher index   (UInt32)
///     offset 8  sequence number   (UInt64, 0, 1, 2, ... per publisher)
///     offset 16 send time         (UInt64, monotonic nanoseconds)
///
/// The rest of the payload (up to `--payload` bytes) is filler.
public enum PayloadStamp {
    public static let magic: UInt32 = 0x4658_4231
    public static let size = 24

    public struct Fields: Hashable, Sendable {
        public var publisher: UInt32
        public var sequence: UInt64
        public var timestamp: UInt64
        public init(publisher: UInt32, sequence: UInt64, timestamp: UInt64) {
            self.publisher = publisher
            self.sequence = sequence
            self.timestamp = timestamp
        }
    }

    /// Overwrites the stamp at `index` (the first payload byte) of `buffer`.
    @inline(__always)
    public static func write(_ fields: Fields, into buffer: inout ByteBuffer, at index: Int) {
        buffer.setInteger(magic, at: index)
        buffer.setInteger(fields.publisher, at: index + 4)
        buffer.setInteger(fields.sequence, at: index + 8)
        buffer.setInteger(fields.timestamp, at: index + 16)
    }

    /// Reads the stamp of a payload starting at `index`; nil when the payload is not one of ours.
    @inline(__always)
    public static func read(_ buffer: ByteBuffer, at index: Int) -> Fields? {
        guard buffer.writerIndex - index >= size,
            buffer.getInteger(at: index, as: UInt32.self) == magic,
            let publisher = buffer.getInteger(at: index + 4, as: UInt32.self),
            let sequence = buffer.getInteger(at: index + 8, as: UInt64.self),
            let timestamp = buffer.getInteger(at: index + 16, as: UInt64.self)
        else { return nil }
        return Fields(publisher: publisher, sequence: sequence, timestamp: timestamp)
    }

    /// A payload of `size` bytes: a zero stamp then a repeating filler pattern.
    public static func makePayload(size total: Int) -> ByteBuffer {
        precondition(total >= size, "a payload holds at least the \(size)-byte stamp")
        var buffer = ByteBufferAllocator().buffer(capacity: total)
        buffer.writeRepeatingByte(0, count: size)
        for i in 0..<(total - size) { buffer.writeInteger(UInt8(truncatingIfNeeded: 0x61 + i % 26)) }
        return buffer
    }
}
