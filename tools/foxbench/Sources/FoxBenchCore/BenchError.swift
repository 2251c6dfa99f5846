/// Errors that end a run, with a message for the command line.
public enum BenchError: Error, CustomStringConvertible, Sendable {
    case connectFailed(String, String)
    case refused(String, String)
    case closedDuringHandshake(String)
    case handshakeTimeout(String, Int64)
    case subscribeRefused(String, String)
    case protocolViolation(String, String)

    public var description: String {
        switch self {
        case .connectFailed(let address, let reason): "cannot connect to \(address): \(reason)"
        case .refused(let client, let reason): "the broker refused \(client): CONNACK \(reason)"
        case .closedDuringHandshake(let client): "the broker closed the connection of \(client) before CONNACK/SUBACK"
        case .handshakeTimeout(let client, let seconds): "no CONNACK/SUBACK for \(client) within \(seconds) s"
        case .subscribeRefused(let client, let reason):
            "the broker refused the subscription of \(client): SUBACK \(reason)"
        case .protocolViolation(let client, let reason): "\(client): \(reason)"
        }
    }
}
