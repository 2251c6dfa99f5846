import Logging
import NIOCore

/// The channel side of one cluster connection: frames the bytes (`ClusterFrameReader`), runs
/// the handshake (`ClusterHandshakeStateMachine`) and performs its actions, then hands an
/// acceptor's messages to the transport. The decisions are in those two values and in the
/// transport; this handler only reads, writes and closes.
final class ClusterConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role: Equatable {
        /// This node dialed `peer`; it sends on this connection and receives nothing after the
        /// handshake.
        case dialer(peer: UInt16)
        /// A peer dialed this node; it receives on this connection.
        case acceptor
    }

    private enum Phase {
        case handshaking
        case authenticated(peer: UInt16)
        /// This side decided to close; nothing more is read.
        case closing
    }

    private let transport: ClusterTransport
    private let role: Role
    private let connectionID: UInt64
    private let logger: Logger
    private var machine: ClusterHandshakeStateMachine
    private var reader: ClusterFrameReader
    private var phase = Phase.handshaking
    private var timeout: Scheduled<Void>?
    /// The transport knows the connection is closed.
    private var reportedClosed = false
    /// An acceptor's pending handshake was released by `inboundAuthenticated`.
    private var released = false
    private var peerName: String

    init(transport: ClusterTransport, role: Role, connectionID: UInt64, logger: Logger) {
        self.transport = transport
        self.role = role
        self.connectionID = connectionID
        self.logger = logger
        var nonce = [UInt8](repeating: 0, count: ClusterHandshakeMessage.nonceBytes)
        var random = SystemRandomNumberGenerator()
        for position in nonce.indices { nonce[position] = random.next() }
        let machineRole: ClusterHandshakeStateMachine.Role
        switch role {
        case .dialer(let peer):
            machineRole = .dialer(peer: peer)
            peerName = "the connection to \(transport.handshakeContext.name(peer))"
        case .acceptor:
            machineRole = .acceptor
            peerName = "an inbound connection"
        }
        machine = ClusterHandshakeStateMachine(role: machineRole, context: transport.handshakeContext, nonce: nonce)
        reader = ClusterFrameReader(maxFrameBytes: transport.configuration.maxHandshakeFrameBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        if case .acceptor = role {
            peerName = "an inbound connection from \(ClusterTransport.describe(context.remoteAddress))"
        }
        timeout = context.eventLoop.assumeIsolated().scheduleTask(
            in: .milliseconds(transport.configuration.handshakeTimeoutMillis)
        ) { [self] in
            guard case .handshaking = phase else { return }
            refuse(
                ClusterRefusal(
                    reason: .timeout,
                    detail: "no handshake within \(transport.configuration.handshakeTimeoutMillis) ms"),
                reply: [], context: context)
        }
        write(machine.start(), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.append(unwrapInboundIn(data))
        var messages: [[UInt8]] = []
        reading: while true {
            let frame: ByteBuffer
            do {
                guard let next = try reader.next() else { break }
                frame = next
            } catch {
                tooLarge(error, context: context)
                break
            }
            switch (phase, role) {
            case (.handshaking, _):
                switch machine.receive(frame, admits: transport.admits) {
                case .send(let payloads):
                    write(payloads, context: context)
                case .authenticated(let peer, let payloads):
                    write(payloads, context: context)
                    authenticated(peer, context: context)
                case .refuse(let refusal, let payloads):
                    refuse(refusal, reply: payloads, context: context)
                }
            case (.authenticated, .acceptor):
                messages.append(Array(frame.readableBytesView))
            case (.authenticated, .dialer):
                transport.recordViolation(
                    oversize: false, connection: peerName,
                    detail: "the acceptor sent a frame (\(frame.readableBytes) bytes) after the handshake")
                close(context: context)
            case (.closing, _):
                break reading
            }
        }
        // Messages read before an oversize frame are still delivered.
        if !messages.isEmpty, let peer = machine.peer {
            transport.deliver(messages, from: peer)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .authenticated(let peer) = phase, case .dialer = role, context.channel.isWritable {
            transport.outboundWritable(peer: peer, id: connectionID, channel: context.channel)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .handshaking = phase {
            transport.recordRefusal(
                ClusterRefusal(reason: .closed, detail: "by the peer; its log says why"),
                connection: peerName)
        }
        reportClosed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A connection that never became active (or a pipeline torn down) ends here.
        reportClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .handshaking = phase, transport.configuration.tls != nil {
            // Under TLS, an error before authentication is the TLS handshake failing.
            refuse(ClusterRefusal(reason: .tls, detail: "\(error)"), reply: [], context: context)
            return
        }
        logger.debug("\(peerName): \(error)")
        close(context: context)
    }

    // MARK: - Actions

    private func authenticated(_ peer: UInt16, context: ChannelHandlerContext) {
        if transport.configuration.tls != nil {
            // The TLS certificate must be of the key that signed the handshake: otherwise a
            // member could relay another's handshake and read the traffic.
            let expected = transport.handshakeContext.members[Int(peer)].publicKeyDER
            guard ClusterTLS.peerKey(context.pipeline.syncOperations) == expected else {
                refuse(
                    ClusterRefusal(
                        reason: .certificateOfAnotherKey,
                        detail:
                            "\(transport.handshakeContext.name(peer)) signed the handshake, but its TLS certificate is of another key"
                    ), reply: [], context: context)
                return
            }
        }
        timeout?.cancel()
        timeout = nil
        phase = .authenticated(peer: peer)
        reader.maxFrameBytes = transport.configuration.maxFrameBytes
        let keep: Bool
        switch role {
        case .dialer:
            peerName = "the connection to \(transport.handshakeContext.name(peer))"
            keep = transport.outboundAuthenticated(peer: peer, id: connectionID, channel: context.channel)
        case .acceptor:
            peerName = "the connection from \(transport.handshakeContext.name(peer))"
            released = true
            keep = transport.inboundAuthenticated(peer: peer, id: connectionID, channel: context.channel)
        }
        if !keep { close(context: context) }
    }

    private func refuse(_ refusal: ClusterRefusal, reply: [[UInt8]], context: ChannelHandlerContext) {
        transport.recordRefusal(refusal, connection: peerName)
        phase = .closing
        timeout?.cancel()
        timeout = nil
        // Close once the reply is written, so that the peer can log the mismatch too.
        var written: EventLoopFuture<Void>?
        for payload in reply {
            written = context.write(wrapOutboundOut(ClusterFrame.encode(payload)))
        }
        context.flush()
        guard let written else {
            context.close(promise: nil)
            return
        }
        written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func tooLarge(_ error: ClusterFrameTooLarge, context: ChannelHandlerContext) {
        switch phase {
        case .handshaking:
            refuse(
                ClusterRefusal(reason: .oversizeFrame, detail: "\(error) before the handshake"), reply: [],
                context: context)
        case .authenticated:
            transport.recordViolation(oversize: true, connection: peerName, detail: "\(error) (maxFrameBytes)")
            close(context: context)
        case .closing:
            break
        }
    }

    private func close(context: ChannelHandlerContext) {
        if case .closing = phase { return }
        phase = .closing
        timeout?.cancel()
        timeout = nil
        context.close(promise: nil)
    }

    private func write(_ payloads: [[UInt8]], context: ChannelHandlerContext) {
        for payload in payloads {
            context.write(wrapOutboundOut(ClusterFrame.encode(payload)), promise: nil)
        }
        if !payloads.isEmpty { context.flush() }
    }

    private func reportClosed() {
        guard !reportedClosed else { return }
        reportedClosed = true
        timeout?.cancel()
        timeout = nil
        let peer: UInt16? = machine.peer
        transport.connectionClosed(role: role, id: connectionID, peer: peer, released: released)
    }
}
