import Crypto
import Foundation

/// Signs block digests for one author. Randomness (ECDSA nonces) lives only behind this seam.
public protocol BlockSigner: Sendable {
    /// 64 bytes over the block digest.
    func sign(_ digest: Digest) -> [UInt8]
}

/// Verifies a block signature for the committee member `author`.
public protocol SignatureVerifier: Sendable {
    func verify(_ signature: [UInt8], digest: Digest, author: UInt16) -> Bool
}

/// The domain tag matters: the node's P-256 key may also be its cluster TLS identity (section 3).
public enum SignatureDomain {
    public static let tag: [UInt8] = Array("foxmq/block-signature/v1".utf8)
    static func message(_ d: Digest) -> [UInt8] { tag + d.bytes }
}

/// The address-book P-256 key (ECDSA over SHA-256, raw r‖s signature).
public struct P256BlockSigner: BlockSigner, @unchecked Sendable {
    // The key is an immutable value; swift-crypto does not mark it Sendable.
    let key: P256.Signing.PrivateKey
    public init(key: P256.Signing.PrivateKey) { self.key = key }
    public func sign(_ digest: Digest) -> [UInt8] {
        // Signing fails only on a broken key or RNG: a programmer/platform error.
        do {
            return Array(try key.signature(for: SignatureDomain.message(digest)).rawRepresentation)
        } catch {
            preconditionFailure("P-256 signing failed: \(error)")
        }
    }
}

public struct P256SignatureVerifier: SignatureVerifier, @unchecked Sendable {
    let keys: [P256.Signing.PublicKey]
    /// `keys[i]` is the key of author i (the committee's sorted order).
    public init(keys: [P256.Signing.PublicKey]) { self.keys = keys }
    public init(committee: Committee) throws {
        self.keys = try committee.publicKeys.map { try P256.Signing.PublicKey(derRepresentation: $0) }
    }
    public func verify(_ signature: [UInt8], digest: Digest, author: UInt16) -> Bool {
        guard Int(author) < keys.count, signature.count == 64,
            let s = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
        else { return false }
        return keys[Int(author)].isValidSignature(s, for: SignatureDomain.message(digest))
    }
}
