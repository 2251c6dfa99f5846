/// Canonical binary encoding (section 3): fixed-width big-endian integers, length-prefixed
/// arrays, one presence byte for optionals. Hand-written; never JSON or Codable.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8] = []
    public init() {}
    public init(capacity: Int) { bytes.reserveCapacity(capacity) }
    @inline(__always) public mutating func u8(_ v: UInt8) { bytes.append(v) }
    @inline(__always) public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xFF))
    }
    @inline(__always) public mutating func u32(_ v: UInt32) {
        for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    @inline(__always) public mutating func u64(_ v: UInt64) {
        for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }
    public mutating func digest(_ d: Digest) { u64(d.w0); u64(d.w1); u64(d.w2); u64(d.w3) }
    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    /// u32 length then bytes.
    public mutating func lengthPrefixed(_ b: [UInt8]) { u32(UInt32(b.count)); bytes.append(contentsOf: b) }
    public mutating func ref(_ r: BlockRef) { u64(r.round); u16(r.author); digest(r.digest) }
}

public struct DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    public var field: String
    public init(_ field: String) { self.field = field }
    public var description: String { "decode error at \(field)" }
}

public struct ByteReader {
    let bytes: [UInt8]
    public private(set) var offset: Int = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var remaining: Int { bytes.count - offset }
    public var atEnd: Bool { offset == bytes.count }

    mutating func need(_ k: Int, _ field: String) throws { if remaining < k { throw DecodeError(field) } }
    public mutating func u8(_ field: String) throws -> UInt8 {
        try need(1, field); defer { offset += 1 }; return bytes[offset]
    }
    public mutating func u16(_ field: String) throws -> UInt16 {
        try need(2, field); defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
    public mutating func u32(_ field: String) throws -> UInt32 {
        try need(4, field); var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4; return v
    }
    public mutating func u64(_ field: String) throws -> UInt64 {
        try need(8, field); var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += 8; return v
    }
    public mutating func digest(_ field: String) throws -> Digest {
        Digest(w0: try u64(field), w1: try u64(field), w2: try u64(field), w3: try u64(field))
    }
    public mutating func raw(_ k: Int, _ field: String) throws -> [UInt8] {
        try need(k, field); defer { offset += k }; return Array(bytes[offset..<offset + k])
    }
    public mutating func lengthPrefixed(max: Int, _ field: String) throws -> [UInt8] {
        let len = Int(try u32(field))
        if len > max { throw DecodeError(field + ".length") }
        return try raw(len, field)
    }
    public mutating func ref(_ field: String) throws -> BlockRef {
        BlockRef(round: try u64(field), author: try u16(field), digest: try digest(field))
    }
    public mutating func presence(_ field: String) throws -> Bool {
        switch try u8(field) {
        case 0: return false;
        case 1: return true;
        default: throw DecodeError(field + ".presence")
        }
    }
    public func expectEnd(_ field: String) throws { if !atEnd { throw DecodeError(field + ".trailing") } }
}

/// Block format v1: version ‖ header fields ‖ payload ‖ signature(64).
public enum BlockCodec {
    public static let version: UInt8 = 1
    public static let signatureBytes = 64
    public static let digestDomain: [UInt8] = Array("foxmq/block/v1".utf8)
    public static let genesisDomain: [UInt8] = Array("foxmq/genesis/v1".utf8)
    /// Bytes of a ref on the wire.
    public static let refBytes = 8 + 2 + 32

    public static func encodeHeader(_ b: Block) -> [UInt8] {
        var w = ByteWriter(capacity: 64 + b.parents.count * refBytes)
        w.u8(version)
        w.u64(b.epoch); w.u64(b.round); w.u16(b.author); w.u64(b.timestamp)
        w.u16(UInt16(clamping: b.parents.count))
        for p in b.parents { w.ref(p) }
        w.digest(b.payloadDigest)
        if let c = b.attestation {
            w.u8(1); w.u64(c.commitIndex); w.digest(c.runningHash); w.digest(c.stateDigest); w.u64(c.leaderRound)
        } else {
            w.u8(0)
        }
        return w.bytes
    }

    public static func encodePayload(_ payload: [Entry]) -> [UInt8] {
        var w = ByteWriter()
        encodePayload(payload, into: &w)
        return w.bytes
    }

    static func encodePayload(_ payload: [Entry], into w: inout ByteWriter) {
        w.u32(UInt32(payload.count))
        for e in payload {
            w.u16(e.id.origin); w.u64(e.id.incarnation); w.u64(e.id.seq); w.u8(e.kind); w.lengthPrefixed(e.body)
        }
    }

    public static func payloadDigest(_ payload: [Entry]) -> Digest { Digest.sha256(encodePayload(payload)) }

    public static func encode(_ b: Block) -> [UInt8] {
        precondition(b.signature.count == signatureBytes, "signature length")
        var w = ByteWriter()
        w.raw(encodeHeader(b))
        encodePayload(b.payload, into: &w)
        w.raw(b.signature)
        return w.bytes
    }

    /// Strict decoding: structure, limits, no trailing bytes, and re-encoding reproduces the input.
    /// Returns the block and its header digest.
    public static func decode(_ bytes: [UInt8], maxParents: Int, maxBlockBytes: Int, maxEntryBytes: Int) throws -> Block
    {
        if bytes.count > maxBlockBytes + 4096 + maxParents * refBytes { throw DecodeError("block.size") }
        var r = ByteReader(bytes)
        guard try r.u8("version") == version else { throw DecodeError("version") }
        let epoch = try r.u64("epoch"), round = try r.u64("round"), author = try r.u16("author")
        let ts = try r.u64("timestamp")
        let pc = Int(try r.u16("parents.count"))
        if pc > maxParents { throw DecodeError("parents.count") }
        var parents: [BlockRef] = []; parents.reserveCapacity(pc)
        for _ in 0..<pc { parents.append(try r.ref("parents")) }
        let pd = try r.digest("payloadDigest")
        var att: Checkpoint? = nil
        if try r.presence("attestation") {
            att = Checkpoint(
                commitIndex: try r.u64("attestation.k"), runningHash: try r.digest("attestation.runningHash"),
                stateDigest: try r.digest("attestation.stateDigest"), leaderRound: try r.u64("attestation.round"))
        }
        let count = Int(try r.u32("payload.count"))
        if count > maxBlockBytes / 23 { throw DecodeError("payload.count") }
        var payload: [Entry] = []; payload.reserveCapacity(count)
        for _ in 0..<count {
            let id = EntryID(
                origin: try r.u16("entry.origin"), incarnation: try r.u64("entry.incarnation"),
                seq: try r.u64("entry.seq"))
            let kind = try r.u8("entry.kind")
            let body = try r.lengthPrefixed(max: maxEntryBytes, "entry.body")
            payload.append(Entry(id: id, kind: kind, body: body))
        }
        let sig = try r.raw(signatureBytes, "signature")
        try r.expectEnd("block")
        let b = Block(
            epoch: epoch, round: round, author: author, timestamp: ts, parents: parents, payloadDigest: pd,
            attestation: att, payload: payload, signature: sig)
        if encode(b) != bytes { throw DecodeError("block.canonical") }
        return b
    }
}
