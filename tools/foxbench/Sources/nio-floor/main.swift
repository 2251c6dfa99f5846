// nio-floor: the least an MQTT server on SwiftNIO can hold per idle connection. It accepts
// sockets with the same channel options as foxmq, answers the first bytes of each with a
// CONNACK (so a client's CONNECT completes) and keeps nothing else. `tools/bench/compare`
// measures its RSS per idle connection next to Mosquitto's and foxmq's: the part of foxmq's
// figure that is SwiftNIO's own (the channel, its pipeline, its write queue, its kept read
// buffer) rather than the broker's.
//
// usage: nio-floor PORT   (127.0.0.1; 0 picks a free port, printed on stdout)

import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Answers the first read with a CONNACK, then stays: an idle MQTT 3.1.1 connection.
final class ConnAckOnce: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        // CONNACK, remaining length 2, no session present, return code 0 (MQTT 3.1.1 §3.2).
        let connAck = context.channel.allocator.buffer(bytes: [0x20, 0x02, 0x00, 0x00])
        context.writeAndFlush(wrapOutboundOut(connAck), promise: nil)
    }
}

guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
    print("usage: nio-floor PORT")
    exit(2)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelOption(
        .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 128, maximum: 65536)
    )
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ConnAckOnce()) }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("listening on 127.0.0.1:\(channel.localAddress?.port ?? port)")
fflush(nil)  // all streams: the port line must reach a pipe now
try channel.closeFuture.wait()
