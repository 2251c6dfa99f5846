import Crypto
import FoxFiles
import TOMLKit

/// `address-book.toml`, the cluster's membership, identical on every node, in the original's
/// format: one `[[addresses]]` table per node with its public key and the address it listens
/// on for its peers:
///
///     [[addresses]]
///     key = """
///     -----BEGIN PUBLIC KEY-----
///     MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...
///     -----END PUBLIC KEY-----
///     """
///     addr = "127.0.0.1:19793"
///
/// The key is the SubjectPublicKeyInfo of the node's P-256 key (`key_N.pem` holds the secret
/// of entry N). Loading checks every entry and fails with an `AddressBookError` naming the
/// file, the entry and the problem; keys other than `key` and `addr` are ignored, as are
/// top-level keys other than `addresses`.
///
/// Two orders matter. `entries` is the file's order (entry N, `key_N.pem`); `members` is the
/// committee order, the public keys' DER sorted bytewise, which every node computes the same
/// whatever the order of its file, and which gives each member its consensus index.
public struct AddressBook: Sendable {
    /// The file's name inside a configuration directory.
    public static let fileName = "address-book.toml"
    /// The most nodes a book may name (the consensus index is a UInt16; the transport keeps a
    /// connection per peer).
    public static let memberCountMax = 1000
    /// Mode of a written address book: public, like the keys it lists.
    public static let fileMode: UInt32 = 0o644
    /// The first bytes hashed into `digest`, so the digest of a book can never be taken for
    /// the hash of anything else.
    public static let digestDomainTag = "foxmq/address-book/v1"

    /// One `[[addresses]]` table: a key and an address, in their canonical forms.
    public struct Entry: Hashable, Sendable {
        /// SubjectPublicKeyInfo DER of the node's P-256 key.
        public var publicKeyDER: [UInt8]
        /// `HOST:PORT` as `ClusterAddress.description` writes it.
        public var address: String

        public init(publicKeyDER: [UInt8], address: String) {
            self.publicKeyDER = publicKeyDER
            self.address = address
        }
    }

    /// The file the book was read from (or will be written to), named in errors.
    public let path: String
    /// The entries in the file's order.
    public let entries: [Entry]
    /// The members in committee order: `members[i].index == i`.
    public let members: [ClusterMember]
    /// SHA-256 of the book's canonical encoding (`digestDomainTag`, then the members in
    /// committee order, each as its key DER and its address). Two nodes hold the same
    /// membership exactly when their digests are equal, whatever the order of their files.
    public let digest: [UInt8]
    private let indexByKey: [[UInt8]: Int]

    /// A book of `entries` (in file order), checked as a loaded file is: each key a P-256
    /// SubjectPublicKeyInfo, each address a valid `HOST:PORT` (stored in its canonical form),
    /// no address or key twice, 1...`memberCountMax` entries. `path` names the book in errors.
    public init(entries: [Entry], path: String = AddressBook.fileName) throws(AddressBookError) {
        guard !entries.isEmpty else { throw AddressBookError(path: path, problem: .empty) }
        guard entries.count <= Self.memberCountMax else {
            throw AddressBookError(
                path: path, problem: .tooManyEntries(count: entries.count, maximum: Self.memberCountMax))
        }
        var canonical: [Entry] = []
        var positionByAddress: [String: Int] = [:]
        var positionByKey: [[UInt8]: Int] = [:]
        for (position, entry) in entries.enumerated() {
            do {
                _ = try NodePublicKey.parse(der: entry.publicKeyDER)
            } catch {
                throw AddressBookError(path: path, problem: .invalidKey(entry: position, reason: error.reason))
            }
            let address: String
            do {
                address = try ClusterAddress(parsing: entry.address).description
            } catch {
                throw AddressBookError(
                    path: path, problem: .invalidAddress(entry: position, address: entry.address, reason: error.reason))
            }
            if let first = positionByAddress[address] {
                throw AddressBookError(
                    path: path, problem: .duplicateAddress(entry: position, firstEntry: first, address: address))
            }
            if let first = positionByKey[entry.publicKeyDER] {
                throw AddressBookError(path: path, problem: .duplicateKey(entry: position, firstEntry: first))
            }
            positionByAddress[address] = position
            positionByKey[entry.publicKeyDER] = position
            canonical.append(Entry(publicKeyDER: entry.publicKeyDER, address: address))
        }

        let committeeOrder = canonical.indices.sorted {
            canonical[$0].publicKeyDER.lexicographicallyPrecedes(canonical[$1].publicKeyDER)
        }
        let members = committeeOrder.enumerated().map { index, position in
            ClusterMember(
                index: UInt16(index), bookPosition: position, address: canonical[position].address,
                publicKeyDER: canonical[position].publicKeyDER)
        }
        self.path = path
        self.entries = canonical
        self.members = members
        self.digest = Self.digest(of: members.map { Entry(publicKeyDER: $0.publicKeyDER, address: $0.address) })
        self.indexByKey = Dictionary(uniqueKeysWithValues: members.map { ($0.publicKeyDER, Int($0.index)) })
    }

