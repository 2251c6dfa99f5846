/// The parameters of an Argon2 password hash in PHC string format, as written by
/// libargon2, the Rust `argon2` crate and argon2-cffi:
///
///     $argon2id$v=19$m=19456,t=2,p=1$<salt, unpadded base64>$<hash, unpadded base64>
///
/// Parsing is structural only (no hash is computed): it checks the shape that
/// libargon2's own decoder accepts and the parameter ranges libargon2 allows, so a
/// users file with a mangled hash is rejected at load time instead of silently
/// refusing every login.
public struct Argon2PHC: Sendable, Equatable {
    public enum Variant: String, Sendable, Equatable {
        case argon2d, argon2i, argon2id
    }

    public let variant: Variant
    /// 0x13 (19) for Argon2 1.3, 0x10 (16) for 1.0 (also when the `v=` field is absent).
    public let version: UInt32
    /// Memory cost in KiB (`m=`).
    public let memoryKiB: UInt32
    /// Number of passes (`t=`).
    public let iterations: UInt32
    /// Lanes (`p=`).
    public let parallelism: UInt32
    /// Decoded salt length in bytes.
    public let saltLength: Int
    /// Decoded hash length in bytes.
    public let hashLength: Int

    /// Parses `string`; the failure describes the first problem found.
    public static func parse(_ string: String) -> Result<Argon2PHC, Argon2PHCFormatError> {
        guard string.hasPrefix("$") else {
            return .failure(.init("does not start with '$'"))
        }
        var fields = string.split(separator: "$", omittingEmptySubsequences: false).dropFirst()
        guard let variantField = fields.popFirst(), let variant = Variant(rawValue: String(variantField)) else {
            return .failure(.init("not an argon2 hash (expected $argon2id$, $argon2i$ or $argon2d$)"))
        }

        var version: UInt32 = 0x10
        if let field = fields.first, field.hasPrefix("v=") {
            fields = fields.dropFirst()
            guard let v = decimal(field.dropFirst(2)), v == 0x10 || v == 0x13 else {
                return .failure(.init("unsupported version '\(field)' (expected v=19 or v=16)"))
            }
            version = v
        }

        guard let paramField = fields.popFirst() else {
            return .failure(.init("missing parameters (m=...,t=...,p=...)"))
        }
        let params = paramField.split(separator: ",", omittingEmptySubsequences: false)
        guard params.count == 3,
            params[0].hasPrefix("m="), params[1].hasPrefix("t="), params[2].hasPrefix("p="),
            let m = decimal(params[0].dropFirst(2)),
            let t = decimal(params[1].dropFirst(2)),
            let p = decimal(params[2].dropFirst(2))
        else {
            return .failure(.init("malformed parameters '\(paramField)' (expected m=<KiB>,t=<passes>,p=<lanes>)"))
        }
        guard t >= 1 else { return .failure(.init("t must be at least 1")) }
        guard p >= 1, p <= 0xFF_FFFF else { return .failure(.init("p must be between 1 and 16777215")) }
        guard UInt64(m) >= 8 * UInt64(p) else { return .failure(.init("m must be at least 8 * p")) }

        guard let saltField = fields.popFirst(), let hashField = fields.popFirst() else {
            return .failure(.init("missing salt or hash"))
        }
        guard fields.isEmpty else { return .failure(.init("unexpected fields after the hash")) }
        guard let saltLength = base64DecodedLength(saltField) else {
            return .failure(.init("salt is not unpadded base64"))
        }
        guard saltLength >= 8 else { return .failure(.init("salt shorter than 8 bytes")) }
        guard let hashLength = base64DecodedLength(hashField) else {
            return .failure(.init("hash is not unpadded base64"))
        }
        guard hashLength >= 4 else { return .failure(.init("hash shorter than 4 bytes")) }

        return .success(
            Argon2PHC(
                variant: variant, version: version, memoryKiB: m, iterations: t, parallelism: p,
                saltLength: saltLength, hashLength: hashLength))
    }

    /// A decimal UInt32 without sign or leading zeros (libargon2's decoder rule).
    private static func decimal(_ s: Substring) -> UInt32? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        if s.count > 1 && s.first == "0" { return nil }
        return UInt32(s)
    }

    /// Decoded length of unpadded standard base64, or nil if `s` is not that.
    private static func base64DecodedLength(_ s: Substring) -> Int? {
        let isBase64 = s.utf8.allSatisfy { c in
            (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "+")
                || c == UInt8(ascii: "/")
        }
        let n = s.utf8.count
        guard isBase64, n % 4 != 1 else { return nil }
        return n * 3 / 4
    }
}
