import Crypto
import Foundation
import FoxFiles

/// A node's secret key, `key_N.pem` in the original's format: a P-256 key as an unencrypted
/// SEC1 `ECPrivateKey` (RFC 5915) in an `EC PRIVATE KEY` PEM block, what
/// `openssl ecparam -name prime256v1 -genkey -noout` writes:
///
///     ECPrivateKey ::= SEQUENCE {
///         version        INTEGER { ecPrivkeyVer1(1) },
///         privateKey     OCTET STRING,                    -- 32 bytes
///         parameters [0] ECParameters OPTIONAL,           -- the OID prime256v1
///         publicKey  [1] BIT STRING OPTIONAL }            -- the uncompressed point
///
/// swift-crypto only writes PKCS#8 (`PRIVATE KEY`), so the SEC1 DER is built here. Reading
/// accepts SEC1 (with or without the optional fields, and after an `EC PARAMETERS` block) and
/// unencrypted PKCS#8; the public key, when the file holds one, must be the private key's.
// Unchecked: the key is an immutable value; swift-crypto does not mark it Sendable.
public struct NodeKey: @unchecked Sendable {
    public static let sec1PEMLabel = "EC PRIVATE KEY"
    public static let pkcs8PEMLabel = "PRIVATE KEY"
    /// Mode of a written key file: the owner alone reads a secret.
    public static let fileMode: UInt32 = 0o600

    public let privateKey: P256.Signing.PrivateKey
    /// The file the key was read from or written to, named in errors.
    public let path: String?

    public init(privateKey: P256.Signing.PrivateKey, path: String? = nil) {
        self.privateKey = privateKey
        self.path = path
    }

    /// A new random key.
    public static func generate() -> NodeKey {
        NodeKey(privateKey: P256.Signing.PrivateKey(compactRepresentable: false))
    }

    /// `key_N.pem`, the name `foxmq address-book` gives the key of entry N.
    public static func fileName(bookPosition: Int) -> String {
        "key_\(bookPosition).pem"
    }

    /// SubjectPublicKeyInfo DER of the public key, as the address book holds it.
    public var publicKeyDER: [UInt8] { NodePublicKey.der(of: privateKey.publicKey) }

    /// The SEC1 `ECPrivateKey` DER, with both optional fields (as OpenSSL writes it).
    public var sec1DER: [UInt8] { Self.sec1DER(of: privateKey) }

    /// The content of `key_N.pem`.
    public var pemRepresentation: String { PEM.encode(label: Self.sec1PEMLabel, der: sec1DER) }

    static func sec1DER(of key: P256.Signing.PrivateKey) -> [UInt8] {
        let scalar = Array(key.rawRepresentation)
        precondition(scalar.count == 32, "a P-256 private key is 32 bytes")
        let point = Array(key.publicKey.x963Representation)
        precondition(point.count == 65 && point[0] == 0x04, "an uncompressed P-256 point is 65 bytes")
        let content =
            DER.element(DER.integer, [1])
            + DER.element(DER.octetString, scalar)
            + DER.element(DER.contextTag(0), DER.element(DER.objectIdentifier, DER.prime256v1OID))
            + DER.element(DER.contextTag(1), DER.element(DER.bitString, [0] + point))
        return DER.element(DER.sequence, content)
    }

    /// Reads the key file at `path`.
    public static func read(from path: String) throws(NodeKeyError) -> NodeKey {
        let bytes: [UInt8]?
        do {
            bytes = try Files.readIfExists(path)
        } catch {
            throw NodeKeyError(path: path, problem: .unreadable(errno: error.errno, message: error.message))
        }
        guard let bytes else { throw NodeKeyError(path: path, problem: .missing) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw NodeKeyError(path: path, problem: .notPEM(reason: "the file is not text (UTF-8)"))
        }
        return try parse(pem: text, path: path)
    }

