import Crypto
import Foundation
import FoxCluster
import Testing

/// `address-book.toml` in the original's format: reading the original's text, writing it back
/// byte for byte, the committee order, and a specific error naming the file and the entry for
/// each kind of damage.
@Suite struct AddressBookTests {
    static let keys = AddressBookFixtures.publicKeys

    /// The DER of a fixture public key, through swift-crypto (independent of the book's parser).
    static func der(_ pem: String) throws -> [UInt8] {
        Array(try P256.Signing.PublicKey(pemRepresentation: pem).derRepresentation)
    }

    /// A book as the original writes it (`foxmq address-book from-range 127.0.0.1 19793
    /// 19796`), typed out: four `[[addresses]]` tables, the key as a multi-line basic string.
    /// It parses, keeps the file order in `entries`, and orders `members` by key DER.
    @Test func theOriginalsSampleBookParses() throws {
        let text = """
            [[addresses]]
            key = \"\"\"
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmMA8kjlsBxxTObq/FUWsSIsrGStt
            eE67nPTeYj9mn1oKwV+N+2nlO/ftsZORt0uAIuKuQtN91kke4wakZk6FTw==
            -----END PUBLIC KEY-----
            \"\"\"
            addr = "127.0.0.1:19793"

            [[addresses]]
            key = \"\"\"
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbhRLWgVp+HSUL2yrazIcR2ArW+Kn
            K0ZkOqfT+4ZTfCUsPXv5NFcU2YgrPWuVyMs6h1DEW+WvmAthv6B0TJSZmA==
            -----END PUBLIC KEY-----
            \"\"\"
            addr = "127.0.0.1:19794"

            [[addresses]]
            key = \"\"\"
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHPQIX5Cb+/1QwrHrsUYAQkk5WBGH
            llmj1VY1c2QvJT98/phkmeYLqg31gkwuXLSDF8UXNJMoTlMNCV3mftgwOg==
            -----END PUBLIC KEY-----
            \"\"\"
            addr = "127.0.0.1:19795"

            [[addresses]]
            key = \"\"\"
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErfakPv4ceth5GfMDZ8lMicKUhiau
            hbuLy0XEy51xMMlALTNTIeT82oLsGxPuWhS+ufbvx9ZnPmAT+vVOiche/g==
            -----END PUBLIC KEY-----
            \"\"\"
            addr = "127.0.0.1:19796"

            """
        let book = try AddressBook.parse(text, path: "foxmq.d/address-book.toml")
        // The file lists the fixture keys 2, 1, 0, 3: not in committee order.
        let ders = try [2, 1, 0, 3].map { try Self.der(Self.keys[$0]) }

        #expect(book.entries.map(\.address) == (19793...19796).map { "127.0.0.1:\($0)" })
        #expect(book.entries.map(\.publicKeyDER) == ders)
        #expect(ders.allSatisfy { $0.count == 91 })

        // Committee order: the DERs sorted bytewise; index = position; bookPosition = entry.
        let sorted = ders.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(book.members.map(\.publicKeyDER) == sorted)
        #expect(book.members.map(\.index) == [0, 1, 2, 3])
        for member in book.members {
            #expect(book.entries[member.bookPosition].publicKeyDER == member.publicKeyDER)
            #expect(book.entries[member.bookPosition].address == member.address)
            #expect(book.member(publicKeyDER: member.publicKeyDER) == member)
        }
        // The two orders really differ.
        #expect(book.members.map(\.bookPosition) == [2, 1, 0, 3])

        // Writing it back gives the same text, byte for byte.
        #expect(book.serialized() == text)
    }

    /// What `serialized()` writes reads back as the same book (entries, members, digest), also
    /// through a file, and a missing file loads as nil.
    @Test func writtenBooksLoadBack() throws {
        let directory = try AddressBookScratchDirectory()
        defer { directory.remove() }
        let entries = (0..<7).map { i in
            AddressBook.Entry(publicKeyDER: NodeKey.generate().publicKeyDER, address: "10.0.0.\(i + 1):19793")
        }
        let book = try AddressBook(entries: entries)
        let path = directory.file("address-book.toml")
        #expect(try AddressBook.load(path: path) == nil)

        try book.write(to: path, replace: false)
        let loaded = try #require(try AddressBook.load(path: path))
        #expect(loaded.path == path)
        #expect(loaded.entries == book.entries)
        #expect(loaded.members == book.members)
        #expect(loaded.digest == book.digest)
        #expect(try directory.read("address-book.toml") == book.serialized())
        #expect(try directory.permissions("address-book.toml") == 0o644)

        #expect(throws: AddressBookError(path: path, problem: .exists)) { try book.write(to: path, replace: false) }
        let other = try AddressBook(entries: Array(entries.prefix(2)))
        try other.write(to: path, replace: true)
        #expect(try AddressBook.load(path: path)?.entries == other.entries)
    }

