import FoxMQTT
import NIOCore

/// An event that changes broker state. Events reach `BrokerState.apply` only after an `Orderer`
/// has put them in the one order every node agrees on, together with the time of that order:
/// time-dependent rules (message expiry, will delay, session expiry) read that time and never a
/// local clock, so every node that applies the same events reaches the same state.
public enum BrokerEvent: Hashable, Sendable {
    /// A client's CONNECT, authenticated and validated by its connection.
    case sessionOpen(SessionOpen)
    /// A PUBLISH from a client, topic alias already resolved.
    case publish(ConnectionID, Publish)
    /// PUBREL of an inbound QoS 2 exchange.
    case pubRel(ConnectionID, packetIdentifier: UInt16)
    /// The client acknowledged an outbound QoS 1 PUBLISH.
    case pubAck(ConnectionID, packetIdentifier: UInt16)
    /// The client received an outbound QoS 2 PUBLISH; a failure code ends the exchange.
    case pubRec(ConnectionID, packetIdentifier: UInt16, reasonCode: ReasonCode)
    /// The client completed an outbound QoS 2 exchange.
    case pubComp(ConnectionID, packetIdentifier: UInt16)
    /// SUBSCRIBE; `denied` lists the indices of the subscriptions the access rules refused
    /// (checked at the edge, so apply never reads the admin database): they get 0x87.
    case subscribe(ConnectionID, Subscribe, denied: [Int] = [])
    /// A QoS 1/2 PUBLISH the access rules refused, without its payload: ordered like any
    /// PUBLISH so its PUBACK/PUBREC 0x87 keeps its place among the acknowledgements. (A
    /// refused QoS 0 PUBLISH is dropped at the edge.)
    case publishDenied(ConnectionID, packetIdentifier: UInt16, qos: QoS)
    case unsubscribe(ConnectionID, Unsubscribe)
    /// The connection ended: by the client's DISCONNECT, an error, or the network.
    case sessionClose(ConnectionID, SessionClose)
    /// Time passed: due wills are published, expired sessions end, expired retained messages
    /// are purged.
    case tick
    /// A node started with a new incarnation, before its listeners opened: sessions still
    /// attached to a connection of an earlier incarnation of that node end as after a network
    /// loss (wills, expiry), since that process and its sockets are gone.
    case nodeStarted(node: UInt32, incarnation: UInt32)
    /// Another node of the cluster is lost (its peers have not reached it for the will
    /// failover time): sessions attached to its connections of `incarnation` or earlier end as
    /// after a network loss (wills, expiry), and if it is alive behind a partition it closes
    /// those connections when it applies this. Its clients resume their sessions on any node.
    case nodeLost(node: UInt32, incarnation: UInt32)
    /// The limits that decide outcomes change. Recorded in the log and in the state, so that a
    /// replay after the flags changed still reaches what was acknowledged.
    case configure(BrokerLimits)
    /// An operator changed the users or access rules (on any node): every node keeps the
    /// same ordered copy and checks clients against it.
    case admin(AdminEntry)
    /// The broker's own statistics (`$SYS/...`) from node `node`: a retained QoS 0 message,
    /// ordered like any publish so every node holds the same `$SYS` tree.
    case systemPublish(node: UInt32, topicName: String, payload: ByteBuffer)
}

/// What a connection learned from CONNECT that the session state needs.
public struct SessionOpen: Hashable, Sendable {
    public var connection: ConnectionID
    /// Never empty: the connection assigns one for an empty CONNECT identifier.
    public var clientIdentifier: String
    public var protocolVersion: ProtocolVersion
    public var cleanStart: Bool
    /// 3.1.1: 0 for Clean Session 1, `UInt32.max` (never) for Clean Session 0.
    public var sessionExpiryIntervalSeconds: UInt32
    public var will: Will?
    /// The client's Receive Maximum: outbound QoS 1/2 messages it accepts unacknowledged.
    public var receiveMaximum: UInt16
    /// The client's Maximum Packet Size; nil when it set none.
    public var maximumPacketSize: UInt32?

    public init(
        connection: ConnectionID, clientIdentifier: String, protocolVersion: ProtocolVersion,
        cleanStart: Bool, sessionExpiryIntervalSeconds: UInt32, will: Will?,
        receiveMaximum: UInt16, maximumPacketSize: UInt32?
    ) {
        self.connection = connection
        self.clientIdentifier = clientIdentifier
        self.protocolVersion = protocolVersion
        self.cleanStart = cleanStart
        self.sessionExpiryIntervalSeconds = sessionExpiryIntervalSeconds
        self.will = will
        self.receiveMaximum = receiveMaximum
        self.maximumPacketSize = maximumPacketSize
    }
}

/// How a connection ended (MQTT 5.0 §3.1.2.5: when the will is published).
public struct SessionClose: Hashable, Sendable {
    public enum Cause: Sendable, Hashable {
        /// DISCONNECT with reason 0x00: the will is discarded.
        case normalDisconnect
        /// DISCONNECT with reason 0x04 (Disconnect with Will Message).
        case disconnectWithWill
        /// Any other end: network loss, keep alive timeout, protocol error, server shutdown.
        case abnormal
        /// An end that would publish the will (any of the two above), but the client's user may
        /// no longer publish to the will's topic: the access rules changed since CONNECT, and a
        /// will is checked again when it would be sent (as Mosquitto does). The will is discarded.
        case willRefused

        /// Whether the session's will is published (at once or after its delay).
        public var publishesWill: Bool {
            switch self {
            case .disconnectWithWill, .abnormal: true
            case .normalDisconnect, .willRefused: false
            }
        }
    }

    public var cause: Cause
    /// A new Session Expiry Interval from the client's DISCONNECT (5.0 §3.14.2.2.2).
    public var sessionExpiryIntervalSeconds: UInt32?

    public init(cause: Cause, sessionExpiryIntervalSeconds: UInt32? = nil) {
        self.cause = cause
        self.sessionExpiryIntervalSeconds = sessionExpiryIntervalSeconds
    }
}

extension BrokerEvent {
    /// The node the event must come from, or nil when any node may order it (time, limits).
    /// In a cluster an entry whose event names another node's connection is a no-op: no node
    /// can open, close, publish on or acknowledge for a connection it does not hold.
    public var originNode: UInt32? {
        switch self {
        case .sessionOpen(let open): open.connection.node
        case .publish(let connection, _), .pubRel(let connection, _), .pubAck(let connection, _),
            .pubRec(let connection, _, _), .pubComp(let connection, _), .subscribe(let connection, _, _),
            .publishDenied(let connection, _, _), .unsubscribe(let connection, _), .sessionClose(let connection, _):
            connection.node
        case .nodeStarted(let node, _): node
        case .admin(let entry): entry.node
        case .systemPublish(let node, _, _): node
        case .tick, .configure, .nodeLost: nil
        }
    }
}
