import NIOCore

/// One member as a peer's address book describes it, carried in the hello so that a digest
/// mismatch can be explained entry by entry (the digest alone only says that the books differ).
public struct ClusterBookEntry: Hashable, Sendable {
    /// `host:port` as written in the book.
    public var address: String
    /// SubjectPublicKeyInfo DER of the member's key.
    public var publicKeyDER: [UInt8]

    public init(address: String, publicKeyDER: [UInt8]) {
        self.address = address
        self.publicKeyDER = publicKeyDER
    }
}

/// The two handshake messages, as values. Both start with the protocol version byte, then a
/// type byte, so that a peer speaking another version is recognised before anything else is
/// parsed.
///
///     Hello: version u8, type 0x01, digest [32], sender index u16, nonce [32],
///            entry count u16, entries { address length u16, address UTF-8,
///                                       key length u16, key DER }
///     Proof: version u8, type 0x02, signature [64] (ECDSA P-256 over SHA-256, raw r ‖ s)
///
/// All integers are big-endian.
enum ClusterHandshakeMessage: Equatable {
    case hello(Hello)
    case proof(signature: [UInt8])

    static let version: UInt8 = 1
    static let digestBytes = 32
    static let nonceBytes = 32
    static let signatureBytes = 64
    static let entryCountMax = Int(UInt16.max)

    struct Hello: Equatable {
        var digest: [UInt8]
        var index: UInt16
        var nonce: [UInt8]
        var entries: [ClusterBookEntry]
    }

    private enum Kind: UInt8 {
        case hello = 1
        case proof = 2
    }

    /// Why a handshake frame could not be read. `field` names what failed.
    enum DecodeError: Error, Equatable, CustomStringConvertible {
        case version(UInt8)
        case malformed(field: String)

        var description: String {
            switch self {
            case .version(let version):
                "protocol version \(version), this node speaks \(ClusterHandshakeMessage.version)"
            case .malformed(let field): "malformed handshake frame (\(field))"
            }
        }
    }

    func encode() -> [UInt8] {
        var bytes: [UInt8] = [Self.version]
        switch self {
        case .hello(let hello):
            precondition(hello.digest.count == Self.digestBytes && hello.nonce.count == Self.nonceBytes)
            precondition(hello.entries.count <= Self.entryCountMax)
            bytes.append(Kind.hello.rawValue)
            bytes += hello.digest
            bytes.appendBigEndian(hello.index)
            bytes += hello.nonce
            bytes.appendBigEndian(UInt16(hello.entries.count))
            for entry in hello.entries {
                let address = Array(entry.address.utf8)
                precondition(address.count <= UInt16.max && entry.publicKeyDER.count <= UInt16.max)
                bytes.appendBigEndian(UInt16(address.count))
                bytes += address
                bytes.appendBigEndian(UInt16(entry.publicKeyDER.count))
                bytes += entry.publicKeyDER
            }
        case .proof(let signature):
            precondition(signature.count == Self.signatureBytes)
            bytes.append(Kind.proof.rawValue)
            bytes += signature
        }
        return bytes
    }

    static func decode(_ frame: ByteBuffer) throws(DecodeError) -> ClusterHandshakeMessage {
        var frame = frame
        guard let version = frame.readInteger(as: UInt8.self) else { throw .malformed(field: "version") }
        guard version == Self.version else { throw .version(version) }
        guard let rawKind = frame.readInteger(as: UInt8.self), let kind = Kind(rawValue: rawKind) else {
            throw .malformed(field: "type")
        }
        let message: ClusterHandshakeMessage
        switch kind {
        case .hello:
            let digest = try frame.readFixed(Self.digestBytes, field: "digest")
            guard let index = frame.readInteger(as: UInt16.self) else { throw .malformed(field: "index") }
            let nonce = try frame.readFixed(Self.nonceBytes, field: "nonce")
            guard let count = frame.readInteger(as: UInt16.self) else { throw .malformed(field: "entry count") }
            var entries: [ClusterBookEntry] = []
            entries.reserveCapacity(Int(count))
            for position in 0..<Int(count) {
                guard let addressLength = frame.readInteger(as: UInt16.self),
                    let address = frame.readString(length: Int(addressLength))
                else { throw .malformed(field: "entry \(position) address") }
                guard let keyLength = frame.readInteger(as: UInt16.self),
                    let key = frame.readBytes(length: Int(keyLength))
                else { throw .malformed(field: "entry \(position) key") }
                entries.append(ClusterBookEntry(address: address, publicKeyDER: key))
            }
            message = .hello(Hello(digest: digest, index: index, nonce: nonce, entries: entries))
        case .proof:
            message = .proof(signature: try frame.readFixed(Self.signatureBytes, field: "signature"))
        }
        guard frame.readableBytes == 0 else { throw .malformed(field: "trailing bytes") }
        return message
    }
}

extension [UInt8] {
    mutating func appendBigEndian(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xFF))
    }
}

extension ByteBuffer {
    fileprivate mutating func readFixed(
        _ count: Int, field: String
    ) throws(ClusterHandshakeMessage.DecodeError) -> [UInt8] {
        guard let bytes = readBytes(length: count) else { throw .malformed(field: field) }
        return bytes
    }
}
