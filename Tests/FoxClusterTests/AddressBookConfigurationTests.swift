import Foundation
import FoxCluster
import Testing

/// Creating a cluster's files (`ClusterSetup`, behind `foxmq address-book`) and reading them
/// back at node start (`ClusterConfiguration.load`): which member "me" is, and a clear error
/// naming the file for each way the files can be wrong.
@Suite struct AddressBookConfigurationTests {
    static func addresses(_ ports: ClosedRange<Int>) throws -> [ClusterAddress] {
        try ports.map { try ClusterAddress(host: "127.0.0.1", port: $0) }
    }

    /// Four nodes: key_N.pem is entry N, every key finds its own member, the files have the
    /// right modes, and the directory is created (0700).
    @Test func eachKeyFindsItsOwnEntry() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.file("nested/foxmq.d")
        let report = try ClusterSetup.write(
            addresses: try Self.addresses(19793...19796), directory: directory, replace: false)
        #expect(report.keyPaths == (0..<4).map { "\(directory)/key_\($0).pem" })
        #expect(report.bookPath == "\(directory)/address-book.toml")
        #expect(report.staleKeyPaths.isEmpty)
        #expect(try scratch.permissions("nested/foxmq.d") == 0o700)
        #expect(try scratch.permissions("nested/foxmq.d/key_3.pem") == 0o600)
        #expect(try scratch.permissions("nested/foxmq.d/address-book.toml") == 0o644)

        let first = try #require(try ClusterConfiguration.load(directory: directory, secretKeyFile: nil))
        #expect(first.me.bookPosition == 0)
        #expect(first.me.address == "127.0.0.1:19793")
        #expect(first.keyFile == "\(directory)/key_0.pem")
        #expect(!first.isSingleNode)
        #expect(first.book.members.count == 4)
        #expect(first.book.digest == report.book.digest)