    /// Parses the PEM text of a key file; `path` names it in errors.
    public static func parse(pem text: String, path: String) throws(NodeKeyError) -> NodeKey {
        let blocks: [PEM.Block]
        do {
            blocks = try PEM.blocks(in: text)
        } catch {
            throw NodeKeyError(path: path, problem: .notPEM(reason: error.reason))
        }
        // OpenSSL may put an `EC PARAMETERS` block before the key; it says nothing the key
        // does not.
        let keys = blocks.filter { $0.label != "EC PARAMETERS" }
        guard let block = keys.first else {
            throw NodeKeyError(path: path, problem: .notPEM(reason: "no -----BEGIN EC PRIVATE KEY----- line"))
        }
        guard keys.count == 1 else {
            throw NodeKeyError(
                path: path, problem: .notPEM(reason: "\(keys.count) key blocks where one EC PRIVATE KEY is expected"))
        }
        if block.label == "ENCRYPTED PRIVATE KEY" || block.headers.contains(where: { $0.contains("ENCRYPTED") }) {
            throw NodeKeyError(path: path, problem: .encrypted)
        }
        let privateKey: P256.Signing.PrivateKey
        do {
            switch block.label {
            case sec1PEMLabel: privateKey = try parseSEC1(block.der)
            case pkcs8PEMLabel: privateKey = try parsePKCS8(block.der)
            default: throw NodeKeyError(path: path, problem: .wrongPEMType(label: block.label))
            }
        } catch let error as NodeKeyError {
            throw error
        } catch let error as DER.ParseError {
            throw NodeKeyError(path: path, problem: .invalidKey(reason: error.reason))
        } catch {
            throw NodeKeyError(path: path, problem: .invalidKey(reason: String(describing: error)))
        }
        return NodeKey(privateKey: privateKey, path: path)
    }

    /// Writes `key_N.pem` at `path` with mode 0600; an existing file is replaced only if
    /// `replace`.
    @discardableResult
    public func write(to path: String, replace: Bool) throws(NodeKeyError) -> NodeKey {
        do {
            try Files.writeFile(Array(pemRepresentation.utf8), to: path, mode: Self.fileMode, replace: replace)
        } catch {
            if error.alreadyExists { throw NodeKeyError(path: path, problem: .exists) }
            throw NodeKeyError(path: path, problem: .unwritable(errno: error.errno, message: error.message))
        }
        return NodeKey(privateKey: privateKey, path: path)
    }

