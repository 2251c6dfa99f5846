import NIOCore

/// The data representations of MQTT (MQTT 5.0 §1.5, 3.1.1 §1.5): two- and four-byte integers,
/// variable byte integers, UTF-8 strings, binary data and string pairs. Every reader throws a
/// Malformed Packet error that names the field when the bytes run out or are invalid.
///
/// Field names are autoclosures: most are built by interpolation ("PUBACK.packetIdentifier"),
/// and only a failing read should pay for that string.
extension ByteBuffer {
    // MARK: Integers

    mutating func readMQTTByte(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> UInt8 {
        guard let value = readInteger(as: UInt8.self) else {
            throw .malformed(field(), "packet ends before this byte")
        }
        return value
    }

    mutating func readMQTTUInt16(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> UInt16 {
        guard let value = readInteger(endianness: .big, as: UInt16.self) else {
            throw .malformed(field(), "packet ends before this two-byte integer")
        }
        return value
    }

    mutating func readMQTTUInt32(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> UInt32 {
        guard let value = readInteger(endianness: .big, as: UInt32.self) else {
            throw .malformed(field(), "packet ends before this four-byte integer")
        }
        return value
    }

    /// A variable byte integer (§1.5.5): at most four bytes, least significant group first,
    /// using the minimum number of bytes [MQTT-1.5.5-1].
    mutating func readMQTTVariableByteInteger(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> UInt32 {
        var value: UInt32 = 0
        var shift: UInt32 = 0
        var count = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else {
                throw .malformed(field(), "packet ends inside a variable byte integer")
            }
            count += 1
            value |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                if count > 1 && byte == 0 {
                    throw .malformed(field(), "variable byte integer not in its shortest form")
                }
                return value
            }
            if count == 4 {
                throw .malformed(field(), "variable byte integer longer than four bytes")
            }
            shift += 7
        }
    }

    @discardableResult
    mutating func writeMQTTVariableByteInteger(_ value: Int) -> Int {
        precondition(value >= 0 && value <= MQTTLimits.variableByteIntegerMax, "variable byte integer out of range")
        var remaining = value
        var written = 0
        repeat {
            var byte = UInt8(remaining & 0x7F)
            remaining >>= 7
            if remaining > 0 { byte |= 0x80 }
            writeInteger(byte)
            written += 1
        } while remaining > 0
        return written
    }

    // MARK: Strings and binary data

    /// A UTF-8 encoded string (§1.5.4): two-byte length, then well-formed UTF-8 without U+0000
    /// [MQTT-1.5.4-1, MQTT-1.5.4-2]. Swift's validator rejects overlong forms and surrogates.
    mutating func readMQTTString(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> String {
        let length = Int(try readMQTTUInt16(field()))
        return try readMQTTStringBytes(length: length, field: field).string
    }

    /// A topic name: a UTF-8 string, also reporting in the same pass over the bytes whether it
    /// holds a wildcard character ('+' or '#'), since this is on the PUBLISH hot path.
    mutating func readMQTTTopicString(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> (
        string: String, hasWildcard: Bool
    ) {
        let length = Int(try readMQTTUInt16(field()))
        return try readMQTTStringBytes(length: length, field: field)
    }

    private mutating func readMQTTStringBytes(
        length: Int, field: () -> String
    ) throws(MQTTDecodeError) -> (string: String, hasWildcard: Bool) {
        guard readableBytes >= length else {
            throw .malformed(field(), "string of \(length) bytes runs past the end of the packet")
        }
        if length == 0 { return ("", false) }
        let result: (String?, Bool, Bool) = withUnsafeReadableBytes { raw in
            let bytes = UnsafeBufferPointer(
                start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: length)
            var hasNull = false
            var hasWildcard = false
            for byte in bytes {
                // Every byte of a multi-byte sequence is >= 0x80, so these only match ASCII.
                if byte == 0 { hasNull = true }
                if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") { hasWildcard = true }
            }
            if hasNull { return (nil, true, hasWildcard) }
            return (validatedUTF8(bytes), false, hasWildcard)
        }
        moveReaderIndex(forwardBy: length)
        guard let string = result.0 else {
            if result.1 { throw .malformed(field(), "string contains U+0000") }
            throw .malformed(field(), "string is not well-formed UTF-8")
        }
        return (string, result.2)
    }

    /// Binary data (§1.5.6): two-byte length, then that many bytes.
    mutating func readMQTTBinary(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> [UInt8] {
        let length = Int(try readMQTTUInt16(field()))
        guard let bytes = readBytes(length: length) else {
            throw .malformed(field(), "binary data of \(length) bytes runs past the end of the packet")
        }
        return bytes
    }

    /// Binary data as a slice of this buffer (no copy), e.g. the will payload.
    mutating func readMQTTBinarySlice(_ field: @autoclosure () -> String) throws(MQTTDecodeError) -> ByteBuffer {
        let length = Int(try readMQTTUInt16(field()))
        guard let slice = readSlice(length: length) else {
            throw .malformed(field(), "binary data of \(length) bytes runs past the end of the packet")
        }
        return slice
    }

    mutating func writeMQTTString(_ string: String) {
        let length = string.utf8.count
        precondition(length <= MQTTLimits.stringLengthMax, "MQTT string longer than 65,535 bytes")
        writeInteger(UInt16(length), endianness: .big)
        writeString(string)
    }

    mutating func writeMQTTBinary(_ bytes: [UInt8]) {
        precondition(bytes.count <= MQTTLimits.stringLengthMax, "MQTT binary data longer than 65,535 bytes")
        writeInteger(UInt16(bytes.count), endianness: .big)
        writeBytes(bytes)
    }

    mutating func writeMQTTBinary(_ bytes: ByteBuffer) {
        precondition(bytes.readableBytes <= MQTTLimits.stringLengthMax, "MQTT binary data longer than 65,535 bytes")
        writeInteger(UInt16(bytes.readableBytes), endianness: .big)
        writeImmutableBuffer(bytes)
    }
}

/// Validates UTF-8 without repairing it: nil when the bytes are ill-formed.
@inline(__always)
private func validatedUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
    if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
        return String(validating: bytes, as: UTF8.self)
    }
    // Older Apple platforms: decoding repairs ill-formed input with U+FFFD, so a repaired
    // result differs from the input bytes.
    let string = String(decoding: bytes, as: UTF8.self)
    return string.utf8.elementsEqual(bytes) ? string : nil
}

/// Bounds of the wire format.
public enum MQTTLimits {
    /// The largest value of a four-byte variable byte integer (§1.5.5).
    public static let variableByteIntegerMax = 268_435_455
    /// Strings and binary data carry a two-byte length (§1.5.4, §1.5.6).
    public static let stringLengthMax = 65_535
    /// A fixed header is one byte plus at most four of remaining length (§2.1.4).
    public static let fixedHeaderLengthMax = 5
}

/// The number of bytes of `value` as a variable byte integer (§1.5.5).
@inline(__always)
func variableByteIntegerLength(_ value: Int) -> Int {
    switch value {
    case ..<128: 1
    case ..<16_384: 2
    case ..<2_097_152: 3
    default: 4
    }
}

/// The encoded length of a UTF-8 string field, length prefix included.
@inline(__always)
func mqttStringLength(_ string: String) -> Int { 2 + string.utf8.count }
