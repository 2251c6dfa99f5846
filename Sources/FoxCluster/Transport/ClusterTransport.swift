import Crypto
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The authenticated transport between the nodes of a cluster: length-prefixed frames over TCP,
/// one authenticated connection per direction and pair.
///
/// **Topology.** Every node dials every other member and sends its own messages on that
/// outbound connection only; it receives on the connections the others dialed to it. Two
/// connections per pair and no tie-break: there is no race between two nodes dialing each other
/// at once, the side that has something to send is the side that reconnects, and a connection
/// carries one direction so its failure affects exactly one queue. The acceptor writes nothing
/// after the handshake (a frame from it closes the connection). `connectedPeers` and
/// `onPeerState` are about the outbound connections: the peers this node can send to now.
///
/// **Handshake.** See `ClusterHandshakeStateMachine`: both sides show the same book digest and
/// sign the other's nonce with the key the book gives them (ECDSA P-256, SHA-256). Nothing is
/// delivered before it completes, and a refusal is logged with its reason (a digest mismatch
/// names the differing book entries). A newer authenticated inbound connection from a peer
/// replaces the older one.
///
/// **Queues.** Messages for a peer wait in a queue bounded by `maxQueuedBytesPerPeer`, while
/// the peer is unreachable too; a full queue drops its oldest frames (counted in `metrics`).
/// The queue drains into the socket only while the channel is writable (its watermarks), so
/// nothing else buffers without bound. Reconnects back off exponentially with jitter.
///
/// **Threads.** All methods may be called from any thread. `onMessage` and `onPeerState` are
/// called on an event loop thread (`onPeerState(_, false)` also on the thread that calls
/// `setBlocked` or `stop`), never with a lock held: they must hand the work off quickly (to the
/// consensus executor), never block or wait. The messages of one peer arrive in the order it
/// sent them; a connection that breaks loses what it had in flight (consensus syncs). The
/// group must be a NIOPosix group (`MultiThreadedEventLoopGroup`).
///
/// **TLS.** Not in this version. It belongs in front of `ClusterConnectionHandler` in each
/// channel's pipeline (the handler reads and writes plain `ByteBuffer`s), with the handshake
/// kept on top of it.
public final class ClusterTransport: Sendable {
    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let onMessage: @Sendable (_ from: UInt16, _ bytes: [UInt8]) -> Void
    private let onPeerState: @Sendable (_ peer: UInt16, _ connected: Bool) -> Void
    let handshakeContext: ClusterHandshakeContext
    /// Where each member is dialed; nil for this node and for unparseable addresses.
    private let dialTargets: [(host: String, port: Int)?]
    private let state: Mutex<State>

    /// A drain writes up to this much before it takes the lock again.
    private static let drainBatchBytes = 256 << 10

    public init(
        configuration: Configuration, group: any EventLoopGroup, logger: Logger,
        onMessage: @escaping @Sendable (_ from: UInt16, _ bytes: [UInt8]) -> Void,
        onPeerState: @escaping @Sendable (_ peer: UInt16, _ connected: Bool) -> Void = { _, _ in }
    ) {
        configuration.checkInvariants()
        self.configuration = configuration
        self.group = group
        var logger = logger
        logger[metadataKey: "cluster-node"] = "\(configuration.me.index)"
        self.logger = logger
        self.onMessage = onMessage
        self.onPeerState = onPeerState
        let publicKeys = configuration.members.map { member in
            guard let key = try? P256.Signing.PublicKey(derRepresentation: member.publicKeyDER) else {
                preconditionFailure("\(member): the key is not a P-256 SubjectPublicKeyInfo")
            }
            return key
        }
        handshakeContext = ClusterHandshakeContext(
            me: configuration.me.index, members: configuration.members, publicKeys: publicKeys,
            key: configuration.key, digest: configuration.bookDigest, entries: configuration.bookEntries)
        dialTargets = configuration.members.map { member in
            member.index == configuration.me.index ? nil : Self.splitAddress(member.address)
        }
        state = Mutex(
            State(memberCount: configuration.members.count, maxQueuedBytes: configuration.maxQueuedBytesPerPeer))
    }

    // MARK: - Public API

