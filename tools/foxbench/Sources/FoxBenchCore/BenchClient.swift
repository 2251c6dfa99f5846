import FoxMQTT
import NIOCore

/// What a publisher reports when it is done.
public struct PublisherResult: Sendable {
    public var index: Int
    public var sent: UInt64 = 0
    public var firstSendTime: UInt64 = 0
    public var lastSendTime: UInt64 = 0
    /// QoS 1/2 messages still unacknowledged when the result was taken.
    public var unacked: Int = 0
}

/// What a subscriber reports at the end.
public struct SubscriberResult: Sendable {
    public var index: Int
    /// By publisher index.
    public var trackers: [SequenceTracker]
    public var delivered: UInt64 = 0
    public var foreign: UInt64 = 0
    public var firstReceiveTime: UInt64 = 0
    public var lastReceiveTime: UInt64 = 0
    public var subscribeSentTime: UInt64 = 0
    /// Fairness: deliveries that came after a message of another publisher sent more than the
    /// fairness threshold later (the later one overtook it), and deliveries checked.
    public var fairnessInversions: UInt64 = 0
}

/// One MQTT client connection of a run: a publisher, a subscriber or an idle connection. Runs
/// entirely on its channel's event loop; the run talks to it through `NIOLoopBound`.
public final class BenchClient: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public enum Role: Sendable {
        case publisher(Int)
        case subscriber(Int)
        case idle
    }

    private enum Phase { case connecting, subscribing, ready, closed }

    /// A pre-encoded PUBLISH: each message copies it and patches the packet identifier, the
    /// stamp and (retained storm) the topic number.
    struct Template {
        var bytes: ByteBuffer
        var packetIDOffset: Int
        var stampOffset: Int
        var digitsOffset: Int?
        var digitsWidth: Int
    }

    let config: BenchConfig
    let role: Role
    let clientID: String
    let counters: SharedCounters
    let stats: LoopStats
    private let ready: EventLoopPromise<NIOLoopBound<BenchClient>>
    private var context: ChannelHandlerContext?
    private var phase = Phase.connecting
    private var closing = false
    private var decoder: FrameDecoder
    private var cumulation: ByteBuffer?
    private var out = ByteBuffer()
    private var handshakeTimeout: Scheduled<Void>?
    private var pingTask: Scheduled<Void>?

    // Publisher.
    private var templates: [Template] = []
    private var publisherIndex: UInt32 = 0
    private var retain = false
    private var window: Int
    private var freeIDs: [UInt16] = []
    private var sendTimes: [UInt64] = []
    private var nextSequence: UInt64 = 0
    private var sending = false
    private var startTime: UInt64 = 0
    private var deadline: UInt64?
    private var countLimit: UInt64?
    private var tickTask: Scheduled<Void>?
    private var pumpScheduled = false
    private var firstSendTime: UInt64 = 0
    private var lastSendTime: UInt64 = 0
    private var done: EventLoopPromise<PublisherResult>?
    private var pendingAcked: UInt64 = 0
    private var pendingAckErrors: UInt64 = 0
    /// End-to-end window: deliveries per message of this publisher (over all subscribers), and
    /// messages written off as lost when deliveries stopped while the window was full.
    private var deliveriesPerMessage: Double = 0
    private var writtenOff: UInt64 = 0
    private var blockedSince: UInt64 = 0
    private var lastDeliveredSeen: UInt64 = 0
    private var pollScheduled = false

    // Subscriber.
    private var trackers: [SequenceTracker] = []
    private var subscriberIndex = 0
    private var delivered: UInt64 = 0
    private var pendingDelivered: UInt64 = 0
    private var pendingDeliveredBy: [UInt64] = []
    private var foreign: UInt64 = 0
    private lazy var fairness = FairnessCounter(thresholdNanos: config.fairnessThresholdNanos)
    private var firstReceiveTime: UInt64 = 0
    private var lastReceiveTime: UInt64 = 0
    private var subscribeSentTime: UInt64 = 0
    private var filter: String = ""
    /// Retained storm: succeeded with the time when this many distinct messages have arrived.
    private var allReceived: (target: UInt64, promise: EventLoopPromise<UInt64>)?

    init(
        config: BenchConfig, role: Role, clientID: String, counters: SharedCounters, stats: LoopStats,
        ready: EventLoopPromise<NIOLoopBound<BenchClient>>
    ) {
        self.config = config
        self.role = role
        self.clientID = clientID
        self.counters = counters
        self.stats = stats
        self.ready = ready
        self.decoder = FrameDecoder(maximumPacketSize: 268_435_460)
        self.window = config.window
        switch role {
        case .publisher(let index):
            publisherIndex = UInt32(index)
            retain = config.mode == .retained
            templates = Self.makeTemplates(config: config, publisher: index)
            if config.mode == .pubsub {
                let sample = UInt64(config.topics.treeWidth * 1000)
                var deliveries: UInt64 = 0
                for s in 0..<config.subscribers {
                    deliveries += config.topics.expectedCount(subscriber: s, publisher: index, sent: sample)
                }
                deliveriesPerMessage = Double(deliveries) / Double(sample)
            }
        case .subscriber(let index):
            subscriberIndex = index
            trackers = Array(repeating: SequenceTracker(), count: config.mode == .retained ? 1 : config.publishers)
            pendingDeliveredBy = Array(repeating: 0, count: trackers.count)
            filter =
                config.mode == .retained ? "\(config.topics.prefix)/retained/#" : config.topics.subscriberFilter(index)
        case .idle:
            break
        }
    }

    static func makeTemplates(config: BenchConfig, publisher: Int) -> [Template] {
        var topics: [String]
        var digitsWidth = 0
        if config.mode == .retained {
            digitsWidth = String(max(config.retainedCount - 1, 0)).count
            topics = ["\(config.topics.prefix)/retained/" + String(repeating: "0", count: digitsWidth)]
        } else {
            topics = config.topics.publisherTopics(publisher)
        }
        let payload = PayloadStamp.makePayload(size: config.payloadSize)
        return topics.map { topic in
            let publish = Publish(
                topicName: topic, payload: payload, qos: config.qos, retain: config.mode == .retained,
                packetIdentifier: config.qos == .atMostOnce ? nil : 1)
            var bytes = ByteBuffer()
            Packet.publish(publish).encode(into: &bytes, version: config.version)
            let topicLength = topic.utf8.count
            var bodyLength = 2 + topicLength + config.payloadSize
            if config.qos != .atMostOnce { bodyLength += 2 }
            if config.version == .v5 { bodyLength += 1 }  // empty properties
            let headerLength = bytes.readableBytes - bodyLength
            return Template(
                bytes: bytes, packetIDOffset: headerLength + 2 + topicLength,
                stampOffset: bytes.readableBytes - config.payloadSize,
                digitsOffset: digitsWidth > 0 ? headerLength + 2 + topicLength - digitsWidth : nil,
                digitsWidth: digitsWidth)
        }
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        out = context.channel.allocator.buffer(capacity: 256)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        var connect = Connect(
            protocolVersion: config.version, cleanStart: true, keepAliveSeconds: config.keepAliveSeconds,
            clientIdentifier: clientID)
        connect.username = config.username
        connect.password = config.password.map { Array($0.utf8) }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        Packet.connect(connect).encode(into: &buffer, version: config.version)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        let seconds = config.connectionTimeoutSeconds
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(seconds)) {
            self.failHandshake(BenchError.handshakeTimeout(self.clientID, seconds))
        }
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let wasReady = phase == .ready
        phase = .closed
        tickTask?.cancel()
        pingTask?.cancel()
        handshakeTimeout?.cancel()
        if !wasReady {
            ready.fail(BenchError.closedDuringHandshake(clientID))
        } else if !closing {
            counters.disconnects.add(1, ordering: .relaxed)
        }
        sending = false
        finishPublishing()
        allReceived?.promise.fail(
            BenchError.protocolViolation(clientID, "connection closed before all retained messages arrived"))
        allReceived = nil
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failHandshake(BenchError.protocolViolation(clientID, "\(error)"))
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && sending { pump() }
        context.fireChannelWritabilityChanged()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if cumulation == nil {
            cumulation = incoming
        } else {
            cumulation!.writeBuffer(&incoming)
        }
        do {
            while let frame = try decoder.nextFrame(from: &cumulation!) {
                try handle(frame)
            }
        } catch {
            failHandshake(BenchError.protocolViolation(clientID, "\(error)"))
            context.close(promise: nil)
            return
        }
        if cumulation!.readableBytes == 0 {
            cumulation = nil
        } else if cumulation!.readerIndex > 65_536 {
            cumulation!.discardReadBytes()
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if out.readableBytes > 0 {
            context.write(wrapOutboundOut(out), promise: nil)
            out = context.channel.allocator.buffer(capacity: 256)
        }
        context.flush()
        if pendingDelivered > 0 {
            counters.delivered.add(pendingDelivered, ordering: .relaxed)
            pendingDelivered = 0
            for p in pendingDeliveredBy.indices where pendingDeliveredBy[p] > 0 {
                counters.deliveredBy[p].value.add(pendingDeliveredBy[p], ordering: .relaxed)
                pendingDeliveredBy[p] = 0
            }
        }
        if pendingAcked > 0 {
            counters.acked.add(pendingAcked, ordering: .relaxed)
            pendingAcked = 0
        }
        if pendingAckErrors > 0 {
            counters.ackErrors.add(pendingAckErrors, ordering: .relaxed)
            pendingAckErrors = 0
        }
        if sending && config.qos != .atMostOnce && config.ratePerPublisher == nil {
            pump()
        } else if !sending && config.qos != .atMostOnce {
            maybeFinishAfterAcks()
        }
        context.fireChannelReadComplete()
    }

    // MARK: Packets

    private func handle(_ frame: Frame) throws {
        switch frame.packetType {
        case .publish:
            try onPublish(frame)
        case .pubAck:
            onAck(frame, final: true)
        case .pubRec:
            onAck(frame, final: false)
        case .pubComp:
            onAck(frame, final: true)
        case .pubRel:
            guard let id = frame.body.getInteger(at: frame.body.readerIndex, as: UInt16.self) else {
                throw BenchError.protocolViolation(clientID, "short PUBREL")
            }
            out.writeInteger(UInt8(0x70))
            out.writeInteger(UInt8(2))
            out.writeInteger(id)
        case .connAck:
            try onConnAck(frame)
        case .subAck:
            try onSubAck(frame)
        case .disconnect:
            let packet = try? Packet.decode(frame, version: config.version)
            if case .disconnect(let d) = packet {
                throw BenchError.protocolViolation(clientID, "the broker sent DISCONNECT \(d.reasonCode)")
            }
            throw BenchError.protocolViolation(clientID, "the broker sent DISCONNECT")
        default:
            break
        }
    }

    private func onConnAck(_ frame: Frame) throws {
        guard phase == .connecting else { throw BenchError.protocolViolation(clientID, "second CONNACK") }
        guard case .connAck(let connAck) = try Packet.decode(frame, version: config.version) else { return }
        guard connAck.reasonCode == .success else {
            throw BenchError.refused(clientID, "\(connAck.reasonCode)")
        }
        if let receiveMaximum = connAck.properties.receiveMaximum {
            window = min(window, Int(receiveMaximum))
        }
        if case .publisher = role, config.qos != .atMostOnce {
            freeIDs = (1...UInt16(window)).reversed()
            sendTimes = Array(repeating: 0, count: window + 1)
        }
        schedulePing()
        if case .subscriber = role {
            phase = .subscribing
            let subscribe = Subscribe(
                packetIdentifier: 1,
                subscriptions: [
                    TopicSubscription(
                        topicFilter: filter, options: SubscriptionOptions(qos: config.subscriberQoS ?? config.qos))
                ])
            Packet.subscribe(subscribe).encode(into: &out, version: config.version)
            subscribeSentTime = monotonicNanos()
        } else {
            becomeReady()
        }
    }

    private func onSubAck(_ frame: Frame) throws {
        guard phase == .subscribing, case .subAck(let subAck) = try Packet.decode(frame, version: config.version)
        else { throw BenchError.protocolViolation(clientID, "unexpected SUBACK") }
        if let code = subAck.reasonCodes.first, code.rawValue >= 0x80 {
            throw BenchError.subscribeRefused(clientID, "\(code)")
        }
        becomeReady()
    }

    private func becomeReady() {
        phase = .ready
        handshakeTimeout?.cancel()
        handshakeTimeout = nil
        ready.succeed(NIOLoopBound(self, eventLoop: context!.eventLoop))
    }

    private func failHandshake(_ error: any Error) {
        guard phase == .connecting || phase == .subscribing else { return }
        phase = .closed
        handshakeTimeout?.cancel()
        ready.fail(error)
        context?.close(promise: nil)
    }

    private func schedulePing() {
        guard config.keepAliveSeconds > 0, let context else { return }
        let interval = TimeAmount.milliseconds(Int64(config.keepAliveSeconds) * 500)
        pingTask = context.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            guard let context = self.context, self.phase != .closed else { return }
            var ping = context.channel.allocator.buffer(capacity: 2)
            ping.writeInteger(UInt8(0xC0))
            ping.writeInteger(UInt8(0))
            context.writeAndFlush(self.wrapOutboundOut(ping), promise: nil)
            self.schedulePing()
        }
    }

    // MARK: Subscriber

    @inline(__always)
    private func onPublish(_ frame: Frame) throws {
        let qos = (frame.flags >> 1) & 0b11
        let retained = frame.flags & 1 != 0
        var body = frame.body
        guard let topicLength = body.readInteger(as: UInt16.self), body.readableBytes >= Int(topicLength) else {
            throw BenchError.protocolViolation(clientID, "short PUBLISH")
        }
        body.moveReaderIndex(forwardBy: Int(topicLength))
        var id: UInt16 = 0
        if qos > 0 {
            guard let packetID = body.readInteger(as: UInt16.self) else {
                throw BenchError.protocolViolation(clientID, "PUBLISH without packet identifier")
            }
            id = packetID
        }
        if config.version == .v5 {
            var length = 0
            var shift = 0
            while true {
                guard let byte = body.readInteger(as: UInt8.self), shift <= 21 else {
                    throw BenchError.protocolViolation(clientID, "bad PUBLISH properties")
                }
                length |= Int(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 { break }
            }
            guard body.readableBytes >= length else {
                throw BenchError.protocolViolation(clientID, "bad PUBLISH properties")
            }
            body.moveReaderIndex(forwardBy: length)
        }
        let now = monotonicNanos()
        if firstReceiveTime == 0 { firstReceiveTime = now }
        lastReceiveTime = now
        delivered += 1
        pendingDelivered += 1
        if let stamp = PayloadStamp.read(body, at: body.readerIndex), Int(stamp.publisher) < trackers.count {
            if !retained {
                _ = stats.latency.record(now >= stamp.timestamp ? (now - stamp.timestamp) / 1000 : 0)
                fairness.record(sentAt: stamp.timestamp, publisher: stamp.publisher)
            }
            let index =
                config.mode == .retained
                ? stamp.sequence : config.topics.streamIndex(subscriber: subscriberIndex, sequence: stamp.sequence)
            trackers[Int(stamp.publisher)].record(index)
            pendingDeliveredBy[Int(stamp.publisher)] &+= 1
            if let target = allReceived, trackers[0].unique >= target.target {
                allReceived = nil
                target.promise.succeed(now)
            }
        } else {
            foreign += 1
            counters.foreign.add(1, ordering: .relaxed)
        }
        if qos == 1 {
            out.writeInteger(UInt8(0x40))
            out.writeInteger(UInt8(2))
            out.writeInteger(id)
        } else if qos == 2 {
            out.writeInteger(UInt8(0x50))
            out.writeInteger(UInt8(2))
            out.writeInteger(id)
        }
    }

    /// Retained storm: `promise` gets the time at which `target` distinct messages have arrived.
    func notifyWhenReceived(_ target: UInt64, promise: EventLoopPromise<UInt64>) {
        if trackers[0].unique >= target {
            promise.succeed(lastReceiveTime)
        } else {
            allReceived = (target, promise)
        }
    }

    func subscriberResult() -> SubscriberResult {
        SubscriberResult(
            index: subscriberIndex, trackers: trackers, delivered: delivered, foreign: foreign,
            firstReceiveTime: firstReceiveTime, lastReceiveTime: lastReceiveTime, subscribeSentTime: subscribeSentTime,
            fairnessInversions: fairness.inversions)
    }

    // MARK: Publisher

    private func onAck(_ frame: Frame, final: Bool) {
        let body = frame.body
        guard let id = body.getInteger(at: body.readerIndex, as: UInt16.self), id >= 1, Int(id) < sendTimes.count
        else { return }
        let reason = body.readableBytes >= 3 ? body.getInteger(at: body.readerIndex + 2, as: UInt8.self)! : 0
        if !final {
            // PUBREC
            if reason >= 0x80 {
                pendingAckErrors += 1
                freeIDs.append(id)
                return
            }
            out.writeInteger(UInt8(0x62))
            out.writeInteger(UInt8(2))
            out.writeInteger(id)
            return
        }
        let now = monotonicNanos()
        let sent = sendTimes[Int(id)]
        _ = stats.ackLatency.record(now >= sent ? (now - sent) / 1000 : 0)
        if reason >= 0x80 { pendingAckErrors += 1 }
        pendingAcked += 1
        freeIDs.append(id)
    }

    /// Starts publishing; `done` is completed when the publisher has sent everything and (QoS 1/2)
    /// had it acknowledged.
    func startPublishing(at start: UInt64, done: EventLoopPromise<PublisherResult>) {
        self.done = done
        startTime = start
        if let count = config.count {
            countLimit = config.mode == .retained ? UInt64(config.retainedCount) : count
        } else {
            deadline = start + UInt64(config.durationSeconds * 1e9)
        }
        sending = true
        if config.ratePerPublisher != nil {
            tick()
        } else {
            pump()
        }
    }

    private func tick() {
        guard sending, let context else { return }
        pump()
        if sending {
            tickTask = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(1)) { self.tick() }
        }
    }

    private func schedulePump() {
        guard !pumpScheduled, let context else { return }
        pumpScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.pumpScheduled = false
            self.pump()
        }
    }

    /// Writes the messages that are due: as many as the window, the rate and the batch size allow.
    private func pump() {
        guard sending, let context else { return }
        let now = monotonicNanos()
        if let deadline, now >= deadline {
            stopSending()
            return
        }
        let templateSize = templates[0].bytes.readableBytes
        var allowed = max(1, 65_536 / templateSize)
        if let countLimit {
            allowed = min(allowed, Int(countLimit - nextSequence))
        }
        if let rate = config.ratePerPublisher {
            let due = UInt64(Double(now - startTime) / 1e9 * rate) + 1
            allowed = min(allowed, due > nextSequence ? Int(min(due - nextSequence, UInt64(Int.max))) : 0)
        }
        let qos = config.qos
        if qos != .atMostOnce { allowed = min(allowed, freeIDs.count) }
        if config.ratePerPublisher == nil && config.endToEndWindow > 0 && deliveriesPerMessage > 0 {
            let room = endToEndRoom(now: now)
            if room <= 0 {
                pollLater()
                return
            }
            allowed = min(allowed, room)
        }
        if allowed > 0 {
            if firstSendTime == 0 { firstSendTime = now }
            var batch = context.channel.allocator.buffer(capacity: allowed * (templateSize + 4))
            for _ in 0..<allowed {
                let template = templates[templates.count == 1 ? 0 : Int(nextSequence % UInt64(templates.count))]
                let start = batch.writerIndex
                batch.writeImmutableBuffer(template.bytes)
                if qos != .atMostOnce {
                    let id = freeIDs.removeLast()
                    batch.setInteger(id, at: start + template.packetIDOffset)
                    sendTimes[Int(id)] = now
                }
                if let digitsOffset = template.digitsOffset {
                    var value = nextSequence
                    for position in stride(from: template.digitsWidth - 1, through: 0, by: -1) {
                        batch.setInteger(UInt8(0x30 + value % 10), at: start + digitsOffset + position)
                        value /= 10
                    }
                }
                PayloadStamp.write(
                    .init(publisher: publisherIndex, sequence: nextSequence, timestamp: now), into: &batch,
                    at: start + template.stampOffset)
                nextSequence += 1
            }
            lastSendTime = now
            counters.sent.add(UInt64(allowed), ordering: .relaxed)
            context.writeAndFlush(wrapOutboundOut(batch), promise: nil)
        }
        if let countLimit, nextSequence >= countLimit {
            stopSending()
            return
        }
        if config.ratePerPublisher == nil && qos == .atMostOnce && context.channel.isWritable {
            schedulePump()
        }
    }

    /// Messages this publisher may still send before its share of `endToEndWindow` is undelivered.
    /// Deliveries that stop while the window is full (a broker dropping messages) are written off
    /// after 200 ms so that the run goes on; the loss shows in the report.
    private func endToEndRoom(now: UInt64) -> Int {
        let delivered = counters.deliveredBy[Int(publisherIndex)].value.load(ordering: .relaxed)
        let deliveredMessages = UInt64(Double(delivered) / deliveriesPerMessage)
        let outstanding =
            nextSequence > deliveredMessages + writtenOff ? nextSequence - deliveredMessages - writtenOff : 0
        // The window counts deliveries: a message to 20 subscribers takes 20 of it.
        let share = Double(config.endToEndWindow) / Double(max(1, config.publishers))
        let window = max(1, Int(share / max(1, deliveriesPerMessage)))
        let room = window - Int(min(outstanding, UInt64(Int.max / 2)))
        if room > 0 {
            blockedSince = 0
            return room
        }
        if delivered != lastDeliveredSeen || blockedSince == 0 {
            lastDeliveredSeen = delivered
            blockedSince = now
        } else if now - blockedSince > 200_000_000 {
            writtenOff += outstanding
            blockedSince = 0
            return window
        }
        return 0
    }

    private func pollLater() {
        guard !pollScheduled, let context else { return }
        pollScheduled = true
        context.eventLoop.assumeIsolated().scheduleTask(in: .microseconds(500)) {
            self.pollScheduled = false
            self.pump()
        }
    }

    private func stopSending() {
        sending = false
        tickTask?.cancel()
        tickTask = nil
        maybeFinishAfterAcks()
    }

    private func maybeFinishAfterAcks() {
        guard done != nil, !sending else { return }
        if config.qos == .atMostOnce || freeIDs.count >= window {
            finishPublishing()
        }
    }

    private func finishPublishing() {
        guard let done else { return }
        self.done = nil
        done.succeed(publisherResult())
    }

    func publisherResult() -> PublisherResult {
        PublisherResult(
            index: Int(publisherIndex), sent: nextSequence, firstSendTime: firstSendTime, lastSendTime: lastSendTime,
            unacked: config.qos == .atMostOnce ? 0 : max(0, window - freeIDs.count))
    }

    /// Stops a publisher that is still sending (drain timeout).
    func abandon() {
        sending = false
        tickTask?.cancel()
        finishPublishing()
    }

    /// DISCONNECT and close.
    func disconnect() -> EventLoopFuture<Void> {
        guard let context else { return ready.futureResult.eventLoop.makeSucceededVoidFuture() }
        guard phase != .closed else { return context.eventLoop.makeSucceededVoidFuture() }
        closing = true
        sending = false
        tickTask?.cancel()
        var buffer = context.channel.allocator.buffer(capacity: 2)
        buffer.writeInteger(UInt8(0xE0))
        buffer.writeInteger(UInt8(0))
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.close(promise: promise)
        return promise.futureResult
    }
}
