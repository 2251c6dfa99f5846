/// One node of the cluster as the address book names it: where it listens for its peers and
/// the public key it proves itself with. `index` is its position in the committee, the order of
/// the members' keys (SubjectPublicKeyInfo DER) sorted bytewise (consensus.md §2), which is
/// also the consensus author index; `bookPosition` is its place in `address-book.toml`
/// (`key_N.pem` was written for position N).
public struct ClusterMember: Hashable, Sendable, CustomStringConvertible {
    public var index: UInt16
    public var bookPosition: Int
    /// `host:port` as written in the book.
    public var address: String
    /// SubjectPublicKeyInfo DER of the member's P-256 key.
    public var publicKeyDER: [UInt8]

    public init(index: UInt16, bookPosition: Int, address: String, publicKeyDER: [UInt8]) {
        self.index = index
        self.bookPosition = bookPosition
        self.address = address
        self.publicKeyDER = publicKeyDER
    }

    public var description: String { "node \(index) (\(address), entry \(bookPosition))" }
}