    /// `directory/address-book.toml`.
    public static func path(inDirectory directory: String) -> String {
        Files.join(directory, fileName)
    }

    /// Loads the book at `path`, or returns nil when there is no such file.
    public static func load(path: String) throws(AddressBookError) -> AddressBook? {
        let text: String?
        do {
            text = try TOMLFile.readText(path)
        } catch {
            throw AddressBookError(path: path, problem: AddressBookError.Problem(error))
        }
        guard let text else { return nil }
        return try parse(text, path: path)
    }

    /// Parses the TOML `text` of an address book; `path` names it in errors.
    public static func parse(_ text: String, path: String) throws(AddressBookError) -> AddressBook {
        let root: TOMLTable
        do {
            root = try TOMLFile.parse(text)
        } catch {
            throw AddressBookError(path: path, problem: AddressBookError.Problem(error))
        }

        guard let addressesValue = root["addresses"] else { throw AddressBookError(path: path, problem: .empty) }
        guard let addresses = addressesValue.array else {
            throw AddressBookError(path: path, problem: .addressesNotAnArrayOfTables)
        }
        guard addresses.count <= memberCountMax else {
            throw AddressBookError(
                path: path, problem: .tooManyEntries(count: addresses.count, maximum: memberCountMax))
        }
        var entries: [Entry] = []
        for (position, value) in addresses.enumerated() {
            guard let table = value.table else {
                throw AddressBookError(path: path, problem: .entryNotATable(entry: position))
            }
            guard let keyValue = table["key"] else {
                throw AddressBookError(path: path, problem: .missingKey(entry: position))
            }
            guard let keyText = keyValue.string else {
                throw AddressBookError(path: path, problem: .keyNotAString(entry: position))
            }
            let der: [UInt8]
            do {
                der = try NodePublicKey.parse(pem: keyText)
            } catch {
                throw AddressBookError(path: path, problem: .invalidKey(entry: position, reason: error.reason))
            }
            guard let addressValue = table["addr"] else {
                throw AddressBookError(path: path, problem: .missingAddress(entry: position))
            }
            guard let address = addressValue.string else {
                throw AddressBookError(path: path, problem: .addressNotAString(entry: position))
            }
            entries.append(Entry(publicKeyDER: der, address: address))
        }
        return try AddressBook(entries: entries, path: path)
    }

    /// The file's text, in the original's layout.
    public func serialized() -> String {
        entries.map { entry in
            "[[addresses]]\nkey = \"\"\"\n\(NodePublicKey.pem(der: entry.publicKeyDER))\"\"\"\n"
                + "addr = \"\(entry.address)\"\n"
        }.joined(separator: "\n")
    }

    /// Writes the book to `path` (mode 0644); an existing file is replaced only if `replace`.
    public func write(to path: String, replace: Bool) throws(AddressBookError) {
        do {
            try Files.writeFile(Array(serialized().utf8), to: path, mode: Self.fileMode, replace: replace)
        } catch {
            if error.alreadyExists { throw AddressBookError(path: path, problem: .exists) }
            throw AddressBookError(path: path, problem: .unwritable(errno: error.errno, message: error.message))
        }
    }

    /// The member whose key has the SubjectPublicKeyInfo `publicKeyDER`, if any.
    public func member(publicKeyDER: [UInt8]) -> ClusterMember? {
        indexByKey[publicKeyDER].map { members[$0] }
    }

    /// `digest` in lower-case hex, for logs.
    public var digestHex: String { digest.map { DER.hex($0).lowercased() }.joined() }

