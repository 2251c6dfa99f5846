import Crypto
import FoxFiles

/// What a node needs to join its cluster: the address book, which member of it this node is,
/// and the node's secret key.
// Unchecked: the key is an immutable value; swift-crypto does not mark it Sendable.
public struct ClusterConfiguration: @unchecked Sendable {
    public let book: AddressBook
    public let me: ClusterMember
    public let key: P256.Signing.PrivateKey
    /// The key file that was read (for logs).
    public let keyFile: String

    /// A book of one node: the node orders alone.
    public var isSingleNode: Bool { book.members.count == 1 }

    /// Reads `directory/address-book.toml` and this node's key (`secretKeyFile`, default
    /// `directory/key_0.pem`) and finds this node in the book.
    ///
    /// Returns nil when the directory has no address book (a node without a cluster; the key
    /// file is then not read). Throws an `AddressBookError` when the book cannot be read or
    /// is invalid (malformed, an address or a key twice, no entry), and a `NodeKeyError` when
    /// the key file is missing, unreadable, not a P-256 key, or not in the book; each error's
    /// description names the file and the problem.
    public static func load(directory: String, secretKeyFile: String?) throws -> ClusterConfiguration? {
        let bookPath = AddressBook.path(inDirectory: directory)
        guard let book = try AddressBook.load(path: bookPath) else { return nil }
        let keyFile = secretKeyFile ?? Files.join(directory, NodeKey.fileName(bookPosition: 0))
        let key = try NodeKey.read(from: keyFile)
        let me = try findSelf(secretKey: key, in: book)
        return ClusterConfiguration(book: book, me: me, key: key.privateKey, keyFile: keyFile)
    }

    /// The member of `book` whose public key is `secretKey`'s; else an error saying that the
    /// key in its file is not in the book.
    public static func findSelf(secretKey: NodeKey, in book: AddressBook) throws(NodeKeyError) -> ClusterMember {
        guard let member = book.member(publicKeyDER: secretKey.publicKeyDER) else {
            throw NodeKeyError(
                path: secretKey.path ?? "(a key not read from a file)", problem: .notInAddressBook(bookPath: book.path))
        }
        return member
    }
}
