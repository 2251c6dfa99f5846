import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import FoxBroker

/// MQTT over WebSocket after the upgrade: NIO's frame decoder, then `WebSocketMQTTHandler`, then
/// what the MQTT connection handler would receive.
@Suite struct WebSocketMQTTHandlerTests {
    /// Collects the bytes that reach the MQTT side.
    final class MQTTSide: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var received: [[UInt8]] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received.append(Array(unwrapInboundIn(data).readableBytesView))
        }
    }

    /// A masked client frame (RFC 6455 §5.2) of at most 125 bytes.
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        let mask: [UInt8] = [0x11, 0x22, 0x33, 0x44]
        return [(fin ? 0x80 : 0) | opcode, 0x80 | UInt8(payload.count)] + mask
            + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    }

    /// What reaches the MQTT side when `bytes` arrive in one read, and the frames written back.
    static func run(_ bytes: [UInt8]) throws -> (mqtt: [[UInt8]], written: [WebSocketFrame]) {
        let mqtt = MQTTSide()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WebSocketFrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(WebSocketMQTTHandler())
        try channel.pipeline.syncOperations.addHandler(mqtt)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1883)).wait()
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        var written: [WebSocketFrame] = []
        while let frame = try? channel.readOutbound(as: WebSocketFrame.self) { written.append(frame) }
        return (mqtt.received, written)
    }

    // Goal: binary and continuation frames pass their payloads on, in order, as one stream.
    @Test func binaryFramesReachMQTT() throws {
        let result = try Self.run(Self.frame(0x2, [0x10, 0x01], fin: false) + Self.frame(0x0, [0x02]))
        #expect(result.mqtt == [[0x10, 0x01], [0x02]])
        #expect(result.written.isEmpty)
    }

    // Goal: a text frame is refused with a close (1003), and a binary frame behind it in the
    // same read never reaches MQTT (found by `scripts/fuzz websocket`: it did, after the close).
    @Test func nothingReachesMQTTAfterARefusedFrame() throws {
        let result = try Self.run(Self.frame(0x1, Array("hi".utf8)) + Self.frame(0x2, [0xC0, 0x00]))
        #expect(result.mqtt.isEmpty)
        #expect(result.written.map(\.opcode) == [.connectionClose])
        var code = result.written.first?.data
        #expect(code?.readWebSocketErrorCode() == .unacceptableData)
    }

    // Goal: after the peer's close (echoed with 1000), the frames behind it are dropped too.
    @Test func nothingReachesMQTTAfterTheClose() throws {
        let result = try Self.run(
            Self.frame(0x2, [0xC0, 0x00]) + Self.frame(0x8, [0x03, 0xE8]) + Self.frame(0x2, [0xC0, 0x00])
                + Self.frame(0x9, [7]))
        #expect(result.mqtt == [[0xC0, 0x00]])
        #expect(result.written.map(\.opcode) == [.connectionClose])
    }
}
