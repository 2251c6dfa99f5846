import FoxMQTT
import NIOCore
import NIOEmbedded
import NIOWebSocket

@testable import FoxBroker

/// `websocket`: MQTT over WebSocket as the broker runs it after the upgrade: NIO's frame decoder
/// (`ByteToMessageHandler(WebSocketFrameDecoder)`), its protocol error handler, the frame encoder
/// and the broker's `WebSocketMQTTHandler`, in an `EmbeddedChannel`, fed the input in reads of
/// sizes the input chooses. Checked against a model of RFC 6455 framing written here:
///
/// - the MQTT side receives exactly the payloads (unmasked) of the binary and continuation frames
///   before the first frame that ends the connection, in order, and nothing after it;
/// - a ping is answered by a pong with its payload; a close is answered by a close (1000), a text
///   or reserved opcode by a close (1003), a frame over the size limit by a close (1009), a
///   fragmented or long control frame by a close (1002); then the channel is closed;
/// - bytes the broker writes go out as one binary frame each, and a close of the connection by
///   the broker sends a close frame (1000) first; what the encoder writes parses as the frames
///   it was given.
///
/// Input: a configuration byte (bit 0-1 = 3: a 32-byte frame size limit instead of the broker's
/// 1 MiB + 16), two read sizes (0: the whole stream in one read), then the stream.
let webSocketHarness = Harness(
    name: "websocket", summary: "WebSocket framing and WebSocketMQTTHandler against an RFC 6455 model",
    run: fuzzWebSocket, seeds: webSocketSeeds)

/// What the channel did, in order: bytes handed to MQTT, frames written, the close.
enum WebSocketEvent: Equatable, CustomStringConvertible {
    case mqtt([UInt8])
    case frame(opcode: UInt8, fin: Bool, payload: [UInt8])
    case closed

    var description: String {
        switch self {
        case .mqtt(let bytes): "mqtt(\(bytes.count) bytes)"
        case .frame(let opcode, let fin, let payload): "frame(0x\(String(opcode, radix: 16)), fin \(fin), \(payload))"
        case .closed: "closed"
        }
    }

    static func close(_ code: UInt16) -> WebSocketEvent {
        .frame(opcode: 0x8, fin: true, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])
    }
}

final class WebSocketEventLog: @unchecked Sendable {
    var events: [WebSocketEvent] = []
    /// Every frame that reached the encoder, also after the close (an embedded channel keeps
    /// what is written to it closed; a socket's write fails).
    var encoded: [WebSocketEvent] = []
}

