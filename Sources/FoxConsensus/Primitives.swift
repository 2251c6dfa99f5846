import Crypto

// MARK: - Saturating arithmetic (design section 12)

extension UInt64 {
    /// `self - other`, or 0 when `other > self`. Rounds, indices and timestamps never trap.
    @inline(__always)
    public func minusSaturating(_ other: UInt64) -> UInt64 { self > other ? self - other : 0 }

    /// `self + other`, or `UInt64.max` on overflow.
    @inline(__always)
    public func plusSaturating(_ other: UInt64) -> UInt64 {
        let (v, o) = addingReportingOverflow(other)
        return o ? .max : v
    }
}

// MARK: - Digest

/// A 32-byte SHA-256 digest, held as four big-endian words so that `<` is unsigned byte order.
public struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public static let zero = Digest(w0: 0, w1: 0, w2: 0, w3: 0)

    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    /// From exactly 32 bytes.
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 32, "a digest has 32 bytes")
        var words: [UInt64] = [0, 0, 0, 0]
        var i = 0
        for b in bytes { words[i / 8] = (words[i / 8] << 8) | UInt64(b); i += 1 }
        self.init(w0: words[0], w1: words[1], w2: words[2], w3: words[3])
    }

    public var bytes: [UInt8] {
        var out = [UInt8](); out.reserveCapacity(32)
        for w in [w0, w1, w2, w3] {
            for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: w >> UInt64(s))) }
        }
        return out
    }

    public static func < (a: Digest, b: Digest) -> Bool {
        if a.w0 != b.w0 { return a.w0 < b.w0 }
        if a.w1 != b.w1 { return a.w1 < b.w1 }
        if a.w2 != b.w2 { return a.w2 < b.w2 }
        return a.w3 < b.w3
    }

    public static func sha256(_ data: [UInt8]) -> Digest { Digest(bytes: Array(SHA256.hash(data: data))) }

    /// Short hex for logs.
    public var description: String {
        let hex = Array("0123456789abcdef")
        return String((0..<4).map { hex[Int((w0 >> UInt64(60 - $0 * 4)) & 0xF)] })
    }

    public var hex: String {
        let hex = Array("0123456789abcdef")
        return String(bytes.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0xF)]] })
    }
}

/// Incremental SHA-256 over canonical bytes.
public struct Hashing {
    var h = SHA256()
    public init() {}
    public mutating func update(_ bytes: [UInt8]) { h.update(data: bytes) }
    public mutating func update(_ d: Digest) { h.update(data: d.bytes) }
    public mutating func update(_ v: UInt64) {
        var w = ByteWriter(); w.u64(v); h.update(data: w.bytes)
    }
    public func finalize() -> Digest { Digest(bytes: Array(h.finalize())) }
}
