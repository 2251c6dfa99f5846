/// The little DER (X.690) the key files need: definite lengths, the universal types of SEC1,
/// PKCS#8 and SubjectPublicKeyInfo, and explicit context tags.
enum DER {
    static let integer: UInt8 = 0x02
    static let bitString: UInt8 = 0x03
    static let octetString: UInt8 = 0x04
    static let objectIdentifier: UInt8 = 0x06
    static let sequence: UInt8 = 0x30
    /// `[n]` EXPLICIT (constructed, context-specific).
    static func contextTag(_ number: UInt8) -> UInt8 { 0xA0 | number }

    /// The content of the OID 1.2.840.10045.2.1 (id-ecPublicKey, RFC 5480).
    static let ecPublicKeyOID: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    /// The content of the OID 1.2.840.10045.3.1.7 (prime256v1, also called secp256r1 and P-256).
    static let prime256v1OID: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]

    /// Why bytes are not the expected DER.
    struct ParseError: Error, Equatable {
        let reason: String
    }

    /// One element: tag, length (in the shortest form), content.
    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [tag]
        let count = content.count
        if count < 0x80 {
            out.append(UInt8(count))
        } else {
            var lengthBytes: [UInt8] = []
            var remaining = count
            while remaining > 0 {
                lengthBytes.insert(UInt8(remaining & 0xFF), at: 0)
                remaining >>= 8
            }
            out.append(0x80 | UInt8(lengthBytes.count))
            out += lengthBytes
        }
        return out + content
    }

    /// Reads elements one after the other from DER bytes.
    struct Reader {
        private let bytes: [UInt8]
        private var offset: Int
        private let end: Int

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            self.offset = 0
            self.end = bytes.count
        }

        var isAtEnd: Bool { offset == end }

        /// The tag of the next element, if any.
        var nextTag: UInt8? { offset < end ? bytes[offset] : nil }

        /// The content of the next element, which must have `tag`; `what` names it in errors.
        mutating func read(_ tag: UInt8, _ what: String) throws(ParseError) -> [UInt8] {
            guard offset < end else { throw ParseError(reason: "\(what) is missing") }
            guard bytes[offset] == tag else {
                throw ParseError(reason: "\(what): expected tag 0x\(hex(tag)), found 0x\(hex(bytes[offset]))")
            }
            var position = offset + 1
            guard position < end else { throw ParseError(reason: "\(what) is truncated") }
            let first = bytes[position]
            position += 1
            var length = 0
            if first < 0x80 {
                length = Int(first)
            } else {
                let lengthByteCount = Int(first & 0x7F)
                guard (1...3).contains(lengthByteCount), position + lengthByteCount <= end else {
                    throw ParseError(reason: "\(what) has an invalid length")
                }
                for _ in 0..<lengthByteCount {
                    length = length << 8 | Int(bytes[position])
                    position += 1
                }
                // DER: the shortest form only.
                guard length >= 0x80, length >> (8 * (lengthByteCount - 1)) != 0 else {
                    throw ParseError(reason: "\(what) has a non-minimal length (not DER)")
                }
            }
            guard length <= end - position else { throw ParseError(reason: "\(what) is truncated") }
            offset = position + length
            return Array(bytes[position..<position + length])
        }

        /// The content of the next element if it has `tag`, else nil (an absent OPTIONAL).
        mutating func readIfPresent(_ tag: UInt8, _ what: String) throws(ParseError) -> [UInt8]? {
            guard nextTag == tag else { return nil }
            return try read(tag, what)
        }

        /// Fails unless every byte was read.
        func finish(_ what: String) throws(ParseError) {
            guard isAtEnd else { throw ParseError(reason: "\(what) has \(end - offset) trailing bytes") }
        }
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return byte < 0x10 ? "0" + digits : digits
    }
}
