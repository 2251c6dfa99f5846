/// Names one network connection in the whole cluster and across restarts: the node that holds
/// the socket, that node's incarnation (a durable counter bumped at every start) and a number
/// the incarnation never reuses. Ordered events carry it so that every node applies them the
/// same way, only the node that owns the socket acts on the resulting packets, and a restored
/// session attached to a connection of an earlier incarnation is never driven by a new
/// connection that happens to get the same number.
public struct ConnectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var node: UInt32
    public var incarnation: UInt32
    public var local: UInt64

    public init(node: UInt32, incarnation: UInt32 = 0, local: UInt64) {
        self.node = node
        self.incarnation = incarnation
        self.local = local
    }

    public static func < (lhs: ConnectionID, rhs: ConnectionID) -> Bool {
        (lhs.node, lhs.incarnation, lhs.local) < (rhs.node, rhs.incarnation, rhs.local)
    }

    public var description: String { "\(node).\(incarnation).\(local)" }
}
