import FoxMQTT
import NIOCore
import Testing

/// The maximum packet size of the decoders under test: large enough for every vector.
let testMaximumPacketSize = 1 << 20

/// Cuts and decodes `bytes` the way a connection does, for error tests.
func decodeAll(_ bytes: [UInt8], version: ProtocolVersion) throws(MQTTDecodeError) -> [Packet] {
    var decoder = FrameDecoder(maximumPacketSize: testMaximumPacketSize)
    var buffer = ByteBuffer(bytes: bytes)
    var packets: [Packet] = []
    while let frame = try decoder.nextFrame(from: &buffer) {
        packets.append(try Packet.decode(frame, version: version))
    }
    return packets
}

/// Decodes `bytes`, which hold exactly one packet, through the framing verifier:
/// (a) drip-fed one byte at a time, the decoder returns nil and consumes nothing until the
/// last byte; (b) three copies in one buffer yield three equal packets and nothing else;
/// (c) the packet decodes to `expected`.
func expectDecode(
    _ bytes: [UInt8], version: ProtocolVersion, _ expected: Packet,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    // (a) one byte at a time
    var decoder = FrameDecoder(maximumPacketSize: testMaximumPacketSize)
    var buffer = ByteBuffer()
    var frame: Frame?
    for (index, byte) in bytes.enumerated() {
        buffer.writeInteger(byte)
        let readerIndex = buffer.readerIndex
        frame = try decoder.nextFrame(from: &buffer)
        if index < bytes.count - 1 {
            #expect(frame == nil, "frame before the last byte (\(index))", sourceLocation: sourceLocation)
            #expect(buffer.readerIndex == readerIndex, "partial frame consumed", sourceLocation: sourceLocation)
        }
    }
    let dripped = try #require(frame, "no frame after the last byte", sourceLocation: sourceLocation)
    #expect(buffer.readableBytes == 0, sourceLocation: sourceLocation)
    #expect(try Packet.decode(dripped, version: version) == expected, sourceLocation: sourceLocation)

    // (b) many frames in one buffer
    buffer = ByteBuffer(bytes: bytes + bytes + bytes)
    for _ in 0..<3 {
        let next = try #require(try decoder.nextFrame(from: &buffer), sourceLocation: sourceLocation)
        #expect(try Packet.decode(next, version: version) == expected, sourceLocation: sourceLocation)
    }
    #expect(try decoder.nextFrame(from: &buffer) == nil, sourceLocation: sourceLocation)
    #expect(buffer.readableBytes == 0, sourceLocation: sourceLocation)
}

/// Encodes `packet` and compares with `bytes`; `encodedLength` must agree.
func expectEncode(
    _ packet: Packet, version: ProtocolVersion, _ bytes: [UInt8],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    var buffer = ByteBuffer()
    packet.encode(into: &buffer, version: version)
    #expect(Array(buffer.readableBytesView) == bytes, sourceLocation: sourceLocation)
    #expect(packet.encodedLength(version: version) == bytes.count, sourceLocation: sourceLocation)
}

/// Both directions: `bytes` decode to `packet` and `packet` encodes to `bytes`.
func expectRoundTrip(
    _ bytes: [UInt8], version: ProtocolVersion, _ packet: Packet,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    try expectDecode(bytes, version: version, packet, sourceLocation: sourceLocation)
    expectEncode(packet, version: version, bytes, sourceLocation: sourceLocation)
}

/// Encodes `packet` and decodes it back, for values without a hand-written vector.
func expectEncodeDecode(
    _ packet: Packet, version: ProtocolVersion, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    var buffer = ByteBuffer()
    packet.encode(into: &buffer, version: version)
    #expect(packet.encodedLength(version: version) == buffer.readableBytes, sourceLocation: sourceLocation)
    try expectDecode(Array(buffer.readableBytesView), version: version, packet, sourceLocation: sourceLocation)
}

/// Decoding `bytes` fails with `reasonCode`, naming `field`.
func expectDecodeError(
    _ bytes: [UInt8], version: ProtocolVersion, _ reasonCode: ReasonCode, field: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        let packets = try decodeAll(bytes, version: version)
        Issue.record("decoded \(packets) instead of failing with \(reasonCode)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.reasonCode == reasonCode, "\(error)", sourceLocation: sourceLocation)
        #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
    }
}

/// "hello" style payloads.
func payload(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }
