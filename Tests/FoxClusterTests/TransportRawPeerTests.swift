import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import FoxCluster

/// A hand-driven peer against one transport: a bare TCP client that writes exactly the bytes a
/// test chooses, and runs the handshake with the state machine when it needs to get through.
/// It reaches what a well-behaved transport never does: silence, a huge first header, two
/// connections from the same member at once.
@Suite("Cluster transport against a raw peer")
struct TransportRawPeerTests {
    /// A node 0 that authenticates twice to node 1: the second connection replaces the first,
    /// which node 1 closes; messages on both were delivered.
    @Test func newerConnectionFromAPeerReplacesTheOlder() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            let node = try await TestNode.start(committee.configuration(1), group: group)
            let port = committee.configuration(1).listenPort

            let first = try await RawPeer.connect(port: port, group: group)
            try await first.authenticate(as: committee.handshakeContext(0), to: 1)
            first.writeFrame(Array(message: "on the first"))
            try await waitUntil("the first connection delivers") { node.recorder.messages.count == 1 }

            let second = try await RawPeer.connect(port: port, group: group)
            try await second.authenticate(as: committee.handshakeContext(0), to: 1)
            try await waitUntil("the older connection is closed") { first.isClosed }
            second.writeFrame(Array(message: "on the second"))
            try await waitUntil("the newer connection delivers") { node.recorder.messages.count == 2 }
            #expect(
                node.recorder.messages(from: 0) == [Array(message: "on the first"), Array(message: "on the second")])
            #expect(!second.isClosed)
            #expect(node.recorder.logs.contains { $0.contains("its newer connection replaces the older") })
            await node.transport.stop()
        }
    }

    /// A connection that says nothing is closed after handshakeTimeoutMillis.
    @Test func silentConnectionTimesOut() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            var configuration = committee.configuration(1)
            configuration.handshakeTimeoutMillis = 100
            let node = try await TestNode.start(configuration, group: group)
            let silent = try await RawPeer.connect(port: configuration.listenPort, group: group)
            try await waitUntil("the silent connection is closed") { silent.isClosed }
            #expect(node.transport.metrics.handshakeFailures(.timeout) == 1)
            await node.transport.stop()
        }
    }

    /// Before authentication a header above maxHandshakeFrameBytes closes the connection at
    /// once: a stranger cannot make the node buffer up to maxFrameBytes.
    @Test func oversizeFrameBeforeTheHandshakeIsRefused() async throws {
        try await withGroup { group in
            let committee = TestCommittee(ports: try await reservePorts(2, group: group))
            let node = try await TestNode.start(committee.configuration(1), group: group)
            let stranger = try await RawPeer.connect(port: committee.configuration(1).listenPort, group: group)
            stranger.write([0x10, 0x00, 0x00, 0x00])  // 256 MiB announced (an MQTT CONNECT's first bytes)
            try await waitUntil("the stranger is closed") { stranger.isClosed }
            #expect(node.transport.metrics.handshakeFailures(.oversizeFrame) == 1)
            #expect(node.recorder.logs.contains { $0.contains("oversize handshake frame") })
            await node.transport.stop()
        }
    }
}

/// A TCP client that records what it receives.
final class RawPeer: Sendable {
    private let channel: any Channel
    private let state: Received

    /// What arrived, shared with the channel's handler.
    private final class Received: Sendable {
        let value = Mutex<(bytes: [UInt8], closed: Bool)>(([], false))
    }

    private init(channel: any Channel, state: Received) {
        self.channel = channel
        self.state = state
    }

    static func connect(port: Int, group: any EventLoopGroup) async throws -> RawPeer {
        let state = Received()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Recording(state: state))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawPeer(channel: channel, state: state)
    }

    var isClosed: Bool { state.value.withLock { $0.closed } }

    func write(_ bytes: [UInt8]) {
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
    }

    func writeFrame(_ payload: [UInt8]) {
        channel.writeAndFlush(ClusterFrame.encode(payload), promise: nil)
    }

    /// The next complete frame received, waiting for it.
    func nextFrame() async throws -> [UInt8] {
        var frame: [UInt8] = []
        try await waitUntil("a frame arrives") {
            state.value.withLock { state in
                guard state.bytes.count >= 4 else { return false }
                let length = state.bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
                guard state.bytes.count >= 4 + length else { return false }
                frame = Array(state.bytes[4..<(4 + length)])
                state.bytes.removeFirst(4 + length)
                return true
            }
        }
        return frame
    }

    /// Runs the dialer's side of the handshake as `context.me` towards `peer`.
    func authenticate(as context: ClusterHandshakeContext, to peer: UInt16) async throws {
        var machine = ClusterHandshakeStateMachine(
            role: .dialer(peer: peer), context: context, nonce: (0..<32).map { _ in UInt8.random(in: 0...255) })
        for payload in machine.start() { writeFrame(payload) }
        let hello = try await nextFrame()
        #expect(machine.receive(ByteBuffer(bytes: hello), admits: { _ in true }) == .send([]))
        let proof = try await nextFrame()
        guard case .authenticated(peer, let reply) = machine.receive(ByteBuffer(bytes: proof), admits: { _ in true })
        else { throw ProofRefused() }
        for payload in reply { writeFrame(payload) }
    }

    struct ProofRefused: Error {}

    private final class Recording: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let state: Received

        init(state: Received) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            state.value.withLock { $0.bytes += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.value.withLock { $0.closed = true }
        }
    }
}
