import FoxMQTT

/// What applying an event asks the edge to do. Only the node that owns the connection carries
/// these out; the others drop them.
public enum BrokerAction: Sendable {
    /// Send CONNACK with this Session Present flag and reason; the connection adds its
    /// capability properties. A failure reason closes the connection after it.
    case connAck(ConnectionID, sessionPresent: Bool, reasonCode: ReasonCode)
    /// Send a packet (PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK).
    case send(ConnectionID, Packet)
    /// Send DISCONNECT with this reason (5.0) and close the connection.
    case disconnect(ConnectionID, ReasonCode)

    /// A QoS 0 PUBLISH: the one packet the edge may drop for a subscriber that does not read.
    public var isAtMostOncePublish: Bool {
        if case .send(_, .publish(let publish)) = self { publish.qos == .atMostOnce } else { false }
    }

    public var connection: ConnectionID {
        switch self {
        case .connAck(let id, _, _), .send(let id, _), .disconnect(let id, _): id
        }
    }
}
