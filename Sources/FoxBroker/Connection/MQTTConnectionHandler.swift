import FoxBrokerCore
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
    private var outbound: ByteBuffer?
    /// How the broker reaches this connection (see there); set once the channel is active.
    private var handle: ConnectionHandle?
    /// QoS 0 messages dropped because the client did not read (see `drainInbox`).
    private(set) var droppedAtMostOnceCount: UInt64 = 0
    /// Counted among the open connections (registered), so that the close uncounts it once.
    private var counted = false
    private var droppingAtMostOnce = false
    private var context: ChannelHandlerContext?
    /// Until CONNACK: when the socket is closed if CONNECT has not completed.
    private var connectDeadline: NIODeadline?
    /// After CONNACK: how long the client may stay silent (1.5 times the keep alive).
    private var keepAliveTimeout: TimeAmount?
    private var lastPacketTime = NIODeadline.uptimeNanoseconds(0)
    /// Position in this loop's `DeadlineSweeper`, which checks both deadlines.
    var sweepIndex: Int?
    private var sweeper: DeadlineSweeper?
    /// An event the orderer answered busy to, retried before anything else is read.
    private var blockedEvent: BrokerEvent?
    /// Whether the socket is read (autoRead); off while the buffered bytes cannot be decoded and
    /// already exceed a packet (see `updateReading`).
    private var reading = true
    // No stored logger: `services.logger` with this connection's metadata added per message
    // (`log`), because a stored copy costs every idle connection its size and a dictionary.

    init(connection: ConnectionID, services: BrokerServices) {
        self.services = services
        machine = ConnectionStateMachine(connection: connection, limits: services.sharedLimits)
        frameDecoder = FrameDecoder(maximumPacketSize: services.limits.maximumPacketSizeBytes)
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
        let handle = ConnectionHandle(
            eventLoop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        self.handle = handle
        guard services.registry.register(machine.connection, handle, countMax: services.limits.connectionCountMax)
        else {
            log(.warning, "connection refused: \(services.limits.connectionCountMax) connections open")
            services.metrics.connectionRefused(.serverBusy)
            context.close(promise: nil)
            return
        }
        counted = true
        services.metrics.connectionOpened()
        lastPacketTime = context.eventLoop.now
        connectDeadline = lastPacketTime + .seconds(Int64(services.limits.connectTimeoutSeconds))
        let sweeper = services.deadlineSweeper(for: context.eventLoop)
        sweeper.add(self)
        self.sweeper = sweeper
    }

    /// Called by the loop's sweeper: ends the connection whose deadline passed.
    func checkDeadlines(now: NIODeadline) {
        if let connectDeadline, now >= connectDeadline {
            self.connectDeadline = nil
            log(.info, "CONNECT not completed in \(services.limits.connectTimeoutSeconds) s")
            run { machine, outputs in machine.connectTimedOut(into: &outputs) }
        } else if let keepAliveTimeout, reading, now - lastPacketTime > keepAliveTimeout {
            // (Not while the broker itself stopped reading: the client's packets wait in its
            // socket, and the timer starts again when reading resumes.)
            self.keepAliveTimeout = nil
            log(.info, "keep alive expired")
            run { machine, outputs in machine.keepAliveExpired(into: &outputs) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweeper?.remove(self)
        sweeper = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweeper?.remove(self)
        sweeper = nil
        run { machine, outputs in machine.channelClosed(into: &outputs) }
        services.registry.unregister(machine.connection)
        if counted {
            counted = false
            services.metrics.connectionClosed()
        }
        if droppedAtMostOnceCount > 0 {
            log(.info, "closed after \(droppedAtMostOnceCount) QoS 0 messages were dropped for not reading")
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        services.metrics.received(bytes: bytes.readableBytes)
        lastPacketTime = context.eventLoop.now
        if var pending = inbound, pending.readableBytes > 0 {
            inbound = nil
            if pending.readerIndex > 0 {
                // Packets were decoded from this buffer, and their payloads are slices of it that
                // may still be held (events waiting for the sync, queues): appending would copy
                // the whole storage, consumed bytes included, into a larger one on every read.
                // Only the partial packet at its end moves, into storage of its own.
                var fresh = context.channel.allocator.buffer(capacity: pending.readableBytes + bytes.readableBytes)
                fresh.writeBuffer(&pending)
                fresh.writeBuffer(&bytes)
                inbound = fresh
            } else {
                // Nothing decoded from it yet, so nothing else holds it: the append does not copy.
                pending.writeBuffer(&bytes)
                inbound = pending
            }
        } else {
            inbound = bytes
        }
        decodeInbound()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushOutbound()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        log(.debug, "connection error: \(error)")
        context.close(promise: nil)
    }

    /// Retries the event the orderer was too busy to take, then goes on reading.
    private func scheduleRetry() {
        guard let context else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(5)) {
            let handler = handler.value
            guard let event = handler.blockedEvent, !handler.machine.isClosed else { return }
            switch handler.services.orderer.submit(event) {
            case .accepted:
                handler.blockedEvent = nil
                handler.decodeInbound()
                handler.flushOutbound()
            case .busy:
                handler.scheduleRetry()
            case .tooLarge:
                handler.blockedEvent = nil
                handler.run { machine, outputs in machine.submitRefused(.packetTooLarge, into: &outputs) }
            case .unavailable(let reasonCode):
                handler.blockedEvent = nil
                handler.run { machine, outputs in machine.submitRefused(reasonCode, into: &outputs) }
            }
        }
    }

    /// Decodes and handles every complete packet in the inbound buffer, unless the state
    /// machine has stopped reading (credentials being checked, or closed) or an event waits
    /// for the orderer.
    private func decodeInbound() {
        // On every exit, a partial packet at the end included.
        defer { updateReading() }
        while machine.isReading, blockedEvent == nil, var buffer = inbound, buffer.readableBytes > 0 {
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
                let frameStart = buffer.readerIndex
                guard let frame = try frameDecoder.nextFrame(from: &buffer) else {
                    inbound = buffer
                    return
                }
                inbound = buffer
                packet = try Packet.decode(frame, version: machine.protocolVersion)
                services.metrics.received(packet, bytes: buffer.readerIndex - frameStart)
            } catch {
                inbound = nil
                log(.info, "refused packet: \(error)")
                run { machine, outputs in machine.decodeFailed(error, into: &outputs) }
                return
            }
            // A refused PUBLISH is a dropped message; a refused will (a CONNECT authenticated by
            // its certificate) is a refused connection, counted as such.
            var isPublish = false
            if case .publish = packet { isPublish = true }
            run { machine, outputs in
                machine.received(
                    packet, makeIdentifier: services.makeClientIdentifier,
                    authorize: { [services, isPublish] request, username, clientIdentifier in
                        let allowed = Self.authorize(
                            request, username: username, clientIdentifier: clientIdentifier, services: services)
                        if !allowed, isPublish { services.metrics.droppedUnauthorized.increment() }
                        return allowed
                    },
                    certificateIdentity: { [context] in
                        guard services.limits.certificateAsUsername, let context else { return .none }
                        return ClientTLS.certificateIdentity(context.pipeline.syncOperations)
                    }, into: &outputs)
            }
        }
        if inbound?.readableBytes == 0 { inbound = nil }
    }

    /// Scheduled on this loop when broker actions arrived in the handle's inbox: carries them
    /// all out, then flushes once for the burst.
    func drainInbox() {
        guard let actions = handle?.takeAll(), !actions.isEmpty else { return }
        // A subscriber that does not read: QoS 0 messages are dropped (§4.3.1 allows it) rather
        // than buffered without bound. Before the state machine sees them, so no topic alias is
        // assigned by a packet that is never sent.
        let writable = context?.channel.isWritable ?? true
        if !writable && !droppingAtMostOnce {
            log(.info, "slow subscriber: dropping QoS 0 messages until its socket drains")
        }
        droppingAtMostOnce = !writable
        // One run for the burst: its outputs are carried out in the same order as one run per
        // action would, with one output array instead of one per message.
        run { machine, outputs in
            for action in actions {
                if !writable && action.isAtMostOncePublish {
                    droppedAtMostOnceCount &+= 1
                    services.metrics.droppedSlowSubscriber.increment()
                    continue
                }
                machine.brokerAction(action, into: &outputs)
            }
        }
        // Packets that arrived before CONNACK are read now.
        decodeInbound()
        flushOutbound()
    }

    /// Stops reading the socket while what is buffered cannot be decoded (credentials being
    /// checked, CONNACK awaited, an event waiting for the orderer) and already exceeds one
    /// packet, so a client cannot grow the inbound buffer without bound; reads again as soon as
    /// decoding goes on. Below that, reading goes on (a slow CONNECT is not held up).
    private func updateReading() {
        guard let context else { return }
        let decoding = machine.isReading && blockedEvent == nil
        let buffered = inbound?.readableBytes ?? 0
        let shouldRead = decoding || buffered < services.limits.maximumPacketSizeBytes + 65536
        guard shouldRead != reading else { return }
        reading = shouldRead
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: shouldRead)
        if shouldRead {
            lastPacketTime = context.eventLoop.now
            context.read()
        }
    }

    /// The node is stopping.
    func shutdown() {
        run { machine, outputs in machine.shutdown(into: &outputs) }
    }

    /// Runs one state machine input and carries out its outputs in order.
    private func run(_ input: (inout ConnectionStateMachine, inout [ConnectionStateMachine.Output]) -> Void) {
        // A fresh array per input, not a kept one: a kept array's capacity would stay allocated
        // for every idle connection.
        var outputs: [ConnectionStateMachine.Output] = []
        input(&machine, &outputs)
        for output in outputs {
            switch output {
            case .send(let packet):
                encode(packet)
            case .submit(let event):
                submit(event)
            case .submitCloseAuthorizingWill(var close, let will):
                let allowed = Self.authorize(
                    .publish(topicName: will.topicName), username: will.username,
                    clientIdentifier: will.clientIdentifier, services: services)
                if !allowed {
                    close.cause = .willRefused
                    services.metrics.droppedUnauthorized.increment()
                    log(
                        .info, "will discarded: its user may no longer publish to its topic",
                        ["topic": "\(will.topicName)"])
                }
                submit(.sessionClose(machine.connection, close))
            case .authenticate(let username, let password):
                authenticate(username: username, password: password)
            case .watchKeepAlive(let timeoutMillis):
                keepAliveTimeout = .milliseconds(timeoutMillis)
            case .close:
                connectDeadline = nil
                flushOutbound()
                context?.close(promise: nil)
            case .refusedUnannounced(let reasonCode):
                services.metrics.connectionRefused(reasonCode)
                log(
                    .info, "CONNECT refused without a CONNACK: the client's Maximum Packet Size cannot hold it",
                    ["reason": "\(reasonCode)"])
            }
        }
    }

    private func submit(_ event: BrokerEvent) {
        switch services.orderer.submit(event) {
        case .accepted:
            break
        case .busy:
            // Held, and nothing more is read, until the orderer takes it.
            services.metrics.ordererBusy.increment()
            blockedEvent = event
            scheduleRetry()
        case .tooLarge:
            run { machine, outputs in machine.submitRefused(.packetTooLarge, into: &outputs) }
        case .unavailable(let reasonCode):
            run { machine, outputs in machine.submitRefused(reasonCode, into: &outputs) }
        }
    }

    private func encode(_ packet: Packet) {
        guard let context else { return }
        let version = machine.protocolVersion
        var buffer = outbound ?? context.channel.allocator.buffer(capacity: packet.encodedLength(version: version))
        outbound = nil  // unique reference while encoding
        let packetStart = buffer.writerIndex
        packet.encode(into: &buffer, version: version)
        outbound = buffer
        services.metrics.sent(packet, bytes: buffer.writerIndex - packetStart)
        if case .connAck = packet { connectDeadline = nil }
    }

    /// Writes what was encoded since the last flush as one buffer: one syscall per batch.
    private func flushOutbound() {
        guard let context, let buffer = outbound else { return }
        outbound = nil
        services.metrics.sent(bytes: buffer.readableBytes)
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
            if !accepted { handler.log(.info, "authentication refused", ["username": "\(username ?? "")"]) }
            let services = handler.services
            handler.run { machine, outputs in
                machine.authenticationCompleted(
                    accepted: accepted,
                    authorize: { request, username, clientIdentifier in
                        Self.authorize(
                            request, username: username, clientIdentifier: clientIdentifier, services: services)
                    }, into: &outputs)
            }
            handler.decodeInbound()
            handler.flushOutbound()
        }
    }

    /// Whether this user may publish to or subscribe to what it asks: never to the broker's own
    /// `$SYS` topics, otherwise as the access rules say (all, without rules).
    private static func authorize(
        _ request: ConnectionStateMachine.AccessRequest, username: String?, clientIdentifier: String,
        services: BrokerServices
    ) -> Bool {
        if case .publish(let topicName) = request, topicName.utf8.starts(with: "$SYS".utf8) { return false }
        return services.access?.authorize(request, username: username, clientIdentifier: clientIdentifier) ?? true
    }

    private func log(_ level: Logger.Level, _ message: Logger.Message, _ extra: Logger.Metadata = [:]) {
        let logger = services.logger
        guard logger.logLevel <= level else { return }
        var metadata = extra
        metadata["connection"] = "\(machine.connection)"
        if let remote = context?.remoteAddress { metadata["remote"] = "\(remote)" }
        logger.log(level: level, message, metadata: metadata)
    }
}
