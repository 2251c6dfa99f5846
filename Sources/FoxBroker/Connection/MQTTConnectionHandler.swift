import FoxMQTT
import Logging
import NIOCore

/// The channel handler of one client connection, TCP or WebSocket alike: it frames and decodes
/// bytes, feeds packets and timer expiries to the `ConnectionStateMachine`, and carries out its
/// outputs. All protocol decisions are the state machine's; all state decisions the broker's.
final class MQTTConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let services: BrokerServices
    private var machine: ConnectionStateMachine
    private var frameDecoder: FrameDecoder
    private var inbound: ByteBuffer?
    private var outputs: [ConnectionStateMachine.Output] = []
    private var outbound: ByteBuffer?
    private var isFlushScheduled = false
    private var context: ChannelHandlerContext?
    private var connectTimeout: Scheduled<Void>?
    private var keepAliveTask: RepeatedTask?
    private var lastPacketTime = NIODeadline.now()
    private var logger: Logger

    init(connection: ConnectionID, services: BrokerServices) {
        self.services = services
        machine = ConnectionStateMachine(connection: connection, limits: services.limits)
        frameDecoder = FrameDecoder(maximumPacketSize: services.limits.maximumPacketSizeBytes)
        logger = services.logger
        logger[metadataKey: "connection"] = "\(connection)"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Added after a WebSocket upgrade, the channel is already active: no channelActive comes.
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        let handle = ConnectionHandle(eventLoop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        guard services.registry.register(machine.connection, handle, countMax: services.limits.connectionCountMax) else {
            logger.warning("connection refused: \(services.limits.connectionCountMax) connections open")
            context.close(promise: nil)
            return
        }
        if let remote = context.remoteAddress { logger[metadataKey: "remote"] = "\(remote)" }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        connectTimeout = context.eventLoop.scheduleTask(in: .seconds(Int64(services.limits.connectTimeoutSeconds))) {
            loopBoundSelf.value.run { machine, outputs in machine.connectTimedOut(into: &outputs) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectTimeout?.cancel()
        keepAliveTask?.cancel()
        run { machine, outputs in machine.channelClosed(into: &outputs) }
        services.registry.unregister(machine.connection)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        lastPacketTime = .now()
        if var pending = inbound, pending.readableBytes > 0 {
            inbound = nil  // unique reference: the append does not copy the pending bytes
            pending.writeBuffer(&bytes)
            inbound = pending
        } else {
            inbound = bytes
        }
        decodeInbound()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushOutbound()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Decodes and handles every complete packet in the inbound buffer, unless the state
    /// machine has stopped reading (credentials being checked, or closed).
    private func decodeInbound() {
        while machine.isReading, var buffer = inbound, buffer.readableBytes > 0 {
            inbound = nil  // keep the buffer uniquely referenced while decoding
            let packet: Packet
            do throws(MQTTDecodeError) {
                // Before CONNECT, a first byte of any other type ends it now, without waiting
                // for a body its garbage length may promise (§3.1: CONNECT comes first).
                if machine.isAwaitingConnect, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                    first >> 4 != PacketType.connect.rawValue
                {
                    throw MQTTDecodeError.protocolError("fixedHeader.packetType", "the first packet is not CONNECT")
                }
                guard let frame = try frameDecoder.nextFrame(from: &buffer) else {
                    inbound = buffer
                    return
                }
                inbound = buffer
                packet = try Packet.decode(frame, version: machine.protocolVersion)
            } catch {
                inbound = nil
                logger.info("refused packet: \(error)")
                run { machine, outputs in machine.decodeFailed(error, into: &outputs) }
                return
            }
            run { machine, outputs in
                machine.received(packet, makeIdentifier: services.makeClientIdentifier, into: &outputs)
            }
        }
        if inbound?.readableBytes == 0 { inbound = nil }
    }

    /// Called on this loop with the broker's actions for this connection.
    func deliver(_ actions: [BrokerAction]) {
        for action in actions {
            run { machine, outputs in machine.brokerAction(action, into: &outputs) }
        }
        // Packets that arrived before CONNACK are read now.
        decodeInbound()
        scheduleFlush()
    }

    /// Flushes after the tasks already queued on this loop: deliveries that arrive in a burst
    /// (one task each) leave in one write, not one system call per message.
    private func scheduleFlush() {
        guard !isFlushScheduled, outbound != nil, let context else { return }
        isFlushScheduled = true
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = loopBoundSelf.value
            handler.isFlushScheduled = false
            handler.flushOutbound()
        }
    }

    /// The node is stopping.
    func shutdown() {
        run { machine, outputs in machine.shutdown(into: &outputs) }
    }

    /// Runs one state machine input and carries out its outputs in order.
    private func run(_ input: (inout ConnectionStateMachine, inout [ConnectionStateMachine.Output]) -> Void) {
        outputs.removeAll(keepingCapacity: true)
        input(&machine, &outputs)
        // Outputs may re-enter (an authentication answer arrives later, not now), so iterate a copy.
        let current = outputs
        for output in current {
            switch output {
            case .send(let packet):
                encode(packet)
            case .submit(let event):
                services.orderer.submit(event)
            case .authenticate(let username, let password):
                authenticate(username: username, password: password)
            case .watchKeepAlive(let timeoutMillis):
                watchKeepAlive(timeoutMillis: timeoutMillis)
            case .close:
                connectTimeout?.cancel()
                flushOutbound()
                context?.close(promise: nil)
            }
        }
    }

    private func encode(_ packet: Packet) {
        guard let context else { return }
        let version = machine.protocolVersion
        var buffer = outbound ?? context.channel.allocator.buffer(capacity: packet.encodedLength(version: version))
        outbound = nil  // unique reference while encoding
        packet.encode(into: &buffer, version: version)
        outbound = buffer
        if case .connAck = packet { connectTimeout?.cancel() }
    }

    /// Writes what was encoded since the last flush as one buffer: one syscall per batch.
    private func flushOutbound() {
        guard let context, let buffer = outbound else { return }
        outbound = nil
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func authenticate(username: String?, password: [UInt8]?) {
        guard let context else { return }
        let authenticator = services.authenticator
        let allowAnonymous = services.limits.allowAnonymousLogin
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        // Password hashing takes tens of milliseconds: never on the event loop.
        services.threadPool.runIfActive(eventLoop: context.eventLoop) {
            authenticator.authenticate(username: username, password: password, allowAnonymous: allowAnonymous)
        }.whenComplete { result in
            let accepted = (try? result.get()) ?? false
            let handler = loopBoundSelf.value
            if !accepted { handler.logger.info("authentication refused", metadata: ["username": "\(username ?? "")"]) }
            handler.run { machine, outputs in machine.authenticationCompleted(accepted: accepted, into: &outputs) }
            handler.decodeInbound()
            handler.flushOutbound()
        }
    }

    private func watchKeepAlive(timeoutMillis: Int64) {
        guard let context, keepAliveTask == nil else { return }
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let interval = TimeAmount.milliseconds(max(100, timeoutMillis / 4))
        keepAliveTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            let handler = loopBoundSelf.value
            if NIODeadline.now() - handler.lastPacketTime > .milliseconds(timeoutMillis) {
                task.cancel()
                handler.logger.info("keep alive expired")
                handler.run { machine, outputs in machine.keepAliveExpired(into: &outputs) }
            }
        }
    }
}
