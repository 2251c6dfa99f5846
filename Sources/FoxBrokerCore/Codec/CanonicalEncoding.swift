import FoxMQTT
import NIOCore

/// The canonical encoding of the broker's records and rows: big-endian integers, lengths before
/// variable data (u32), a flag byte before optional values, collections in a fixed order (sorted
/// where the state holds them unordered). One encoding serves the LMDB tables, the snapshot,
/// foxdump and the state digest, so that equal states have equal bytes.
///
/// Every decoder is strict: a length past the end, an unknown tag or enum value, trailing bytes
/// or a bad checksum is a `RecordDecodeError` naming the field, never a crash or a default.
public struct RecordDecodeError: Error, Equatable, CustomStringConvertible {
    public var field: String
    public var detail: String

    public init(_ field: String, _ detail: String) {
        self.field = field
        self.detail = detail
    }

    public var description: String { "\(field): \(detail)" }
}

extension ByteBuffer {
    mutating func writeFlag(_ value: Bool) { writeInteger(value ? 1 : 0, as: UInt8.self) }

    mutating func writeLengthPrefixed(_ bytes: ByteBuffer) {
        writeInteger(UInt32(bytes.readableBytes))
        writeImmutableBuffer(bytes)
    }

    mutating func writeLengthPrefixed(_ string: String) {
        writeInteger(UInt32(string.utf8.count))
        writeString(string)
    }

    mutating func writeOptional<Value>(_ value: Value?, _ write: (inout ByteBuffer, Value) -> Void) {
        writeFlag(value != nil)
        if let value { write(&self, value) }
    }
}

/// Reads the canonical encoding, naming the field of every failure.
struct CanonicalReader {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    mutating func integer<Value: FixedWidthInteger>(
        _ field: @autoclosure () -> String, as: Value.Type = Value.self
    ) throws(RecordDecodeError) -> Value {
        guard let value = buffer.readInteger(as: Value.self) else {
            throw RecordDecodeError(field(), "ends before its \(MemoryLayout<Value>.size) bytes")
        }
        return value
    }

    mutating func flag(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> Bool {
        switch try integer(field(), as: UInt8.self) {
        case 0: return false
        case 1: return true
        case let other: throw RecordDecodeError(field(), "flag byte \(other) is neither 0 nor 1")
        }
    }

    mutating func bytes(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> ByteBuffer {
        let length = Int(try integer(field() + ".length", as: UInt32.self))
        guard let slice = buffer.readSlice(length: length) else {
            throw RecordDecodeError(field(), "length \(length) runs past the end (\(buffer.readableBytes) left)")
        }
        return slice
    }

    mutating func string(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> String {
        var slice = try bytes(field())
        guard let string = try? slice.readUTF8ValidatedString(length: slice.readableBytes) else {
            throw RecordDecodeError(field(), "is not valid UTF-8")
        }
        return string
    }

    mutating func optional<Value>(
        _ field: @autoclosure () -> String, _ read: (inout CanonicalReader) throws(RecordDecodeError) -> Value
    ) throws(RecordDecodeError) -> Value? {
        guard try flag(field() + ".present") else { return nil }
        return try read(&self)
    }

    mutating func count(_ field: @autoclosure () -> String, elementSizeMin: Int = 1) throws(RecordDecodeError) -> Int {
        let count = Int(try integer(field() + ".count", as: UInt32.self))
        // A count that the remaining bytes cannot hold is refused before anything is reserved.
        guard count * max(1, elementSizeMin) <= buffer.readableBytes else {
            throw RecordDecodeError(field(), "count \(count) is more than the \(buffer.readableBytes) bytes left hold")
        }
        return count
    }

    mutating func qos(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> QoS {
        let raw = try integer(field(), as: UInt8.self)
        guard let qos = QoS(rawValue: raw) else { throw RecordDecodeError(field(), "QoS \(raw) does not exist") }
        return qos
    }

    mutating func protocolVersion(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> ProtocolVersion {
        let raw = try integer(field(), as: UInt8.self)
        guard let version = ProtocolVersion(rawValue: raw) else {
            throw RecordDecodeError(field(), "protocol level \(raw) does not exist")
        }
        return version
    }

    mutating func properties(
        _ field: @autoclosure () -> String, context: PropertyContext
    ) throws(RecordDecodeError) -> Properties {
        var slice = try bytes(field())
        do {
            let properties = try Properties.readBlock(from: &slice, context: context)
            guard slice.readableBytes == 0 else { throw RecordDecodeError(field(), "trailing bytes after the block") }
            return properties
        } catch let error as RecordDecodeError {
            throw error
        } catch {
            throw RecordDecodeError(field(), "\(error)")
        }
    }

    func expectEnd(_ what: String) throws(RecordDecodeError) {
        guard buffer.readableBytes == 0 else {
            throw RecordDecodeError(what, "\(buffer.readableBytes) trailing bytes")
        }
    }
}

extension ByteBuffer {
    mutating func writeProperties(_ properties: Properties) {
        var block = ByteBuffer()
        properties.writeBlock(to: &block)
        writeLengthPrefixed(block)
    }
}

/// CRC-32C (Castagnoli), the checksum on every record and row: finds torn and flipped bytes
/// that LMDB, which keeps no page checksums, would hand back as they are.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }

    public static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        buffer.withUnsafeReadableBytes { checksum($0) }
    }

    /// The value without its 4-byte trailing checksum, once the checksum is found right.
    static func verifiedBody(_ value: ByteBuffer, _ what: String) throws(RecordDecodeError) -> ByteBuffer {
        guard value.readableBytes >= 4 else {
            throw RecordDecodeError(what, "\(value.readableBytes) bytes is too short")
        }
        let bodyLength = value.readableBytes - 4
        let body = value.getSlice(at: value.readerIndex, length: bodyLength)!
        let stored = value.getInteger(at: value.readerIndex + bodyLength, as: UInt32.self)!
        let computed = checksum(body)
        guard stored == computed else {
            throw RecordDecodeError(what, "checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))")
        }
        return body
    }

    static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
}