        for position in 0..<4 {
            let keyFile = "\(directory)/key_\(position).pem"
            let configuration = try #require(
                try ClusterConfiguration.load(directory: directory, secretKeyFile: keyFile))
            #expect(configuration.me.bookPosition == position)
            #expect(configuration.me.address == "127.0.0.1:\(19793 + position)")
            #expect(configuration.book.members[Int(configuration.me.index)] == configuration.me)
            #expect(Array(configuration.key.publicKey.derRepresentation) == configuration.me.publicKeyDER)
            let key = try NodeKey.read(from: keyFile)
            #expect(try ClusterConfiguration.findSelf(secretKey: key, in: configuration.book) == configuration.me)
        }
    }

    /// A book of one node is a single-node cluster.
    @Test func aBookOfOneIsSingleNode() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        _ = try ClusterSetup.write(
            addresses: try Self.addresses(19793...19793), directory: scratch.path, replace: false)
        let configuration = try #require(try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: nil))
        #expect(configuration.isSingleNode)
        #expect(configuration.me.index == 0)
    }

    /// No address book: nil, whatever the key file (which is not read).
    @Test func noBookIsNil() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        #expect(try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: nil) == nil)
        #expect(try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: scratch.file("nope.pem")) == nil)
        #expect(try ClusterConfiguration.load(directory: scratch.file("no-such-dir"), secretKeyFile: nil) == nil)
    }

    /// A key that is in no entry: "the key in FILE is not in BOOK".
    @Test func aForeignKeyIsNotInTheBook() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        _ = try ClusterSetup.write(
            addresses: try Self.addresses(19793...19794), directory: scratch.path, replace: false)
        let foreign = scratch.file("foreign.pem")
        try NodeKey.generate().write(to: foreign, replace: false)

        let error = try #require(throws: NodeKeyError.self) {
            try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: foreign)
        }
        #expect(error.problem == .notInAddressBook(bookPath: scratch.file("address-book.toml")))
        #expect(error.description.hasPrefix("the key in \(foreign) is not in \(scratch.file("address-book.toml"))"))
    }

    /// A book without key_0.pem beside it, or with an unreadable key, fails naming the key file.
    @Test func aMissingOrBadKeyFileIsNamed() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        _ = try ClusterSetup.write(
            addresses: try Self.addresses(19793...19794), directory: scratch.path, replace: false)
        try FileManager.default.removeItem(atPath: scratch.file("key_0.pem"))

        let missing = try #require(throws: NodeKeyError.self) {
            try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: nil)
        }
        #expect(missing == NodeKeyError(path: scratch.file("key_0.pem"), problem: .missing))

        try scratch.write("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", to: "bad.pem")
        let bad = try #require(throws: NodeKeyError.self) {
            try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: scratch.file("bad.pem"))
        }
        guard case .invalidKey = bad.problem else {
            Issue.record("expected an invalid key, got \(bad.problem)")
            return
        }
        #expect(bad.description.hasPrefix(scratch.file("bad.pem") + ": not a P-256 private key"))
    }

    /// A malformed book and a book listing an address twice fail naming the book.
    @Test func aBadBookIsNamed() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        let report = try ClusterSetup.write(
            addresses: try Self.addresses(19793...19794), directory: scratch.path, replace: false)
        let text = try scratch.read("address-book.toml")

        try scratch.write(text.replacingOccurrences(of: "19794", with: "19793"), to: "address-book.toml")
        let duplicate = try #require(throws: AddressBookError.self) {
            try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: nil)
        }
        #expect(duplicate.path == report.bookPath)
        #expect(duplicate.problem == .duplicateAddress(entry: 1, firstEntry: 0, address: "127.0.0.1:19793"))

        try scratch.write(text + "[[addresses]\n", to: "address-book.toml")
        let malformed = try #require(throws: AddressBookError.self) {
            try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: nil)
        }
        #expect(malformed.description.hasPrefix(report.bookPath + ": line "))

        try scratch.write("# no nodes yet\n", to: "address-book.toml")
        let empty = try #require(throws: AddressBookError.self) {
            try ClusterConfiguration.load(directory: scratch.path, secretKeyFile: nil)
        }
        #expect(empty.problem == .empty)
    }

    /// Without `replace`, an existing key or book stops everything before anything is written;
    /// with it, every file is replaced, and keys of an earlier, larger book are reported.
    @Test func existingFilesAreOnlyReplacedWhenAsked() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        _ = try ClusterSetup.write(
            addresses: try Self.addresses(19793...19796), directory: scratch.path, replace: false)
        let before = try (0..<4).map { try scratch.read("key_\($0).pem") } + [try scratch.read("address-book.toml")]

        let refused = try #require(throws: ClusterSetupError.self) {
            try ClusterSetup.write(
                addresses: try Self.addresses(19793...19797), directory: scratch.path, replace: false)
        }
        #expect(
            refused.problem
                == .filesExist((0..<4).map { scratch.file("key_\($0).pem") } + [scratch.file("address-book.toml")]))
        #expect(refused.description.contains("use -f/--force"))
        #expect(!scratch.exists("key_4.pem"))
        #expect(
            try (0..<4).map { try scratch.read("key_\($0).pem") } + [try scratch.read("address-book.toml")] == before)

        let replaced = try ClusterSetup.write(
            addresses: try Self.addresses(20000...20001), directory: scratch.path, replace: true)
        #expect(try scratch.read("key_0.pem") != before[0])
        #expect(try scratch.read("key_1.pem") != before[1])
        #expect(replaced.staleKeyPaths == [scratch.file("key_2.pem"), scratch.file("key_3.pem")])
        let loaded = try #require(try AddressBook.load(path: scratch.file("address-book.toml")))
        #expect(loaded.entries.map(\.address) == ["127.0.0.1:20000", "127.0.0.1:20001"])
        #expect(try scratch.permissions("key_0.pem") == 0o600)
    }

    /// Duplicate addresses never reach the disk.
    @Test func duplicateAddressesAreRefusedBeforeWriting() throws {
        let scratch = try AddressBookScratchDirectory()
        defer { scratch.remove() }
        let address = try ClusterAddress(parsing: "[::1]:19793")
        let error = try #require(throws: ClusterSetupError.self) {
            try ClusterSetup.write(addresses: [address, address], directory: scratch.path, replace: false)
        }
        #expect(
            error.problem
                == .invalidBook(
                    .init(
                        path: scratch.file("address-book.toml"),
                        problem: .duplicateAddress(entry: 1, firstEntry: 0, address: "[::1]:19793"))))
        #expect(!scratch.exists("key_0.pem"))
    }
}
