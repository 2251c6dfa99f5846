import FoxFiles

/// Creating a cluster's files, the work of `foxmq address-book from-range|from-list`: a new
/// key per node (`key_N.pem`, mode 0600) and the address book listing them, in a
/// configuration directory.
public enum ClusterSetup {
    /// Mode of a created configuration directory (it holds secret keys).
    public static let directoryMode: UInt32 = 0o700

    /// What `write` wrote.
    public struct Report: Sendable {
        public let book: AddressBook
        /// `key_N.pem` of entry N.
        public let keyPaths: [String]
        public let bookPath: String
        /// `key_N.pem` files beyond the new book's entries, left from an earlier, larger
        /// book (not deleted: they are secrets someone may still want).
        public let staleKeyPaths: [String]
    }

    /// Writes one new key per address, in order (`key_0.pem` for the first), then
    /// `address-book.toml`, into `directory` (created when missing, mode 0700). Keys go
    /// first so that a book never names keys that were not written.
    ///
    /// Unless `replace`, nothing is written when any of these files exists
    /// (`ClusterSetupError.Problem.filesExist`). Addresses must be distinct and at most
    /// `AddressBook.memberCountMax`.
    public static func write(addresses: [ClusterAddress], directory: String, replace: Bool) throws(ClusterSetupError)
        -> Report
    {
        let keys = addresses.map { _ in NodeKey.generate() }
        let keyPaths = addresses.indices.map { Files.join(directory, NodeKey.fileName(bookPosition: $0)) }
        let bookPath = AddressBook.path(inDirectory: directory)
        let book: AddressBook
        do {
            book = try AddressBook(
                entries: zip(keys, addresses).map { .init(publicKeyDER: $0.publicKeyDER, address: $1.description) },
                path: bookPath)
        } catch {
            throw ClusterSetupError(problem: .invalidBook(error))
        }

        if !replace {
            let existing = (keyPaths + [bookPath]).filter(Files.exists)
            if !existing.isEmpty { throw ClusterSetupError(problem: .filesExist(existing)) }
        }
        do {
            try Files.makeDirectories(directory, mode: directoryMode)
        } catch {
            throw ClusterSetupError(problem: .directory(path: directory, message: error.message))
        }
        do {
            for (key, keyPath) in zip(keys, keyPaths) {
                try key.write(to: keyPath, replace: replace)
            }
        } catch {
            if case .exists = error.problem { throw ClusterSetupError(problem: .filesExist([error.path])) }
            throw ClusterSetupError(problem: .key(error))
        }
        do {
            try book.write(to: bookPath, replace: replace)
        } catch {
            if case .exists = error.problem { throw ClusterSetupError(problem: .filesExist([error.path])) }
            throw ClusterSetupError(problem: .invalidBook(error))
        }

        var stale: [String] = []
        for position in keyPaths.count..<(keyPaths.count + AddressBook.memberCountMax) {
            let stalePath = Files.join(directory, NodeKey.fileName(bookPosition: position))
            guard Files.exists(stalePath) else { break }
            stale.append(stalePath)
        }
        return Report(book: book, keyPaths: keyPaths, bookPath: bookPath, staleKeyPaths: stale)
    }
}

/// Why `ClusterSetup.write` wrote nothing, or stopped.
public struct ClusterSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        /// These files exist and replacing them was not asked for; nothing was written.
        case filesExist([String])
        /// The configuration directory could not be created.
        case directory(path: String, message: String)
        /// A key file could not be written.
        case key(NodeKeyError)
        /// The book is invalid (the addresses) or could not be written.
        case invalidBook(AddressBookError)
    }

    public let problem: Problem

    public var description: String {
        switch problem {
        case .filesExist(let paths):
            return "refusing to overwrite \(paths.joined(separator: ", ")) (use -f/--force to replace "
                + "\(paths.count == 1 ? "it" : "them"))"
        case .directory(let path, let message):
            return "cannot create the configuration directory \(path): \(message)"
        case .key(let error):
            return error.description
        case .invalidBook(let error):
            return error.description
        }
    }
}