/// Records what reaches the MQTT side (the broker's MQTTConnectionHandler sits here).
private final class MQTTSideRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let log: WebSocketEventLog
    init(_ log: WebSocketEventLog) { self.log = log }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        log.events.append(.mqtt(Array(unwrapInboundIn(data).readableBytesView)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        log.events.append(.closed)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// Records every frame written while the channel is open, before the encoder. (A write after
/// the close fails: NIO's decoder goes on with the bytes of the read that carried the close, and
/// its protocol error handler may answer one of them with a close frame that never leaves.)
private final class OutboundFrameRecorder: ChannelOutboundHandler {
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    let log: WebSocketEventLog
    init(_ log: WebSocketEventLog) { self.log = log }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        let event = WebSocketEvent.frame(
            opcode: UInt8(webSocketOpcode: frame.opcode), fin: frame.fin,
            payload: Array(frame.unmaskedData.readableBytesView))
        log.encoded.append(event)
        if context.channel.isActive { log.events.append(event) }
        context.write(data, promise: promise)
    }
}

/// One frame as RFC 6455 §5.2 lays it out.
struct ModelFrame {
    var fin: Bool
    var opcode: UInt8
    var payload: [UInt8]
}

/// The model's reading of a stream: the frames, then why it stopped (nil: the bytes ran out).
struct ModelStream {
    var frames: [ModelFrame] = []
    /// The close code of a framing error NIO's decoder reports: 1009 or 1002.
    var errorCode: UInt16?

    init(_ bytes: [UInt8], maxFrameSize: Int, stopAtClose: Bool = true) {
        var offset = 0
        func integer(_ count: Int) -> UInt64? {
            guard bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return bytes[offset..<offset + count].reduce(0) { $0 << 8 | UInt64($1) }
        }
        while let first = integer(1), let second = integer(1) {
            let fin = first & 0x80 != 0
            let opcode = UInt8(first & 0x0F)
            let masked = second & 0x80 != 0
            var length = second & 0x7F
            if length == 126 {
                guard let extended = integer(2) else { return }
                length = extended
            } else if length == 127 {
                guard let extended = integer(8) else { return }
                length = extended
            }
            let isControl = opcode & 0x08 != 0
            // NIO checks the header as soon as the length is known, before mask and payload.
            if length > UInt64(maxFrameSize) {
                errorCode = 1009
                return
            }
            if isControl && (!fin || length > 125) {
                errorCode = 1002
                return
            }
            var mask: [UInt8] = []
            if masked {
                guard let key = integer(4) else { return }
                mask = [UInt8(key >> 24), UInt8((key >> 16) & 0xFF), UInt8((key >> 8) & 0xFF), UInt8(key & 0xFF)]
            }
            guard bytes.count - offset >= Int(length) else { return }
            var payload = Array(bytes[offset..<offset + Int(length)])
            offset += Int(length)
            if masked {
                for index in payload.indices { payload[index] ^= mask[index % 4] }
            }
            frames.append(ModelFrame(fin: fin, opcode: opcode, payload: payload))
        }
    }

    /// Writes a frame (masked when `mask` is given), for seeds and checks.
    static func encode(opcode: UInt8, fin: Bool = true, payload: [UInt8], mask: [UInt8]? = nil) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        if payload.count < 126 {
            bytes.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes.append(maskBit | 126)
            bytes += [UInt8](bigEndian: UInt16(payload.count))
        } else {
            bytes.append(maskBit | 127)
            bytes += [UInt8](bigEndian: UInt64(payload.count))
        }
        if let mask {
            bytes += mask
            bytes += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        } else {
            bytes += payload
        }
        return bytes
    }
}

@Sendable func fuzzWebSocket(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let configuration = input.byte()
    let readSizes = [input.byte(), input.byte()]
    let stream = input.rest()
    let maxFrameSize = configuration & 0x03 == 0x03 ? 32 : 1_048_576 + 16

    // What the model says must happen.
    let model = ModelStream(stream, maxFrameSize: maxFrameSize)
    var expected: [WebSocketEvent] = []
    var endsConnection = false
    for frame in model.frames {
        switch frame.opcode {
        case 0x0, 0x2: expected.append(.mqtt(frame.payload))
        case 0x9: expected.append(.frame(opcode: 0xA, fin: true, payload: frame.payload))
        case 0xA: break
        case 0x8:
            expected += [.close(1000), .closed]
            endsConnection = true
        default:
            expected += [.close(1003), .closed]
            endsConnection = true
        }
        if endsConnection { break }
    }
    if !endsConnection, let code = model.errorCode {
        expected += [.close(code), .closed]
        endsConnection = true
    }

    // What the channel does.
    let log = WebSocketEventLog()
    let channel = EmbeddedChannel()
    do {
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(WebSocketFrameEncoder())
        try pipeline.addHandler(OutboundFrameRecorder(log))
        try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
        try pipeline.addHandler(WebSocketProtocolErrorHandler())
        try pipeline.addHandler(WebSocketMQTTHandler())
        try pipeline.addHandler(MQTTSideRecorder(log))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1883)).wait()
    } catch {
        fatalError("websocket: the pipeline could not be set up: \(error)")
    }
    let reads = readSizes[0] == 0 ? [stream] : chunks(of: stream, sizes: readSizes)
    for read in reads where channel.isActive {
        _ = try? channel.writeInbound(ByteBuffer(bytes: read))
    }

    // The broker's side: one MQTT write, then its close of the connection.
    if channel.isActive {
        let mqtt = Array(stream.prefix(Int(configuration >> 2)))
        expected += [.frame(opcode: 0x2, fin: true, payload: mqtt), .close(1000), .closed]
        channel.writeAndFlush(ByteBuffer(bytes: mqtt), promise: nil)
        channel.close(promise: nil)
    }
    // The pipeline is torn down by a task on the event loop, which an embedded one runs only
    // when asked (else the channel, its handlers and what they recorded are never freed).
    channel.embeddedEventLoop.run()
    require(!channel.isActive, "websocket: the channel is still open at the end")
    require(
        log.events == expected,
        "websocket: the channel did \(log.events), the model expects \(expected) (limit \(maxFrameSize))")

    // Everything the encoder wrote parses as the frames recorded, in order.
    var written: [UInt8] = []
    while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { written += buffer.readableBytesView }
    let sent = ModelStream(written, maxFrameSize: Int.max)
    require(sent.errorCode == nil, "websocket: the written frames do not parse")
    let sentEvents = sent.frames.map { WebSocketEvent.frame(opcode: $0.opcode, fin: $0.fin, payload: $0.payload) }
    require(sentEvents == log.encoded, "websocket: the encoder wrote \(sentEvents) for \(log.encoded)")
}