    /// A short name of a key for logs: the first 8 bytes of the SHA-256 of its DER, in hex.
    public static func fingerprint(publicKeyDER: [UInt8]) -> String {
        NodePublicKey.fingerprint(der: publicKeyDER)
    }

    /// The first difference between this book and the `other` entries (another node's book,
    /// in any order), walking both in committee order: a key whose addresses differ, or a key
    /// only one of them holds. Nil when they hold the same members.
    public func firstDifference(from other: [Entry]) -> AddressBookDifference? {
        let theirs = other.sorted { $0.publicKeyDER.lexicographicallyPrecedes($1.publicKeyDER) }
        var mine = 0
        var their = 0
        while mine < members.count || their < theirs.count {
            guard their < theirs.count else {
                return AddressBookDifference(
                    publicKeyDER: members[mine].publicKeyDER, kind: .onlyHere(address: members[mine].address),
                    bookPosition: members[mine].bookPosition)
            }
            guard mine < members.count else {
                return AddressBookDifference(
                    publicKeyDER: theirs[their].publicKeyDER, kind: .onlyThere(address: theirs[their].address),
                    bookPosition: nil)
            }
            let member = members[mine]
            let entry = theirs[their]
            if member.publicKeyDER == entry.publicKeyDER {
                if member.address != entry.address {
                    return AddressBookDifference(
                        publicKeyDER: member.publicKeyDER, kind: .address(here: member.address, there: entry.address),
                        bookPosition: member.bookPosition)
                }
                mine += 1
                their += 1
            } else if member.publicKeyDER.lexicographicallyPrecedes(entry.publicKeyDER) {
                return AddressBookDifference(
                    publicKeyDER: member.publicKeyDER, kind: .onlyHere(address: member.address),
                    bookPosition: member.bookPosition)
            } else {
                return AddressBookDifference(
                    publicKeyDER: entry.publicKeyDER, kind: .onlyThere(address: entry.address), bookPosition: nil)
            }
        }
        return nil
    }

    /// SHA-256 of: the domain tag (length-prefixed), the member count (UInt32), then per member
    /// in committee order its key DER and its address (UTF-8), each prefixed by a UInt16
    /// length; integers big-endian.
    static func digest(of committee: [Entry]) -> [UInt8] {
        var encoding: [UInt8] = []
        func appendLengthPrefixed(_ bytes: [UInt8]) {
            precondition(bytes.count <= Int(UInt16.max))
            encoding += [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)]
            encoding += bytes
        }
        appendLengthPrefixed(Array(digestDomainTag.utf8))
        let count = UInt32(committee.count)
        encoding += [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
        for entry in committee {
            appendLengthPrefixed(entry.publicKeyDER)
            appendLengthPrefixed(Array(entry.address.utf8))
        }
        return Array(SHA256.hash(data: encoding))
    }
}

/// Where another node's address book first differs from this node's (for the log line when a
/// peer's book differs): the key concerned and what each book says of it.
public struct AddressBookDifference: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Both books hold the key, at different addresses.
        case address(here: String, there: String)
        /// Only this node's book holds the key.
        case onlyHere(address: String)
        /// Only the other book holds the key.
        case onlyThere(address: String)
    }

    /// SubjectPublicKeyInfo DER of the key concerned.
    public let publicKeyDER: [UInt8]
    public let kind: Kind
    /// The key's entry in this node's book (nil when only the other book holds it).
    public let bookPosition: Int?

    public var description: String {
        let key = "key \(NodePublicKey.fingerprint(der: publicKeyDER))"
        let entry = bookPosition.map { "entry \($0) (\(NodeKey.fileName(bookPosition: $0)))" } ?? ""
        switch kind {
        case .address(let here, let there):
            return "\(entry), \(key): address \(here) here, \(there) in the peer's book"
        case .onlyHere(let address):
            return "\(entry), \(key) at \(address): not in the peer's book"
        case .onlyThere(let address):
            return "the peer's book has \(key) at \(address), which is not in this book"
        }
    }
}

