/// Names one network connection in the whole cluster: the node that holds the socket and a
/// number that node never reuses. Ordered events carry it so that every node applies them the
/// same way, and only the node that owns the socket acts on the resulting packets.
public struct ConnectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var node: UInt32
    public var local: UInt64

    public init(node: UInt32, local: UInt64) {
        self.node = node
        self.local = local
    }

    public static func < (lhs: ConnectionID, rhs: ConnectionID) -> Bool {
        (lhs.node, lhs.local) < (rhs.node, rhs.local)
    }

    public var description: String { "\(node).\(local)" }
}
