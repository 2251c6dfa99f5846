extension ClusterTransport {
    /// The transport's counters, read as one snapshot (`ClusterTransport.metrics`). Bytes are
    /// message payload bytes, without the 4-byte frame headers and without the handshake.
    public struct Metrics: Sendable, Equatable {
        public var peers: [UInt16: PeerMetrics] = [:]
        /// Refused connections by reason (either side of the handshake).
        public var handshakeFailures: [HandshakeFailure: UInt64] = [:]
        /// Authenticated connections closed because a frame exceeded `maxFrameBytes`.
        public var oversizeFrames: UInt64 = 0
        /// Authenticated outbound connections closed because the acceptor sent a frame (it only
        /// receives once authenticated).
        public var unexpectedFrames: UInt64 = 0

        public init() {}

        public var framesSent: UInt64 { peers.values.reduce(0) { $0 + $1.framesSent } }
        public var bytesSent: UInt64 { peers.values.reduce(0) { $0 + $1.bytesSent } }
        public var framesReceived: UInt64 { peers.values.reduce(0) { $0 + $1.framesReceived } }
        public var bytesReceived: UInt64 { peers.values.reduce(0) { $0 + $1.bytesReceived } }
        public var framesDropped: UInt64 {
            peers.values.reduce(0) { $0 + $1.framesDroppedQueueFull + $1.framesDroppedBlocked }
        }

        public func handshakeFailures(_ reason: HandshakeFailure) -> UInt64 { handshakeFailures[reason] ?? 0 }
        public func peer(_ index: UInt16) -> PeerMetrics { peers[index] ?? PeerMetrics() }
    }

    public struct PeerMetrics: Sendable, Equatable {
        /// Frames written to the peer's connection (not necessarily received: a connection that
        /// breaks loses what it had buffered).
        public var framesSent: UInt64 = 0
        public var bytesSent: UInt64 = 0
        /// Frames delivered to `onMessage`.
        public var framesReceived: UInt64 = 0
        public var bytesReceived: UInt64 = 0
        /// The oldest queued frames dropped to make room (`maxQueuedBytesPerPeer`).
        public var framesDroppedQueueFull: UInt64 = 0
        /// Frames to or from the peer dropped while it was blocked (`setBlocked`), including the
        /// queue dropped when it became blocked.
        public var framesDroppedBlocked: UInt64 = 0
        /// Now in the outbound queue; `bytesQueued` counts the frame headers too, as the bound
        /// (`maxQueuedBytesPerPeer`) does.
        public var framesQueued: Int = 0
        public var bytesQueued: Int = 0
        /// Outbound connections authenticated so far.
        public var connections: UInt64 = 0

        public init() {}
    }
}
