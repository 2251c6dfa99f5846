import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The operator's HTTP endpoint (`--metrics-addr`): `GET /metrics` answers what `render` gives
/// (the Prometheus text format), `GET /healthz` 200 while `healthy` says so and 503 otherwise.
/// Anything else is 404, other methods 405. One small request per connection is all it serves:
/// requests are bounded, bodies ignored.
public final class MetricsEndpoint: Sendable {
    public typealias Render = @Sendable () -> [UInt8]
    public typealias Health = @Sendable () -> (healthy: Bool, detail: String)

    private let render: Render
    private let health: Health
    private let group: MultiThreadedEventLoopGroup
    private let channel: NIOLockedValueBoxChannel

    public init(render: @escaping Render, health: @escaping Health) {
        self.render = render
        self.health = health
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = NIOLockedValueBoxChannel()
    }

    /// Binds; returns the address bound (port 0 picks one).
    @discardableResult
    public func start(host: String, port: Int) async throws -> SocketAddress? {
        let render = self.render
        let health = self.health
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            MetricsHTTPHandler(render: render, health: health))
                    }
                }
            }
            .bind(host: host, port: port).get()
        channel.set(server)
        return server.localAddress
    }

    public func stop() async {
        if let server = channel.take() { try? await server.close() }
        try? await group.shutdownGracefully()
    }
}

/// The bound server channel, set once by `start`.
final class NIOLockedValueBoxChannel: @unchecked Sendable {
    private let lock = NIOLock()
    private var channel: (any Channel)?

    func set(_ channel: any Channel) { lock.withLock { self.channel = channel } }
    func take() -> (any Channel)? {
        lock.withLock {
            defer { channel = nil }
            return channel
        }
    }
}

/// One request at a time: the head decides, the end answers.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: MetricsEndpoint.Render
    private let health: MetricsEndpoint.Health
    private var head: HTTPRequestHead?

    init(render: @escaping MetricsEndpoint.Render, health: @escaping MetricsEndpoint.Health) {
        self.render = render
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let status: HTTPResponseStatus
        let body: [UInt8]
        var contentType = "text/plain; charset=utf-8"
        switch (request.method, path) {
        case (.GET, "/metrics"):
            status = .ok
            body = render()
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        case (.GET, "/healthz"):
            let verdict = health()
            status = verdict.healthy ? .ok : .serviceUnavailable
            body = Array((verdict.detail + "\n").utf8)
        case (_, "/metrics"), (_, "/healthz"):
            status = .methodNotAllowed
            body = Array("GET only\n".utf8)
        default:
            status = .notFound
            body = Array("/metrics or /healthz\n".utf8)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: "close")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
