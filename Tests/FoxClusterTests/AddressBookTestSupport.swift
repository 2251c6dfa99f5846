import Foundation

/// A fresh directory for one address-book test, removed by `remove()`.
struct AddressBookScratchDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/foxcluster-address-book-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ text: String, to name: String) throws {
        try text.write(toFile: file(name), atomically: false, encoding: .utf8)
    }

    func read(_ name: String) throws -> String {
        try String(contentsOfFile: file(name), encoding: .utf8)
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

    func permissions(_ name: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: file(name))
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The `openssl` command line, when installed: the reference the key files are checked against.
enum AddressBookOpenSSL {
    static let path: String? = ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs openssl with `arguments`; its standard output, or nil when it exits non-zero.
    static func run(_ arguments: [String]) throws -> String? {
        guard let path else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Keys made by OpenSSL 3 (`openssl ecparam -name prime256v1 -genkey -noout`, `openssl ec
/// -pubout`), written here as text so the tests read files the original's tools would.
enum AddressBookFixtures {
    /// The public keys of four P-256 keys; the first is `privateKeySEC1`'s.
    static let publicKeys = [
        """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHPQIX5Cb+/1QwrHrsUYAQkk5WBGH
        llmj1VY1c2QvJT98/phkmeYLqg31gkwuXLSDF8UXNJMoTlMNCV3mftgwOg==
        -----END PUBLIC KEY-----

        """,
        """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbhRLWgVp+HSUL2yrazIcR2ArW+Kn
        K0ZkOqfT+4ZTfCUsPXv5NFcU2YgrPWuVyMs6h1DEW+WvmAthv6B0TJSZmA==
        -----END PUBLIC KEY-----

        """,
        """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmMA8kjlsBxxTObq/FUWsSIsrGStt
        eE67nPTeYj9mn1oKwV+N+2nlO/ftsZORt0uAIuKuQtN91kke4wakZk6FTw==
        -----END PUBLIC KEY-----

        """,
        """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErfakPv4ceth5GfMDZ8lMicKUhiau
        hbuLy0XEy51xMMlALTNTIeT82oLsGxPuWhS+ufbvx9ZnPmAT+vVOiche/g==
        -----END PUBLIC KEY-----

        """,
    ]

    /// A test-only secret (never used outside these tests): SEC1, as OpenSSL writes it.
    static let privateKeySEC1 = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIMhTv7AU7dyEBPAY536bZql40/kDuusftUC84SA2kvfhoAoGCCqGSM49
        AwEHoUQDQgAEHPQIX5Cb+/1QwrHrsUYAQkk5WBGHllmj1VY1c2QvJT98/phkmeYL
        qg31gkwuXLSDF8UXNJMoTlMNCV3mftgwOg==
        -----END EC PRIVATE KEY-----

        """

    /// The same key as PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`).
    static let privateKeyPKCS8 = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyFO/sBTt3IQE8Bjn
        fptmqXjT+QO66x+1QLzhIDaS9+GhRANCAAQc9AhfkJv7/VDCseuxRgBCSTlYEYeW
        WaPVVjVzZC8lP3z+mGSZ5guqDfWCTC5ctIMXxRc0kyhOUw0JXeZ+2DA6
        -----END PRIVATE KEY-----

        """

    /// A P-384 public key.
    static let p384PublicKey = """
        -----BEGIN PUBLIC KEY-----
        MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEEmkG+xjHSkIIPM4HIZNlDzamJmcAz3Fw
        kDKAkoSIFeXjm3F7uXlapi9IJCBnvTQiejzbYb24QIfZbwlypcAKsYn2eZOCA9H1
        Ig3wDTPc2J6QwphLO3KuB8FTcPoZPLm1
        -----END PUBLIC KEY-----

        """

    /// An Ed25519 public key.
    static let ed25519PublicKey = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEAnlOmQZsl8EKPZIT6su3gTR/Tyxehz8iyEmFLEuZELRU=
        -----END PUBLIC KEY-----

        """

    /// A secp256k1 secret key (SEC1): an EC key on the wrong curve.
    static let secp256k1PrivateKey = """
        -----BEGIN EC PRIVATE KEY-----
        MHQCAQEEINSs7f5qxZAZa15S0P08fk4GeptnQ7Cd09k2HlYlhp2CoAcGBSuBBAAK
        oUQDQgAEu2OV7sIbJGYGdjXIfIcUlgr6o/sfy1TVThQhsn9+NbpKurLlKhlwQkwb
        rgqb1zhEazk56CkJKwOC/Ve2bttrng==
        -----END EC PRIVATE KEY-----

        """

    /// `[[addresses]]` text of the original's format.
    static func book(_ entries: [(key: String, addr: String)]) -> String {
        entries.map { "[[addresses]]\nkey = \"\"\"\n\($0.key)\"\"\"\naddr = \"\($0.addr)\"\n" }
            .joined(separator: "\n")
    }
}
