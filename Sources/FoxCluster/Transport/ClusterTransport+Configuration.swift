// swift-crypto does not mark its keys Sendable; they are immutable values.
@preconcurrency import Crypto
import NIOCore

extension ClusterTransport {
    public struct Configuration: Sendable {
        /// This node; `members[me.index] == me`.
        public var me: ClusterMember
        /// The committee, indexed by consensus author index (`members[i].index == i`).
        public var members: [ClusterMember]
        /// This node's own signing key; its public key should be `me.publicKeyDER` (peers refuse
        /// the node otherwise).
        public var key: P256.Signing.PrivateKey
        /// The 32-byte digest both sides must share (the committee digest, consensus.md §2).
        public var bookDigest: [UInt8]
        /// The book as this node read it, sent in the hello so that a peer with another digest
        /// can say which entry differs. Defaults to the members in book order.
        public var bookEntries: [ClusterBookEntry]
        /// Where the cluster listener binds (`--cluster-addr`); port 0 picks a free port.
        public var listenHost: String
        public var listenPort: Int

        /// The largest message payload accepted; a longer frame closes the connection. Sending a
        /// longer one is a programmer error.
        public var maxFrameBytes = 64 << 20
        /// The bound of one peer's outbound queue (frames with their 4-byte headers; a single
        /// frame longer than the bound is kept alone). When a message does not fit, the oldest
        /// queued ones are dropped and counted: consensus recovers lost messages by sync, while an
        /// unbounded queue to a dead peer would not give its memory back.
        public var maxQueuedBytesPerPeer = 64 << 20
        /// Before authentication a peer is a stranger: its frames are held to this bound.
        public var maxHandshakeFrameBytes = 1 << 20
        /// Inbound connections still in their handshake; more are closed at once.
        public var maxPendingHandshakes = 64
        /// A connection not authenticated within this time is closed.
        public var handshakeTimeoutMillis: Int64 = 5000
        /// A connection whose peer stopped acknowledging (or answering keepalive probes) for
        /// about this long is closed by the kernel (Linux; see `applySocketOptions`).
        public var deadPeerTimeoutMillis: Int64 = 10_000
        public var reconnectBackoff = ReconnectBackoff()
        /// Uniform in [0, 1): the jitter of the reconnect delays (injectable for tests).
        public var randomUnit: @Sendable () -> Double = { Double.random(in: 0..<1) }
        /// The channel's write buffer watermarks: above `high` the queue stops draining into the
        /// socket until the buffer falls below `low`, so that the bounded queue is where
        /// messages wait (and are dropped), not an unbounded channel buffer.
        public var writeBufferLowWaterMarkBytes = 256 << 10
        public var writeBufferHighWaterMarkBytes = 1 << 20
        /// TLS under the handshake on every connection, or nil for plain TCP. Both sides of a
        /// connection must agree: a TLS node refuses a plain one and the reverse.
        public var tls: ClusterTLS?

        public init(
            me: ClusterMember, members: [ClusterMember], key: P256.Signing.PrivateKey, bookDigest: [UInt8],
            bookEntries: [ClusterBookEntry]? = nil, listenHost: String, listenPort: Int
        ) {
            self.me = me
            self.members = members
            self.key = key
            self.bookDigest = bookDigest
            self.bookEntries =
                bookEntries
                ?? members.sorted { $0.bookPosition < $1.bookPosition }.map {
                    ClusterBookEntry(address: $0.address, publicKeyDER: $0.publicKeyDER)
                }
            self.listenHost = listenHost
            self.listenPort = listenPort
        }

        /// Programmer errors in a configuration; the address book has validated the values.
        func checkInvariants() {
            precondition(!members.isEmpty && members.count <= Int(UInt16.max), "the committee size")
            for (position, member) in members.enumerated() {
                precondition(Int(member.index) == position, "members must be ordered by index: \(member)")
            }
            precondition(Int(me.index) < members.count && members[Int(me.index)] == me, "me must be a member")
            precondition(bookDigest.count == ClusterHandshakeMessage.digestBytes, "the book digest is 32 bytes")
            precondition(bookEntries.count <= ClusterHandshakeMessage.entryCountMax, "too many book entries")
            precondition(maxFrameBytes >= 0 && maxFrameBytes <= Int(UInt32.max), "maxFrameBytes")
            precondition(maxQueuedBytesPerPeer >= maxFrameBytes, "a peer's queue must hold a frame of maxFrameBytes")
            precondition(maxHandshakeFrameBytes > 0 && maxPendingHandshakes > 0 && handshakeTimeoutMillis > 0)
            precondition(deadPeerTimeoutMillis > 0)
            precondition(
                writeBufferLowWaterMarkBytes > 0 && writeBufferLowWaterMarkBytes <= writeBufferHighWaterMarkBytes)
            reconnectBackoff.checkInvariants()
        }
    }

    /// Reconnect delays: `initialMillis` doubling per failed attempt up to `maxMillis`, each
    /// scaled down by up to `jitterFraction` at random so that nodes restarted together do not
    /// redial in lockstep.
    public struct ReconnectBackoff: Sendable, Equatable {
        public var initialMillis: Int64 = 100
        public var maxMillis: Int64 = 5000
        public var jitterFraction = 0.5
        /// A connection that stayed up this long resets the delay to `initialMillis`; one
        /// closed sooner (a peer that refuses after the handshake) keeps doubling it.
        public var stableConnectionMillis: Int64 = 1000

        public init() {}

        public init(initialMillis: Int64, maxMillis: Int64, jitterFraction: Double = 0.5) {
            self.initialMillis = initialMillis
            self.maxMillis = maxMillis
            self.jitterFraction = jitterFraction
        }

        func checkInvariants() {
            precondition(initialMillis > 0 && initialMillis <= maxMillis, "reconnect backoff delays")
            precondition(jitterFraction >= 0 && jitterFraction <= 1, "reconnect jitter fraction")
        }

        /// The delay before reconnect attempt `attempt` (0 for the first retry); `random` is in
        /// [0, 1).
        public func delayMillis(attempt: Int, random: Double) -> Int64 {
            let doublings = min(attempt, 62)
            let base =
                initialMillis > maxMillis >> Int64(doublings)
                ? maxMillis : min(maxMillis, initialMillis << Int64(doublings))
            let jitter = Double(base) * jitterFraction * min(max(random, 0), 1)
            return max(1, base - Int64(jitter))
        }
    }
}
