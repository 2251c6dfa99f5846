import Crypto
import NIOCore

/// One entry of the ordered log: its index, its ordered time and the event, chained to the
/// record before it.
///
/// Key: the index as 8 big-endian bytes (the log table sorts by it, appends go at the end).
/// Value: format version (1 byte), time in milliseconds (u64), the event (u32 length, bytes),
/// the chain hash (32 bytes) = SHA-256(previous chain hash, index, time, event bytes), and a
/// CRC-32C of everything before it. The CRC finds a damaged record; the chain finds a record
/// that is whole but not the one that was written there (a page from elsewhere, a replaced
/// file), and a gap.
public struct LogRecord: Sendable {
    public static let formatVersion: UInt8 = 1
    /// The chain hash before the first record of a log.
    public static let genesisChain = [UInt8](repeating: 0, count: 32)

    public var index: UInt64
    public var timeMillis: UInt64
    public var event: ByteBuffer
    public var chain: [UInt8]

    public static func key(_ index: UInt64) -> [UInt8] {
        withUnsafeBytes(of: index.bigEndian) { Array($0) }
    }

    public static func index(ofKey key: some Collection<UInt8>) -> UInt64? {
        guard key.count == 8 else { return nil }
        return key.reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func chainHash(previous: [UInt8], index: UInt64, timeMillis: UInt64, event: ByteBuffer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        withUnsafeBytes(of: index.bigEndian) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: timeMillis.bigEndian) { hasher.update(bufferPointer: $0) }
        event.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return Array(hasher.finalize())
    }

    /// Encodes the record that follows `previousChain`.
    public static func encode(
        index: UInt64, timeMillis: UInt64, event: ByteBuffer, previousChain: [UInt8]
    ) -> (value: ByteBuffer, chain: [UInt8]) {
        let chain = chainHash(previous: previousChain, index: index, timeMillis: timeMillis, event: event)
        var value = ByteBuffer()
        value.reserveCapacity(1 + 8 + 4 + event.readableBytes + 32 + 4)
        value.writeInteger(formatVersion)
        value.writeInteger(timeMillis)
        value.writeLengthPrefixed(event)
        value.writeBytes(chain)
        value.writeInteger(CRC32C.checksum(value))
        return (value, chain)
    }

    /// Decodes a record and checks its CRC; `previousChain`, when given, is checked too.
    public static func decode(
        key: some Collection<UInt8>, value: ByteBuffer, previousChain: [UInt8]?
    ) throws(RecordDecodeError) -> LogRecord {
        guard let index = index(ofKey: key) else { throw RecordDecodeError("log.key", "is not 8 bytes") }
        let field = "log[\(index)]"
        guard value.readableBytes >= 1 + 8 + 4 + 32 + 4 else {
            throw RecordDecodeError(field, "\(value.readableBytes) bytes is too short for a record")
        }
        let body = try CRC32C.verifiedBody(value, field)
        var reader = CanonicalReader(body)
        let version = try reader.integer(field + ".format", as: UInt8.self)
        guard version <= formatVersion else {
            throw RecordDecodeError(
                field, "format version \(version) is newer than this foxmq reads (\(formatVersion)); upgrade foxmq")
        }
        guard version == formatVersion else { throw RecordDecodeError(field, "format version \(version) is unknown") }
        let timeMillis = try reader.integer(field + ".time", as: UInt64.self)
        let event = try reader.bytes(field + ".event")
        guard let chain = reader.buffer.readBytes(length: 32) else {
            throw RecordDecodeError(field + ".chain", "ends before its 32 bytes")
        }
        try reader.expectEnd(field)
        if let previousChain {
            let expected = chainHash(previous: previousChain, index: index, timeMillis: timeMillis, event: event)
            guard expected == chain else {
                throw RecordDecodeError(field, "hash chain broken: the record does not follow the one before it")
            }
        }
        return LogRecord(index: index, timeMillis: timeMillis, event: event, chain: chain)
    }

    public func decodeEvent() throws(RecordDecodeError) -> BrokerEvent {
        do {
            return try BrokerEvent.decode(event)
        } catch {
            throw RecordDecodeError("log[\(index)].\(error.field)", error.detail)
        }
    }
}