/// A problem reading, checking or writing an `address-book.toml`.
///
/// `description` always starts with the file's path, so start-up can print it as is and stop,
/// e.g. `foxmq.d/address-book.toml: entry 2 (the 3rd [[addresses]] table): missing addr`.
public struct AddressBookError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Entries count from 0, like `key_N.pem`.
    public enum Problem: Sendable, Equatable {
        /// The file exists but could not be read.
        case unreadable(errno: Int32, message: String)
        /// The file is not valid UTF-8.
        case notUTF8
        /// The file is not valid TOML (position as given by the TOML parser).
        case invalidTOML(message: String, line: Int?, column: Int?)
        /// `addresses` is not an array of tables.
        case addressesNotAnArrayOfTables
        /// An element of `addresses` is not a table.
        case entryNotATable(entry: Int)
        /// An entry has no `key`.
        case missingKey(entry: Int)
        /// An entry's `key` is not a string.
        case keyNotAString(entry: Int)
        /// An entry's `key` is not the PEM of a P-256 SubjectPublicKeyInfo.
        case invalidKey(entry: Int, reason: String)
        /// An entry has no `addr`.
        case missingAddress(entry: Int)
        /// An entry's `addr` is not a string.
        case addressNotAString(entry: Int)
        /// An entry's `addr` is not `HOST:PORT`.
        case invalidAddress(entry: Int, address: String, reason: String)
        /// Two entries have the same address (`address` in its canonical form).
        case duplicateAddress(entry: Int, firstEntry: Int, address: String)
        /// Two entries have the same key.
        case duplicateKey(entry: Int, firstEntry: Int)
        /// The book names no node.
        case empty
        /// The book names more nodes than `AddressBook.memberCountMax`.
        case tooManyEntries(count: Int, maximum: Int)
        /// The file exists and replacing it was not asked for.
        case exists
        /// The file (or a temporary file beside it) could not be written.
        case unwritable(errno: Int32, message: String)
    }

    /// The address book file concerned.
    public let path: String
    public let problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problemDescription)" }

    private var problemDescription: String {
        switch problem {
        case .unreadable(_, let message):
            return "cannot read the address book: \(message)"
        case .notUTF8:
            return "the address book is not valid UTF-8"
        case .invalidTOML(let message, let line, let column):
            return TOMLFile.describeInvalid(message: message, line: line, column: column)
        case .addressesNotAnArrayOfTables:
            return "'addresses' must be an array of tables ([[addresses]] with key and addr)"
        case .entryNotATable(let entry):
            return "\(Self.name(entry)): not a table with key and addr"
        case .missingKey(let entry):
            return "\(Self.name(entry)): missing key (the node's public key, PEM)"
        case .keyNotAString(let entry):
            return "\(Self.name(entry)): key must be a string (the node's public key, PEM)"
        case .invalidKey(let entry, let reason):
            return "\(Self.name(entry)): key is not a P-256 public key: \(reason)"
        case .missingAddress(let entry):
            return "\(Self.name(entry)): missing addr (\"HOST:PORT\")"
        case .addressNotAString(let entry):
            return "\(Self.name(entry)): addr must be a string (\"HOST:PORT\")"
        case .invalidAddress(let entry, let address, let reason):
            return "\(Self.name(entry)): invalid addr '\(address)': \(reason)"
        case .duplicateAddress(let entry, let firstEntry, let address):
            return "\(Self.name(entry)): addr \(address) is already the address of entry \(firstEntry); "
                + "each node needs its own address"
        case .duplicateKey(let entry, let firstEntry):
            return "\(Self.name(entry)): key is already the key of entry \(firstEntry); each node needs its own key"
        case .empty:
            return "the address book names no node (no [[addresses]] table)"
        case .tooManyEntries(let count, let maximum):
            return "the address book names \(count) nodes, more than the \(maximum) allowed"
        case .exists:
            return "the file exists (refusing to overwrite it)"
        case .unwritable(_, let message):
            return "cannot write the address book: \(message)"
        }
    }

    /// "entry 2 (the 3rd [[addresses]] table)".
    static func name(_ entry: Int) -> String {
        let ordinal = entry + 1
        let suffix: String
        switch (ordinal % 10, ordinal % 100) {
        case (_, 11...13): suffix = "th"
        case (1, _): suffix = "st"
        case (2, _): suffix = "nd"
        case (3, _): suffix = "rd"
        default: suffix = "th"
        }
        return "entry \(entry) (the \(ordinal)\(suffix) [[addresses]] table)"
    }
}

extension AddressBookError.Problem: TOMLFileProblem {}