    /// Addresses are kept in one canonical spelling (IPv6 in brackets, RFC 5952; host names in
    /// lower case), so equal addresses are found equal.
    @Test func addressesAreStoredCanonically() throws {
        let book = try AddressBook(entries: [
            .init(publicKeyDER: try Self.der(Self.keys[0]), address: "[0:0:0:0:0:0:0:1]:19793"),
            .init(publicKeyDER: try Self.der(Self.keys[1]), address: "[2001:DB8:0:0:0:0:0:2]:1"),
            .init(publicKeyDER: try Self.der(Self.keys[2]), address: "Node-3.Example.COM:0019795"),
        ])
        #expect(book.entries.map(\.address) == ["[::1]:19793", "[2001:db8::2]:1", "node-3.example.com:19795"])
        #expect(book.serialized().contains("addr = \"[::1]:19793\"\n"))
    }

    /// `from-range`'s host and port: IPv6 with or without brackets, spelled the RFC 5952 way
    /// (the longest run of zeros compressed, the first of equal runs; IPv4-mapped as a quad).
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1:19793"),
        ("::1", "[::1]:19793"),
        ("[::1]", "[::1]:19793"),
        ("2001:DB8:0:0:1:0:0:1", "[2001:db8::1:0:0:1]:19793"),
        ("::ffff:10.0.0.1", "[::ffff:10.0.0.1]:19793"),
        ("Example.COM", "example.com:19793"),
    ])
    func hostsAndPortsAreSpelledCanonically(host: String, expected: String) throws {
        #expect(try ClusterAddress(host: host, port: 19793).description == expected)
        #expect(try ClusterAddress(parsing: expected).description == expected)
    }

    @Test func portsOutsideTheRangeAreRefused() {
        for port in [0, -1, 65536] {
            #expect(throws: ClusterAddressError.self) { try ClusterAddress(host: "127.0.0.1", port: port) }
        }
        #expect(throws: ClusterAddressError.self) { try ClusterAddress(host: "", port: 1) }
    }

    /// One case per kind of damage: the error is the specific problem, for the right entry.
    @Test(arguments: [
        ("addresses = [", "invalid TOML"),
        ("", "empty"),
        ("title = \"no addresses\"", "empty"),
        ("addresses = []", "empty"),
        ("[addresses]\nkey = \"x\"", "not an array"),
        ("addresses = [1, 2]", "entry 0 not a table"),
    ])
    func malformedDocumentsAreRefused(text: String, expected: String) throws {
        let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(text, path: "b.toml") }
        #expect(error.path == "b.toml")
        switch (expected, error.problem) {
        case ("invalid TOML", .invalidTOML(_, let line, _)): #expect(line == 1)
        case ("empty", .empty): break
        case ("not an array", .addressesNotAnArrayOfTables): break
        case ("entry 0 not a table", .entryNotATable(entry: 0)): break
        default: Issue.record("expected \(expected), got \(error.problem)")
        }
    }

    /// A missing or mistyped key or addr names its entry (counted from 0, like key_N.pem).
    @Test func missingAndMistypedFieldsNameTheirEntry() throws {
        let good = "[[addresses]]\nkey = \"\"\"\n\(Self.keys[0])\"\"\"\naddr = \"127.0.0.1:1\"\n"
        func problem(_ second: String) throws -> AddressBookError.Problem {
            try #require(throws: AddressBookError.self) {
                try AddressBook.parse(good + "\n[[addresses]]\n" + second, path: "b.toml")
            }.problem
        }
        #expect(try problem("addr = \"127.0.0.1:2\"") == .missingKey(entry: 1))
        #expect(try problem("key = 5\naddr = \"127.0.0.1:2\"") == .keyNotAString(entry: 1))
        #expect(try problem("key = \"\"\"\n\(Self.keys[1])\"\"\"") == .missingAddress(entry: 1))
        #expect(try problem("key = \"\"\"\n\(Self.keys[1])\"\"\"\naddr = 19794") == .addressNotAString(entry: 1))

        let error = AddressBookError(path: "foxmq.d/address-book.toml", problem: .missingAddress(entry: 2))
        #expect(
            error.description
                == "foxmq.d/address-book.toml: entry 2 (the 3rd [[addresses]] table): missing addr (\"HOST:PORT\")")
    }

    /// A key that is not the PEM of a P-256 SubjectPublicKeyInfo is refused with the reason.
    @Test(arguments: [
        ("garbage", "not PEM"),
        (AddressBookFixtures.p384PublicKey, "another curve than P-256"),
        (AddressBookFixtures.ed25519PublicKey, "not an EC public key"),
        (AddressBookFixtures.privateKeySEC1, "is EC PRIVATE KEY, not PUBLIC KEY"),
        (AddressBookFixtures.publicKeys[0].replacingFirst("MFkw", with: "MFk!"), "not valid base64"),
        (AddressBookFixtures.publicKeys[0].replacingFirst("-----END PUBLIC KEY-----", with: ""), "has no -----END"),
        (AddressBookFixtures.publicKeys[0] + AddressBookFixtures.publicKeys[1], "2 PEM blocks"),
        // The last base64 character changes the point: off the curve.
        (AddressBookFixtures.publicKeys[0].replacingFirst("mftgwOg==", with: "mftgwOw=="), "not a point of P-256"),
    ])
    func invalidKeysAreRefused(key: String, reason: String) throws {
        let text = "[[addresses]]\nkey = \"\"\"\n\(key)\"\"\"\naddr = \"127.0.0.1:1\"\n"
        let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(text, path: "b.toml") }
        guard case .invalidKey(entry: 0, let actual) = error.problem else {
            Issue.record("expected an invalid key, got \(error.problem)")
            return
        }
        #expect(actual.contains(reason), "\(actual)")
        #expect(error.description.hasPrefix("b.toml: entry 0 (the 1st [[addresses]] table): key is not a P-256"))
    }

    /// Addresses that are not HOST:PORT are refused, naming the address and the reason.
    @Test(arguments: [
        ("127.0.0.1", "HOST:PORT"),
        ("127.0.0.1:0", "1...65535"),
        ("127.0.0.1:65536", "1...65535"),
        ("127.0.0.1:+80", "1...65535"),
        ("127.0.0.1:", "1...65535"),
        (":19793", "empty"),
        ("::1:19793", "in brackets"),
        ("[::1]19793", "[IPv6]:PORT"),
        ("[::1:19793", "no ]"),
        ("[fe80::1%eth0]:19793", "not an IPv6 address"),
        ("[1.2.3.4]:19793", "not an IPv6 address"),
        ("256.0.0.1:19793", "not an IPv4 address"),
        ("01.2.3.4:19793", "not an IPv4 address"),
        ("1.2.3:19793", "not an IPv4 address"),
        ("bad_host:19793", "not an IP address or a host name"),
        ("-bad.example:19793", "not an IP address or a host name"),
        ("a..b:19793", "empty label"),
        ("node.123:19793", "last label is all digits"),
    ])
    func invalidAddressesAreRefused(address: String, reason: String) throws {
        let text = "[[addresses]]\nkey = \"\"\"\n\(Self.keys[0])\"\"\"\naddr = \"\(address)\"\n"
        let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(text, path: "b.toml") }
        guard case .invalidAddress(entry: 0, address: address, let actual) = error.problem else {
            Issue.record("expected an invalid address, got \(error.problem)")
            return
        }
        #expect(actual.contains(reason), "\(actual)")
        #expect(error.description.contains("invalid addr '\(address)'"))
    }

    /// The same address twice (also spelled differently) and the same key twice are refused,
    /// naming both entries.
    @Test func duplicatesAreRefused() throws {
        let sameAddress = AddressBookFixtures.book([
            (Self.keys[0], "[::1]:19793"), (Self.keys[1], "127.0.0.1:19794"), (Self.keys[2], "[0::0:1]:19793"),
        ])
        let addressError = try #require(throws: AddressBookError.self) {
            try AddressBook.parse(sameAddress, path: "b.toml")
        }
        #expect(addressError.problem == .duplicateAddress(entry: 2, firstEntry: 0, address: "[::1]:19793"))
        #expect(addressError.description.contains("addr [::1]:19793 is already the address of entry 0"))

        let sameKey = AddressBookFixtures.book([
            (Self.keys[0], "127.0.0.1:19793"), (Self.keys[1], "127.0.0.1:19794"), (Self.keys[1], "127.0.0.1:19795"),
        ])
        let keyError = try #require(throws: AddressBookError.self) { try AddressBook.parse(sameKey, path: "b.toml") }
        #expect(keyError.problem == .duplicateKey(entry: 2, firstEntry: 1))
    }

    /// More than `memberCountMax` entries are refused before any key is read; an embedded
    /// NUL (which would cut the document for the TOML parser) is refused as invalid TOML.
    @Test func oversizedBooksAndNULsAreRefused() throws {
        let text = String(repeating: "[[addresses]]\n", count: AddressBook.memberCountMax + 1)
        let error = try #require(throws: AddressBookError.self) { try AddressBook.parse(text, path: "b.toml") }
        #expect(error.problem == .tooManyEntries(count: 1001, maximum: 1000))

        let withNUL = AddressBookFixtures.book([(Self.keys[0], "127.0.0.1:1")]) + "\0[[addresses]]\n"
        let nulError = try #require(throws: AddressBookError.self) { try AddressBook.parse(withNUL, path: "b.toml") }
        guard case .invalidTOML = nulError.problem else {
            Issue.record("expected invalid TOML, got \(nulError.problem)")
            return
        }
    }

    /// The digest is SHA-256 of the documented encoding (recomputed here byte by byte), equal
    /// for the same members in another file order, and different when one address or one key
    /// differs.
    @Test func digestComparesMemberships() throws {
        let ders = try Self.keys.map(Self.der)
        let entries = zip(ders, 19793...19796).map { AddressBook.Entry(publicKeyDER: $0, address: "127.0.0.1:\($1)") }
        let book = try AddressBook(entries: entries)

        var encoding: [UInt8] = [0, 21] + Array("foxmq/address-book/v1".utf8) + [0, 0, 0, 4]
        for member in book.members {
            encoding += [0, 91] + member.publicKeyDER
            encoding += [0, UInt8(member.address.utf8.count)] + Array(member.address.utf8)
        }
        #expect(book.digest == Array(SHA256.hash(data: encoding)))
        #expect(book.digestHex.count == 64)

        let reordered = try AddressBook(entries: entries.reversed())
        #expect(reordered.digest == book.digest)
        #expect(reordered.members == book.members.map { reorderedMember($0, count: 4) })

        var movedAddress = entries
        movedAddress[2].address = "127.0.0.1:29795"
        #expect(try AddressBook(entries: movedAddress).digest != book.digest)

        var otherKey = entries
        otherKey[3].publicKeyDER = NodeKey.generate().publicKeyDER
        #expect(try AddressBook(entries: otherKey).digest != book.digest)
    }

    /// A member of the reversed book: the same key, address and index, at the mirrored entry.
    private func reorderedMember(_ member: ClusterMember, count: Int) -> ClusterMember {
        var mirrored = member
        mirrored.bookPosition = count - 1 - member.bookPosition
        return mirrored
    }

    /// `firstDifference` names the first entry, in committee order, where another node's book
    /// differs: a moved address, a key only here, a key only there; nil when equal.
    @Test func firstDifferenceNamesTheEntry() throws {
        let ders = try Self.keys.map(Self.der)
        let entries = zip(ders, 19793...19796).map { AddressBook.Entry(publicKeyDER: $0, address: "127.0.0.1:\($1)") }
        let book = try AddressBook(entries: entries)

        #expect(book.firstDifference(from: entries) == nil)
        #expect(book.firstDifference(from: entries.reversed()) == nil)

        var moved = entries
        moved[2].address = "127.0.0.1:29795"
        let addressDifference = try #require(book.firstDifference(from: moved))
        #expect(addressDifference.publicKeyDER == ders[2])
        #expect(addressDifference.bookPosition == 2)
        #expect(addressDifference.kind == .address(here: "127.0.0.1:19795", there: "127.0.0.1:29795"))
        #expect(addressDifference.description.contains("entry 2 (key_2.pem)"))
        #expect(addressDifference.description.contains("address 127.0.0.1:19795 here, 127.0.0.1:29795 in the peer's"))

        // Two differences: the one first in committee order is named.
        var twoMoved = entries
        twoMoved[0].address = "127.0.0.1:1"
        twoMoved[3].address = "127.0.0.1:4"
        let first = try #require(book.firstDifference(from: twoMoved))
        #expect(first.publicKeyDER == [ders[0], ders[3]].min { $0.lexicographicallyPrecedes($1) })

        let missing = Array(entries.dropLast())
        let onlyHere = try #require(book.firstDifference(from: missing))
        #expect(onlyHere.kind == .onlyHere(address: "127.0.0.1:19796"))
        #expect(onlyHere.bookPosition == 3)
        #expect(onlyHere.description.contains("not in the peer's book"))

        let extraKey = NodeKey.generate().publicKeyDER
        let extra = entries + [AddressBook.Entry(publicKeyDER: extraKey, address: "127.0.0.1:19797")]
        let onlyThere = try #require(book.firstDifference(from: extra))
        #expect(onlyThere.publicKeyDER == extraKey)
        #expect(onlyThere.kind == .onlyThere(address: "127.0.0.1:19797"))
        #expect(onlyThere.bookPosition == nil)
        #expect(onlyThere.description.contains(AddressBook.fingerprint(publicKeyDER: extraKey)))
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