@Sendable func webSocketSeeds() -> [Seed] {
    var connect = ByteBuffer()
    Packet.connect(Connect(protocolVersion: .v5, cleanStart: true, keepAliveSeconds: 30, clientIdentifier: "ws"))
        .encode(into: &connect, version: .v5)
    var publish = ByteBuffer()
    Packet.publish(Publish(topicName: "a/b", payload: ByteBuffer(string: "over websocket")))
        .encode(into: &publish, version: .v5)
    let connectBytes = Array(connect.readableBytesView)
    let publishBytes = Array(publish.readableBytesView)
    let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
    func binary(_ payload: [UInt8], fin: Bool = true, opcode: UInt8 = 0x2) -> [UInt8] {
        ModelStream.encode(opcode: opcode, fin: fin, payload: payload, mask: mask)
    }
    let half = connectBytes.count / 2
    let big = [UInt8](repeating: 0x30, count: 300)
    // Configuration byte: 0x10 = the broker's limit and a 4-byte MQTT write; read sizes 0 = whole.
    let seeds: [(String, [UInt8], [UInt8])] = [
        ("connect", [0x10, 0, 0], binary(connectBytes)),
        ("connect-publish-one-frame", [0x10, 0, 0], binary(connectBytes + publishBytes)),
        (
            "connect-in-two-frames", [0x10, 0, 0],
            binary(Array(connectBytes[..<half]), fin: false)
                + binary(Array(connectBytes[half...]), opcode: 0x0)
        ),
        ("connect-small-reads", [0x10, 3, 1], binary(connectBytes) + binary(publishBytes)),
        (
            "ping-pong-close", [0x10, 0, 0],
            binary([1, 2, 3], opcode: 0x9) + binary([4], opcode: 0xA)
                + binary([0x03, 0xE8], opcode: 0x8) + binary(publishBytes)
        ),
        ("text-refused", [0x10, 0, 0], binary(Array("hello".utf8), opcode: 0x1) + binary(publishBytes)),
        ("unmasked", [0x10, 0, 0], ModelStream.encode(opcode: 0x2, payload: connectBytes)),
        ("16-bit-length", [0x10, 0, 0], binary(big)),
        ("too-large-for-32", [0x13, 0, 0], binary(big)),
        ("fragmented-ping", [0x10, 0, 0], binary([1], fin: false, opcode: 0x9)),
    ]
    return seeds.map { Seed($0.0, $0.1 + $0.2) }
}
