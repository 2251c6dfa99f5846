import Crypto
import Foundation

/// A node's public key as the address book holds it: the SubjectPublicKeyInfo (RFC 5280,
/// RFC 5480) of a P-256 key with an uncompressed point, in a `PUBLIC KEY` PEM block.
///
/// Reading is strict: the algorithm must be id-ecPublicKey on prime256v1, the point must be on
/// the curve, and the DER must be exactly what swift-crypto writes for that key (91 bytes), so
/// that one key has one DER and the committee order (bytewise on the DER) is the same on
/// every node.
enum NodePublicKey {
    static let pemLabel = "PUBLIC KEY"

    /// The SubjectPublicKeyInfo DER of `key`.
    static func der(of key: P256.Signing.PublicKey) -> [UInt8] {
        Array(key.derRepresentation)
    }

    /// The key of the SubjectPublicKeyInfo `der`.
    static func parse(der: [UInt8]) throws(DER.ParseError) -> P256.Signing.PublicKey {
        var outer = DER.Reader(der)
        var info = DER.Reader(try outer.read(DER.sequence, "SubjectPublicKeyInfo"))
        try outer.finish("SubjectPublicKeyInfo")
        var algorithm = DER.Reader(try info.read(DER.sequence, "the algorithm identifier"))
        guard try algorithm.read(DER.objectIdentifier, "the algorithm") == DER.ecPublicKeyOID else {
            throw DER.ParseError(reason: "not an EC public key (the algorithm is not id-ecPublicKey)")
        }
        guard try algorithm.read(DER.objectIdentifier, "the curve") == DER.prime256v1OID else {
            throw DER.ParseError(reason: "an EC key on another curve than P-256 (prime256v1)")
        }
        try algorithm.finish("the algorithm identifier")
        let bitString = try info.read(DER.bitString, "the public key bit string")
        try info.finish("SubjectPublicKeyInfo")
        guard bitString.first == 0 else { throw DER.ParseError(reason: "the public key bit string has unused bits") }
        let point = bitString.dropFirst()
        guard point.count == 65, point.first == 0x04 else {
            throw DER.ParseError(reason: "the public key is not an uncompressed P-256 point (65 bytes, 04 first)")
        }
        let key: P256.Signing.PublicKey
        do {
            key = try P256.Signing.PublicKey(x963Representation: point)
        } catch {
            throw DER.ParseError(reason: "the public key is not a point of P-256")
        }
        guard der == Self.der(of: key) else {
            throw DER.ParseError(reason: "the SubjectPublicKeyInfo is not in its canonical DER form")
        }
        return key
    }

    /// The SubjectPublicKeyInfo DER of the one `PUBLIC KEY` block of `pem`.
    static func parse(pem: String) throws(DER.ParseError) -> [UInt8] {
        let blocks: [PEM.Block]
        do {
            blocks = try PEM.blocks(in: pem)
        } catch {
            throw DER.ParseError(reason: "not PEM: \(error.reason)")
        }
        guard blocks.count == 1, let block = blocks.first else {
            throw DER.ParseError(
                reason: blocks.isEmpty
                    ? "not PEM: no -----BEGIN PUBLIC KEY----- line"
                    : "\(blocks.count) PEM blocks where one PUBLIC KEY is expected")
        }
        guard block.label == pemLabel else {
            throw DER.ParseError(reason: "the PEM block is \(block.label), not PUBLIC KEY")
        }
        _ = try parse(der: block.der)
        return block.der
    }

    /// `der` as a `PUBLIC KEY` PEM block (ending with a newline).
    static func pem(der: [UInt8]) -> String {
        PEM.encode(label: pemLabel, der: der)
    }

    /// A short name of a key for logs and messages: the first 8 bytes of the SHA-256 of its
    /// SubjectPublicKeyInfo DER, in hex.
    static func fingerprint(der: [UInt8]) -> String {
        SHA256.hash(data: der).prefix(8).map { DER.hex($0).lowercased() }.joined()
    }
}
