import Crypto
import Foundation
import FoxCluster
import Testing

/// `key_N.pem`: SEC1 `EC PRIVATE KEY` exactly as OpenSSL writes it, read back from SEC1 and
/// PKCS#8, written with mode 0600, and each kind of bad file refused with its own problem.
@Suite struct AddressBookNodeKeyTests {
    /// The SEC1 PEM of a key OpenSSL made is reproduced byte for byte from the parsed key:
    /// same DER fields (version 1, 32-byte scalar, [0] prime256v1, [1] the point), same
    /// base64 lines.
    @Test func writesOpenSSLsSEC1ByteForByte() throws {
        let key = try NodeKey.parse(pem: AddressBookFixtures.privateKeySEC1, path: "key_0.pem")
        #expect(key.pemRepresentation == AddressBookFixtures.privateKeySEC1)
        #expect(key.path == "key_0.pem")
        #expect(
            key.publicKeyDER
                == Array(
                    try P256.Signing.PublicKey(pemRepresentation: AddressBookFixtures.publicKeys[0]).derRepresentation))

        // swift-crypto's own reader agrees on the scalar.
        let reference = try P256.Signing.PrivateKey(pemRepresentation: AddressBookFixtures.privateKeySEC1)
        #expect(key.privateKey.rawRepresentation == reference.rawRepresentation)
    }

    /// The same key as PKCS#8 (`PRIVATE KEY`) reads as the same key.
    @Test func readsPKCS8() throws {
        let sec1 = try NodeKey.parse(pem: AddressBookFixtures.privateKeySEC1, path: "a.pem")
        let pkcs8 = try NodeKey.parse(pem: AddressBookFixtures.privateKeyPKCS8, path: "b.pem")
        #expect(pkcs8.privateKey.rawRepresentation == sec1.privateKey.rawRepresentation)
        #expect(pkcs8.pemRepresentation == AddressBookFixtures.privateKeySEC1)
    }

    /// A new key goes to disk with mode 0600 as SEC1 (121 bytes of DER in the documented
    /// layout) and reads back as the same key; an existing file is replaced only when asked.
    @Test func generatedKeysRoundTripThroughAFile() throws {
        let directory = try AddressBookScratchDirectory()
        defer { directory.remove() }
        let key = NodeKey.generate()
        let path = directory.file("key_0.pem")
        let written = try key.write(to: path, replace: false)
        #expect(written.path == path)
        #expect(try directory.permissions("key_0.pem") == 0o600)

        let text = try directory.read("key_0.pem")
        #expect(text.hasPrefix("-----BEGIN EC PRIVATE KEY-----\n"))
        #expect(text.hasSuffix("\n-----END EC PRIVATE KEY-----\n"))
        let der = key.sec1DER
        #expect(der.count == 121)
        #expect(Array(der.prefix(7)) == [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20])
        #expect(Array(der[7..<39]) == Array(key.privateKey.rawRepresentation))
        #expect(Array(der[39..<51]) == [0xA0, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07])
        #expect(Array(der[51..<56]) == [0xA1, 0x44, 0x03, 0x42, 0x00])
        #expect(Array(der[56...]) == Array(key.privateKey.publicKey.x963Representation))

        let read = try NodeKey.read(from: path)
        #expect(read.privateKey.rawRepresentation == key.privateKey.rawRepresentation)
        #expect(read.publicKeyDER == key.publicKeyDER)

        let other = NodeKey.generate()
        #expect(throws: NodeKeyError(path: path, problem: .exists)) { try other.write(to: path, replace: false) }
        #expect(try NodeKey.read(from: path).publicKeyDER == key.publicKeyDER)
        try other.write(to: path, replace: true)
        #expect(try NodeKey.read(from: path).publicKeyDER == other.publicKeyDER)
        #expect(try directory.permissions("key_0.pem") == 0o600)
    }

    /// What `openssl ecparam -genkey` (without -noout) writes: an EC PARAMETERS block first.
    /// Also CRLF line ends and text around the block, which OpenSSL accepts.
    @Test func readsOpenSSLVariants() throws {
        let withParameters =
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
            + AddressBookFixtures.privateKeySEC1
        let crlf = "Key of node 0\r\n" + AddressBookFixtures.privateKeySEC1.replacingOccurrences(of: "\n", with: "\r\n")
        for text in [withParameters, crlf] {
            let key = try NodeKey.parse(pem: text, path: "k.pem")
            #expect(key.pemRepresentation == AddressBookFixtures.privateKeySEC1)
        }
    }

    /// Each kind of bad key file is refused with its own problem, naming the file.
    @Test func badKeyFilesAreRefused() throws {
        func problem(_ text: String) throws -> NodeKeyError.Problem {
            let error = try #require(throws: NodeKeyError.self) { try NodeKey.parse(pem: text, path: "k.pem") }
            #expect(error.path == "k.pem")
            #expect(error.description.hasPrefix("k.pem: "))
            return error.problem
        }
        #expect(try problem("not a key") == .notPEM(reason: "no -----BEGIN EC PRIVATE KEY----- line"))
        #expect(try problem(AddressBookFixtures.publicKeys[0]) == .wrongPEMType(label: "PUBLIC KEY"))
        #expect(
            try problem(AddressBookFixtures.privateKeySEC1 + AddressBookFixtures.privateKeyPKCS8)
                == .notPEM(reason: "2 key blocks where one EC PRIVATE KEY is expected"))

        let encrypted = AddressBookFixtures.privateKeySEC1.replacingOccurrences(
            of: "KEY-----\n", with: "KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n",
            options: [], range: nil)
        #expect(try problem(encrypted) == .encrypted)
        #expect(
            try problem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
                == .encrypted)

        guard case .invalidKey(let curve) = try problem(AddressBookFixtures.secp256k1PrivateKey) else {
            Issue.record("a secp256k1 key must be an invalid key")
            return
        }
        #expect(curve.contains("another curve than P-256"))

        // A SEC1 file whose public key is another key's.
        let key = NodeKey.generate()
        var der = key.sec1DER
        der.replaceSubrange(56..., with: Array(NodeKey.generate().privateKey.publicKey.x963Representation))
        let mismatched = pem("EC PRIVATE KEY", der)
        guard case .invalidKey(let mismatch) = try problem(mismatched) else {
            Issue.record("a mismatched public key must be an invalid key")
            return
        }
        #expect(mismatch.contains("not the private key's"))

        // Truncated DER, and trailing bytes.
        guard case .invalidKey(let truncated) = try problem(pem("EC PRIVATE KEY", Array(key.sec1DER.dropLast(3))))
        else {
            Issue.record("truncated DER must be an invalid key")
            return
        }
        #expect(truncated.contains("truncated"))
        guard case .invalidKey(let trailing) = try problem(pem("EC PRIVATE KEY", key.sec1DER + [0])) else {
            Issue.record("trailing bytes must be an invalid key")
            return
        }
        #expect(trailing.contains("trailing"))

        // A SEC1 key without its optional fields is fine.
        let minimal = [0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20] + Array(key.privateKey.rawRepresentation)
        #expect(try NodeKey.parse(pem: pem("EC PRIVATE KEY", minimal), path: "k.pem").publicKeyDER == key.publicKeyDER)
    }

    /// A missing file and a directory are told apart from a bad key.
    @Test func missingAndUnreadableFiles() throws {
        let directory = try AddressBookScratchDirectory()
        defer { directory.remove() }
        let missing = try #require(throws: NodeKeyError.self) { try NodeKey.read(from: directory.file("key_9.pem")) }
        #expect(missing.problem == .missing)
        #expect(missing.description.contains("key_9.pem: no such key file"))

        let unreadable = try #require(throws: NodeKeyError.self) { try NodeKey.read(from: directory.path) }
        guard case .unreadable = unreadable.problem else {
            Issue.record("a directory must be unreadable, got \(unreadable.problem)")
            return
        }
    }

    /// OpenSSL reads the key file as a P-256 SEC1 key with our scalar, and derives the public
    /// key the address book holds; and keys OpenSSL generates read here as the same key.
    // scripts/test installs openssl: without it this fails (it is never skipped).
    @Test
    func openSSLAgrees() throws {
        let directory = try AddressBookScratchDirectory()
        defer { directory.remove() }
        let key = NodeKey.generate()
        let path = directory.file("key_0.pem")
        try key.write(to: path, replace: false)

        let text = try #require(try AddressBookOpenSSL.run(["ec", "-in", path, "-noout", "-text"]))
        #expect(text.contains("ASN1 OID: prime256v1"))
        let privateHex = hexDump(after: "priv:", before: "pub:", in: text)
        #expect(privateHex == Array(key.privateKey.rawRepresentation).map { String(format: "%02x", $0) }.joined())

        let publicPEM = try #require(try AddressBookOpenSSL.run(["ec", "-in", path, "-pubout"]))
        let book = try AddressBook(entries: [.init(publicKeyDER: key.publicKeyDER, address: "127.0.0.1:19793")])
        #expect(book.serialized() == "[[addresses]]\nkey = \"\"\"\n\(publicPEM)\"\"\"\naddr = \"127.0.0.1:19793\"\n")

        let generated = directory.file("openssl.pem")
        _ = try #require(try AddressBookOpenSSL.run(["ecparam", "-name", "prime256v1", "-genkey", "-out", generated]))
        let opensslPublic = try #require(try AddressBookOpenSSL.run(["ec", "-in", generated, "-pubout"]))
        let read = try NodeKey.read(from: generated)
        #expect(
            read.publicKeyDER == Array(try P256.Signing.PublicKey(pemRepresentation: opensslPublic).derRepresentation))
        let sec1 = try #require(try AddressBookOpenSSL.run(["ec", "-in", generated]))
        #expect(read.pemRepresentation == sec1)
    }

    private func pem(_ label: String, _ der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }

    /// The hex digits of `openssl ec -text` between two labels (it prints `aa:bb:...` over
    /// several lines, and may add or drop a leading zero byte).
    private func hexDump(after start: String, before end: String, in text: String) -> String {
        guard let from = text.range(of: start), let to = text.range(of: end, range: from.upperBound..<text.endIndex)
        else { return "" }
        let digits = text[from.upperBound..<to.lowerBound].filter { $0.isHexDigit }
        return String((String(repeating: "0", count: 64) + digits).suffix(64))
    }
}
