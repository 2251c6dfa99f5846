/// The bounds a connection enforces on its client before anything reaches the broker core.
public struct ConnectionLimits: Sendable, Hashable {
    /// Largest packet accepted from a client, and announced as Maximum Packet Size (§3.2.2.3.6).
    public var maximumPacketSizeBytes: Int = 1_048_576
    /// Inbound QoS 1/2 PUBLISHes a client may have unacknowledged; announced as Receive Maximum.
    public var receiveMaximum: UInt16 = 1024
    /// Topic aliases a client may define; announced as Topic Alias Maximum.
    public var topicAliasMaximum: UInt16 = 1024
    /// A larger (or zero) client keep alive is replaced by this as Server Keep Alive; nil = any.
    public var keepAliveMaximumSeconds: UInt16? = nil
    /// A socket that has not completed CONNECT after this long is closed.
    public var connectTimeoutSeconds: Int = 10
    /// Open client connections per node; further ones are closed at once.
    public var connectionCountMax: Int = 100_000
    /// Levels of a topic name or filter.
    public var topicLevelCountMax: Int = 128
    /// Bytes of a topic name or filter.
    public var topicLengthMax: Int = 65_535
    /// Anonymous CONNECT is refused unless this is set.
    public var allowAnonymousLogin = false
    /// On TLS listeners with client certificates: the certificate's common name is the user
    /// name, and the certificate authenticates the client (no password is checked), as
    /// Mosquitto's `use_identity_as_username`.
    public var certificateAsUsername = false
    /// Bytes written to a connection but not yet taken by its socket, above which QoS 0
    /// messages for it are dropped until it catches up to a quarter of this: a subscriber that
    /// stops reading must not grow the broker's memory. QoS 1/2 are bounded by the in-flight
    /// window and the session queue instead.
    public var outboundBufferBytesMax: Int = 2_097_152

    public init() {}

    public func checkInvariants() {
        precondition(maximumPacketSizeBytes >= 64, "a packet must at least hold a CONNECT")
        precondition(receiveMaximum >= 1)
        precondition(connectTimeoutSeconds >= 1)
        precondition(outboundBufferBytesMax >= 4096)
        precondition(connectionCountMax >= 1)
        precondition(topicLevelCountMax >= 1 && topicLengthMax >= 1)
    }
}