    /// Binds the listener, then starts dialing every other member.
    public func start() async throws {
        state.withLock { state in
            guard case .idle = state.lifecycle else { preconditionFailure("ClusterTransport.start() called twice") }
            state.lifecycle = .starting
        }
        if Array(configuration.key.publicKey.derRepresentation) != configuration.me.publicKeyDER {
            logger.error(
                "this node's key is not the one its book entry gives: every peer will refuse it",
                metadata: ["entry": "\(configuration.me.bookPosition)"])
        }
        for member in configuration.members where member.index != configuration.me.index {
            if dialTargets[Int(member.index)] == nil {
                logger.error("\(member): the address is not host:port; it will not be dialed")
            }
        }
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(
                    .writeBufferWaterMark,
                    value: .init(
                        low: configuration.writeBufferLowWaterMarkBytes,
                        high: configuration.writeBufferHighWaterMarkBytes)
                )
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        let id = try self.admitInbound(channel)
                        try Self.applySocketOptions(
                            to: channel, deadPeerTimeoutMillis: self.configuration.deadPeerTimeoutMillis)
                        if let tls = self.configuration.tls {
                            let remote = Self.describe(channel.remoteAddress)
                            try channel.pipeline.syncOperations.addHandler(
                                tls.handler(server: true, logger: self.logger) {
                                    "an inbound connection from \(remote)"
                                })
                        }
                        let handler = ClusterConnectionHandler(
                            transport: self, role: .acceptor, connectionID: id, logger: self.logger)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .bind(host: configuration.listenHost, port: configuration.listenPort).get()
        } catch {
            state.withLock { $0.lifecycle = .stopped }
            throw error
        }
        let proceed = state.withLock { state in
            guard case .starting = state.lifecycle else { return false }
            state.lifecycle = .running(server: server)
            return true
        }
        guard proceed else {
            // stop() came first.
            try? await server.close()
            return
        }
        logger.info("cluster transport listening on \(Self.describe(server.localAddress))")
        for member in configuration.members where member.index != configuration.me.index {
            dial(member.index, retryOf: nil)
        }
    }

    /// Queues a message for `peer` (never this node) and sends it as soon as the connection
    /// allows. Messages to a blocked peer are dropped; after `stop()` they are ignored.
    public func send(to peer: UInt16, _ bytes: [UInt8]) {
        precondition(Int(peer) < configuration.members.count && peer != configuration.me.index, "send to node \(peer)")
        precondition(bytes.count <= configuration.maxFrameBytes, "a message longer than maxFrameBytes")
        enqueue(ClusterFrame.encode(bytes), to: CollectionOfOne(peer))
    }

    /// Queues a message for every other member (one shared buffer).
    public func broadcast(_ bytes: [UInt8]) {
        precondition(bytes.count <= configuration.maxFrameBytes, "a message longer than maxFrameBytes")
        let me = configuration.me.index
        enqueue(ClusterFrame.encode(bytes), to: configuration.members.lazy.map(\.index).filter { $0 != me })
    }

    /// Closes the listener and every connection and stops dialing. Queued messages are lost.
    public func stop() async {
        let (server, channels, wereConnected) = state.withLock { state in
            let server: (any Channel)?
            if case .running(let channel) = state.lifecycle { server = channel } else { server = nil }
            state.lifecycle = .stopped
            var wereConnected: [UInt16] = []
            for index in state.links.indices {
                if case .connected = state.links[index].outbound { wereConnected.append(UInt16(index)) }
                if case .waiting(_, let task) = state.links[index].outbound { task.cancel() }
                state.links[index].outbound = .idle
                _ = state.links[index].queue.removeAll()
            }
            state.inbound.removeAll()
            return (server, Array(state.channels.values), wereConnected)
        }
        for peer in wereConnected { onPeerState(peer, false) }
        if let server { try? await server.close() }
        for channel in channels {
            channel.close(promise: nil)
            try? await channel.closeFuture.get()
        }
        logger.info("cluster transport stopped")
    }

    /// The peers with an authenticated outbound connection (those this node can send to now).
    public var connectedPeers: [UInt16] {
        state.withLock { state in
            state.links.indices.compactMap { index in
                if case .connected = state.links[index].outbound { return UInt16(index) }
                return nil
            }
        }
    }

    /// The listener's address once started (port 0 resolved).
    public var boundAddress: SocketAddress? {
        state.withLock { state in
            if case .running(let server) = state.lifecycle { return server.localAddress }
            return nil
        }
    }

    public var metrics: Metrics {
        state.withLock { state in
            var metrics = state.metrics
            for index in state.links.indices where index != Int(configuration.me.index) {
                var peer = state.links[index].metrics
                peer.framesQueued = state.links[index].queue.count
                peer.bytesQueued = state.links[index].queue.bytes
                metrics.peers[UInt16(index)] = peer
            }
            return metrics
        }
    }

    /// Fault injection (tests): drops all traffic to and from `peers` until they are unblocked.
    /// Their connections close, their queues are emptied, new connections from them are refused
    /// and no connection to them is dialed; messages to them are dropped (counted). Replaces
    /// the previous set; unblocked peers are dialed again at once.
    public func setBlocked(_ peers: Set<UInt16>) {
        let (toClose, disconnected, toDial) = state.withLock { state in
            let newlyBlocked = peers.subtracting(state.blocked)
            let unblocked = state.blocked.subtracting(peers)
            state.blocked = peers
            var toClose: [any Channel] = []
            var disconnected: [UInt16] = []
            for peer in newlyBlocked where Int(peer) < state.links.count && peer != configuration.me.index {
                var link = state.links[Int(peer)]
                link.metrics.framesDroppedBlocked += UInt64(link.queue.removeAll())
                switch link.outbound {
                case .idle: break
                case .connecting(let id):
                    if let channel = state.channels[id] { toClose.append(channel) }
                case .connected(let connected):
                    toClose.append(connected.channel)
                    disconnected.append(peer)
                case .waiting(_, let task):
                    task.cancel()
                }
                link.outbound = .idle
                state.links[Int(peer)] = link
                if let inbound = state.inbound.removeValue(forKey: peer) { toClose.append(inbound.channel) }
            }
            var toDial: [UInt16] = []
            if state.isRunning {
                for peer in unblocked where Int(peer) < state.links.count && peer != configuration.me.index {
                    state.links[Int(peer)].attempt = 0
                    if case .idle = state.links[Int(peer)].outbound { toDial.append(peer) }
                }
            }
            return (toClose, disconnected, toDial)
        }
        if !peers.isEmpty || !toDial.isEmpty {
            logger.notice("fault injection: blocked peers \(peers.sorted())")
        }
        for channel in toClose { channel.close(promise: nil) }
        for peer in disconnected { onPeerState(peer, false) }
        for peer in toDial { dial(peer, retryOf: nil) }
    }

    // MARK: - State

    private struct State {
        var lifecycle = Lifecycle.idle
        /// Indexed by member; this node's own entry is unused.
        var links: [PeerLink]
        /// The authenticated inbound connection of each peer.
        var inbound: [UInt16: (id: UInt64, channel: any Channel)] = [:]
        /// Every open connection, in any phase, for `stop()`.
        var channels: [UInt64: any Channel] = [:]
        var pendingInbound = 0
        var blocked: Set<UInt16> = []
        var nextID: UInt64 = 1
        /// The counters not kept per peer (`PeerLink.metrics` holds those).
        var metrics = Metrics()

        init(memberCount: Int, maxQueuedBytes: Int) {
            links = (0..<memberCount).map { _ in PeerLink(queue: ClusterOutboundQueue(maxBytes: maxQueuedBytes)) }
        }

        mutating func makeID() -> UInt64 {
            defer { nextID += 1 }
            return nextID
        }

        /// Started and not stopped. `starting` counts: the listener accepts from the moment it is
        /// bound, before `start()` has stored it.
        var isRunning: Bool {
            switch lifecycle {
            case .starting, .running: true
            case .idle, .stopped: false
            }
        }
    }

    private enum Lifecycle {
        case idle
        case starting
        case running(server: any Channel)
        case stopped
    }

    /// The outbound side of one peer: its queue and its connection.
    private struct PeerLink {
        var queue: ClusterOutboundQueue
        var outbound = Outbound.idle
        /// Failed attempts since the last stable connection (the backoff exponent).
        var attempt = 0
        var metrics = PeerMetrics()
    }

    private enum Outbound {
        /// Not dialing: before start, after stop, while blocked.
        case idle
        /// TCP connect and handshake of connection `id`.
        case connecting(id: UInt64)
        case connected(Connected)
        /// Waiting to redial; `id` names the timer.
        case waiting(id: UInt64, task: Scheduled<Void>)
    }

    private struct Connected {
        var id: UInt64
        var channel: any Channel
        var since: NIODeadline
        /// A drain is scheduled or running for this connection.
        var draining: Bool
    }

    // MARK: - Outbound

    /// Starts connection attempt for `peer`, if it should be dialed now. `retryOf` is the timer
    /// that fired, nil for a first dial.
    private func dial(_ peer: UInt16, retryOf timer: UInt64?) {
        guard let target = dialTargets[Int(peer)] else { return }
        let id: UInt64? = state.withLock { state in
            guard state.isRunning, !state.blocked.contains(peer) else { return nil }
            switch state.links[Int(peer)].outbound {
            case .idle where timer == nil: break
            case .waiting(let id, _) where id == timer: break
            default: return nil
            }
            let id = state.makeID()
            state.links[Int(peer)].outbound = .connecting(id: id)
            return id
        }
        guard let id else { return }
        ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(configuration.handshakeTimeoutMillis))
            .channelOption(
                .writeBufferWaterMark,
                value: .init(
                    low: configuration.writeBufferLowWaterMarkBytes, high: configuration.writeBufferHighWaterMarkBytes)
            )
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.registerOutbound(channel, peer: peer, id: id)
                    try Self.applySocketOptions(
                        to: channel, deadPeerTimeoutMillis: self.configuration.deadPeerTimeoutMillis)
                    if let tls = self.configuration.tls {
                        let name = self.handshakeContext.name(peer)
                        try channel.pipeline.syncOperations.addHandler(
                            tls.handler(server: false, logger: self.logger) { "the connection to \(name)" })
                    }
                    let handler = ClusterConnectionHandler(
                        transport: self, role: .dialer(peer: peer), connectionID: id, logger: self.logger)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: target.host, port: target.port)
            .whenFailure { [self] error in
                logger.debug("cannot connect to \(handshakeContext.name(peer)): \(error)")
                outboundEnded(peer: peer, id: id)
            }
    }

    private struct NotDialing: Error {}

    private func registerOutbound(_ channel: any Channel, peer: UInt16, id: UInt64) throws {
        try state.withLock { state in
            guard state.isRunning, case .connecting(id) = state.links[Int(peer)].outbound else { throw NotDialing() }
            state.channels[id] = channel
        }
    }

    /// The dialer's handshake completed; false when the connection is no longer wanted.
    func outboundAuthenticated(peer: UInt16, id: UInt64, channel: any Channel) -> Bool {
        let result: (accepted: Bool, drain: Bool) = state.withLock { state in
            guard state.isRunning, !state.blocked.contains(peer), case .connecting(id) = state.links[Int(peer)].outbound
            else { return (false, false) }
            let drain = !state.links[Int(peer)].queue.isEmpty
            state.links[Int(peer)].outbound = .connected(
                Connected(id: id, channel: channel, since: .now(), draining: drain))
            state.links[Int(peer)].metrics.connections += 1
            return (true, drain)
        }
        guard result.accepted else { return false }
        logger.info("connected to \(handshakeContext.name(peer))")
        onPeerState(peer, true)
        if result.drain {
            channel.eventLoop.execute { self.drain(peer: peer, id: id, channel: channel) }
        }
        return true
    }

    /// The dialer's connection `id` is gone (connect failed, refused or closed): redial after
    /// the backoff unless the peer is not to be dialed now.
    private func outboundEnded(peer: UInt16, id: UInt64) {
        let (wasConnected, delay): (Bool, Int64?) = state.withLock { state in
            state.channels.removeValue(forKey: id)
            var link = state.links[Int(peer)]
            let wasConnected: Bool
            switch link.outbound {
            case .connecting(id):
                wasConnected = false
            case .connected(let connected) where connected.id == id:
                wasConnected = true
                if NIODeadline.now() - connected.since
                    >= .milliseconds(configuration.reconnectBackoff.stableConnectionMillis)
                {
                    link.attempt = 0
                }
            default:
                return (false, nil)
            }
            guard state.isRunning, !state.blocked.contains(peer) else {
                link.outbound = .idle
                state.links[Int(peer)] = link
                return (wasConnected, nil)
            }
            let delay = configuration.reconnectBackoff.delayMillis(
                attempt: link.attempt, random: configuration.randomUnit())
            link.attempt += 1
            let timer = state.makeID()
            let task = group.next().scheduleTask(in: .milliseconds(delay)) { [self] in
                dial(peer, retryOf: timer)
            }
            link.outbound = .waiting(id: timer, task: task)
            state.links[Int(peer)] = link
            return (wasConnected, delay)
        }
        if wasConnected {
            logger.info("disconnected from \(handshakeContext.name(peer))")
            onPeerState(peer, false)
        }
        if let delay {
            logger.trace("redialing \(handshakeContext.name(peer)) in \(delay) ms")
        }
    }

    private func enqueue(_ frame: ByteBuffer, to peers: some Sequence<UInt16>) {
        let payloadBytes = frame.readableBytes - ClusterFrame.headerBytes
        var drains: [(peer: UInt16, id: UInt64, channel: any Channel)] = []
        var dropped: [(peer: UInt16, count: Int)] = []
        state.withLock { state in
            if case .stopped = state.lifecycle { return }
            for peer in peers {
                // In place: a copy of the link would share the queue's storage, and the append
                // would then copy every queued frame (a dead peer's 64 MiB on every message).
                let index = Int(peer)
                guard !state.blocked.contains(peer) else {
                    state.links[index].metrics.framesDroppedBlocked += 1
                    continue
                }
                let droppedCount = state.links[index].queue.append(frame)
                if droppedCount > 0 {
                    state.links[index].metrics.framesDroppedQueueFull += UInt64(droppedCount)
                    dropped.append((peer, droppedCount))
                }
                if case .connected(var connected) = state.links[index].outbound, !connected.draining {
                    connected.draining = true
                    state.links[index].outbound = .connected(connected)
                    drains.append((peer, connected.id, connected.channel))
                }
            }
        }
        for (peer, count) in dropped {
            logger.debug(
                "the queue to \(handshakeContext.name(peer)) is full: dropped its \(count) oldest frames",
                metadata: ["payloadBytes": "\(payloadBytes)"])
        }
        for (peer, id, channel) in drains {
            channel.eventLoop.execute { self.drain(peer: peer, id: id, channel: channel) }
        }
    }

    /// Writes the peer's queue into its connection while the channel is writable. Runs on the
    /// channel's event loop, where writability changes, so that a drain that stops on an
    /// unwritable channel is always followed by `outboundWritable`.
    private func drain(peer: UInt16, id: UInt64, channel: any Channel) {
        channel.eventLoop.preconditionInEventLoop()
        while true {
            let batch: [ByteBuffer] = state.withLock { state in
                guard case .connected(var connected) = state.links[Int(peer)].outbound, connected.id == id else {
                    return []
                }
                var batch: [ByteBuffer] = []
                if channel.isWritable {
                    batch = state.links[Int(peer)].queue.popBatch(batchBytes: Self.drainBatchBytes)
                }
                if batch.isEmpty {
                    connected.draining = false
                    state.links[Int(peer)].outbound = .connected(connected)
                    return []
                }
                let bytes = batch.reduce(0) { $0 + $1.readableBytes - ClusterFrame.headerBytes }
                state.links[Int(peer)].metrics.framesSent += UInt64(batch.count)
                state.links[Int(peer)].metrics.bytesSent += UInt64(bytes)
                return batch
            }
            guard !batch.isEmpty else { return }
            for frame in batch {
                channel.write(frame, promise: nil)
            }
            channel.flush()
        }
    }

    /// The outbound channel became writable again.
    func outboundWritable(peer: UInt16, id: UInt64, channel: any Channel) {
        let start = state.withLock { state in
            guard case .connected(var connected) = state.links[Int(peer)].outbound, connected.id == id,
                !connected.draining, !state.links[Int(peer)].queue.isEmpty
            else { return false }
            connected.draining = true
            state.links[Int(peer)].outbound = .connected(connected)
            return true
        }
        if start { drain(peer: peer, id: id, channel: channel) }
    }

    // MARK: - Inbound

    private struct Refused: Error {}

    /// A new inbound connection: its id, or an error (which closes it) when the transport is not
    /// running or too many handshakes are pending.
    private func admitInbound(_ channel: any Channel) throws -> UInt64 {
        enum Admission {
            case admitted(UInt64)
            case notRunning
            case tooManyPending
        }
        let admission: Admission = state.withLock { state in
            guard state.isRunning else { return .notRunning }
            guard state.pendingInbound < configuration.maxPendingHandshakes else {
                state.metrics.handshakeFailures[.tooManyPending, default: 0] += 1
                return .tooManyPending
            }
            state.pendingInbound += 1
            let id = state.makeID()
            state.channels[id] = channel
            return .admitted(id)
        }
        switch admission {
        case .admitted(let id):
            return id
        case .notRunning:
            throw Refused()
        case .tooManyPending:
            logger.warning(
                "refused an inbound connection from \(Self.describe(channel.remoteAddress)): \(HandshakeFailure.tooManyPending) (\(configuration.maxPendingHandshakes))"
            )
            throw Refused()
        }
    }

    /// Whether `peer` may connect now (the handshake asks).
    func admits(_ peer: UInt16) -> Bool {
        state.withLock { $0.isRunning && !$0.blocked.contains(peer) }
    }

    /// The acceptor's handshake completed; false when the peer is no longer admitted.
    func inboundAuthenticated(peer: UInt16, id: UInt64, channel: any Channel) -> Bool {
        let (accepted, replaced, redial): (Bool, (any Channel)?, UInt64?) = state.withLock { state in
            state.pendingInbound -= 1
            guard state.isRunning, !state.blocked.contains(peer) else { return (false, nil, nil) }
            let replaced = state.inbound[peer]?.channel
            state.inbound[peer] = (id, channel)
            // The peer is back: if this side waits out a backoff to reach it (up to
            // `maxMillis`, while the peer cannot hear from this node), dial it now instead.
            var redial: UInt64?
            if case .waiting(let timer, let task) = state.links[Int(peer)].outbound {
                task.cancel()
                state.links[Int(peer)].attempt = 0
                redial = timer
            }
            return (true, replaced, redial)
        }
        guard accepted else { return false }
        if let redial { dial(peer, retryOf: redial) }
        if let replaced {
            logger.info("\(handshakeContext.name(peer)) connected again: its newer connection replaces the older")
            replaced.close(promise: nil)
        } else {
            logger.info("\(handshakeContext.name(peer)) connected")
        }
        return true
    }

    /// Hands messages of an authenticated inbound connection to `onMessage`, unless the peer is
    /// blocked or the transport stopped.
    func deliver(_ messages: [[UInt8]], from peer: UInt16) {
        let deliver = state.withLock { state in
            guard state.isRunning, !state.blocked.contains(peer) else {
                state.links[Int(peer)].metrics.framesDroppedBlocked += UInt64(messages.count)
                return false
            }
            state.links[Int(peer)].metrics.framesReceived += UInt64(messages.count)
            state.links[Int(peer)].metrics.bytesReceived += UInt64(messages.reduce(0) { $0 + $1.count })
            return true
        }
        guard deliver else { return }
        for message in messages { onMessage(peer, message) }
    }

    /// A connection of either role closed. `peer` is known once authenticated; `released` says
    /// whether an acceptor's pending handshake was already released by `inboundAuthenticated`.
    func connectionClosed(role: ClusterConnectionHandler.Role, id: UInt64, peer: UInt16?, released: Bool) {
        switch role {
        case .dialer(let peer):
            outboundEnded(peer: peer, id: id)
        case .acceptor:
            let closedPeer: UInt16? = state.withLock { state in
                state.channels.removeValue(forKey: id)
                if !released { state.pendingInbound -= 1 }
                guard let peer, state.inbound[peer]?.id == id else { return nil }
                state.inbound.removeValue(forKey: peer)
                return peer
            }
            if let closedPeer { logger.info("\(handshakeContext.name(closedPeer)) disconnected") }
        }
    }

    // MARK: - Failures

    /// Logs and counts a refused handshake, in that order: whoever sees the count can read the
    /// log line. Refusals after `stop()` are the transport's own.
    func recordRefusal(_ refusal: ClusterRefusal, connection: String) {
        guard state.withLock({ $0.isRunning }) else { return }
        defer { state.withLock { $0.metrics.handshakeFailures[refusal.reason, default: 0] += 1 } }
        switch refusal.reason {
        case .closed:
            logger.info("\(connection) closed during the handshake (\(refusal.detail))")
        case .blocked:
            logger.info("refused \(connection): \(refusal.reason): \(refusal.detail)")
        default:
            logger.warning("refused \(connection): \(refusal.reason): \(refusal.detail)")
        }
    }

    /// An authenticated connection broke the protocol (an oversize frame, or a frame on an
    /// outbound connection); it is being closed. Logged before it is counted, as a refusal is.
    func recordViolation(oversize: Bool, connection: String, detail: String) {
        logger.warning("closing \(connection): \(detail)")
        state.withLock { state in
            if oversize { state.metrics.oversizeFrames += 1 } else { state.metrics.unexpectedFrames += 1 }
        }
    }

    // MARK: - Addresses

    /// `host:port` or `[v6 address]:port`.
    static func splitAddress(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil
        }
        return host.isEmpty ? nil : (host, port)
    }
}
