import FoxBrokerCore

/// Checks CONNECT credentials. Blocking (password hashing): called off the event loop.
public protocol Authenticator: Sendable {
    /// Whether to accept these credentials. With `allowAnonymous`, a CONNECT without a user
    /// name, or with one we do not know, is accepted; a known user must give its password.
    func authenticate(username: String?, password: [UInt8]?, allowAnonymous: Bool) -> Bool
}