    static func parseSEC1(_ der: [UInt8]) throws(DER.ParseError) -> P256.Signing.PrivateKey {
        var outer = DER.Reader(der)
        var fields = DER.Reader(try outer.read(DER.sequence, "ECPrivateKey"))
        try outer.finish("ECPrivateKey")
        guard try fields.read(DER.integer, "the ECPrivateKey version") == [1] else {
            throw DER.ParseError(reason: "the ECPrivateKey version is not 1")
        }
        let scalar = try fields.read(DER.octetString, "the private key")
        // RFC 5915 fixes 32 bytes; some writers drop leading zero bytes.
        guard (1...32).contains(scalar.count) else {
            throw DER.ParseError(reason: "the private key is \(scalar.count) bytes, not the 32 of P-256")
        }
        if let parameters = try fields.readIfPresent(DER.contextTag(0), "the curve parameters") {
            var reader = DER.Reader(parameters)
            let curve = try reader.read(DER.objectIdentifier, "the curve")
            try reader.finish("the curve parameters")
            guard curve == DER.prime256v1OID else {
                throw DER.ParseError(reason: "an EC key on another curve than P-256 (prime256v1)")
            }
        }
        let embeddedPoint = try fields.readIfPresent(DER.contextTag(1), "the public key")
        try fields.finish("ECPrivateKey")

        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(
                rawRepresentation: [UInt8](repeating: 0, count: 32 - scalar.count) + scalar)
        } catch {
            throw DER.ParseError(reason: "the private key is not a valid P-256 scalar")
        }
        if let embeddedPoint {
            var reader = DER.Reader(embeddedPoint)
            let bitString = try reader.read(DER.bitString, "the public key bit string")
            try reader.finish("the public key")
            guard bitString.first == 0, Array(bitString.dropFirst()) == Array(key.publicKey.x963Representation) else {
                throw DER.ParseError(reason: "the public key in the file is not the private key's")
            }
        }
        return key
    }

    /// PKCS#8 `PrivateKeyInfo` (RFC 5208; RFC 5958 version 2 too) holding a SEC1 key.
    static func parsePKCS8(_ der: [UInt8]) throws(DER.ParseError) -> P256.Signing.PrivateKey {
        var outer = DER.Reader(der)
        var fields = DER.Reader(try outer.read(DER.sequence, "PrivateKeyInfo"))
        try outer.finish("PrivateKeyInfo")
        let version = try fields.read(DER.integer, "the PrivateKeyInfo version")
        guard version == [0] || version == [1] else {
            throw DER.ParseError(reason: "the PrivateKeyInfo version is not 0 or 1")
        }
        var algorithm = DER.Reader(try fields.read(DER.sequence, "the algorithm identifier"))
        guard try algorithm.read(DER.objectIdentifier, "the algorithm") == DER.ecPublicKeyOID else {
            throw DER.ParseError(reason: "not an EC private key (the algorithm is not id-ecPublicKey)")
        }
        guard try algorithm.read(DER.objectIdentifier, "the curve") == DER.prime256v1OID else {
            throw DER.ParseError(reason: "an EC key on another curve than P-256 (prime256v1)")
        }
        try algorithm.finish("the algorithm identifier")
        // Attributes and the public key of version 2 may follow; the SEC1 key is what counts.
        return try parseSEC1(try fields.read(DER.octetString, "the private key"))
    }
}

/// A problem reading, checking or writing a node's key file (`key_N.pem`).
///
/// `description` starts with the file's path, so start-up can print it as is and stop.
public struct NodeKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        /// There is no such file.
        case missing
        /// The file exists but could not be read.
        case unreadable(errno: Int32, message: String)
        /// The file is not PEM, or holds no key block (or several).
        case notPEM(reason: String)
        /// The key is encrypted (FoxMQ's keys are not).
        case encrypted
        /// A PEM block of another type (e.g. `RSA PRIVATE KEY`, `PUBLIC KEY`).
        case wrongPEMType(label: String)
        /// The block's DER is not a P-256 key, or its public key is not the private key's.
        case invalidKey(reason: String)
        /// The key's public key is in no entry of the address book at `bookPath`.
        case notInAddressBook(bookPath: String)
        /// The file exists and replacing it was not asked for.
        case exists
        /// The file (or a temporary file beside it) could not be written.
        case unwritable(errno: Int32, message: String)
    }

    /// The key file concerned.
    public let path: String
    public let problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var description: String {
        switch problem {
        case .missing:
            return "\(path): no such key file (each node needs its own key_N.pem, written with the address book by "
                + "`foxmq address-book from-range` or `from-list`; choose it with --secret-key-file)"
        case .unreadable(_, let message):
            return "\(path): cannot read the key file: \(message)"
        case .notPEM(let reason):
            return "\(path): not a PEM key file: \(reason)"
        case .encrypted:
            return "\(path): the key is encrypted; FoxMQ reads unencrypted EC PRIVATE KEY files"
        case .wrongPEMType(let label):
            return "\(path): the PEM block is \(label), not EC PRIVATE KEY (a P-256 key)"
        case .invalidKey(let reason):
            return "\(path): not a P-256 private key: \(reason)"
        case .notInAddressBook(let bookPath):
            return "the key in \(path) is not in \(bookPath) (no entry has its public key); give this node's own "
                + "key with --secret-key-file"
        case .exists:
            return "\(path): the file exists (refusing to overwrite it)"
        case .unwritable(_, let message):
            return "\(path): cannot write the key file: \(message)"
        }
    }
}
