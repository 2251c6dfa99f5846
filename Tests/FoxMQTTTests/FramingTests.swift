import FoxMQTT
import NIOCore
import Testing

@Suite struct FramingTests {
    // Goal: a complete frame is cut out as type, flags and a body of exactly remaining length.
    // MQTT 5.0 §2.1.1: fixed header = type/flags byte + remaining length.
    @Test func cutsOneFrame() throws {
        var decoder = FrameDecoder(maximumPacketSize: 100)
        var buffer = ByteBuffer(bytes: [0x62, 0x02, /* PUBREL, flags 0010, length 2 */ 0x00, 0x07, 0xC0 /* next */])
        let frame = try #require(try decoder.nextFrame(from: &buffer))
        #expect(frame.packetType == .pubRel)
        #expect(frame.flags == 0b0010)
        #expect(Array(frame.body.readableBytesView) == [0x00, 0x07])
        #expect(Array(buffer.readableBytesView) == [0xC0])
    }

    // Goal: incomplete headers and bodies return nil without consuming anything.
    // MQTT 5.0 §2.1.4: the remaining length may span several bytes.
    @Test func partialFramesReturnNil() throws {
        var decoder = FrameDecoder(maximumPacketSize: 1000)
        for bytes: [UInt8] in [[], [0x30], [0x30, 0x80], [0x30, 0x80, 0x01], [0x30, 0x03, 0x00, 0x01]] {
            var buffer = ByteBuffer(bytes: bytes)
            #expect(try decoder.nextFrame(from: &buffer) == nil)
            #expect(buffer.readableBytes == bytes.count)
        }
    }

    // Goal: packet type 0 is reserved and rejected from the first byte.
    // MQTT 5.0 §2.1.2: type 0 is Reserved (Forbidden).
    @Test func packetTypeZeroIsMalformed() {
        var decoder = FrameDecoder(maximumPacketSize: 100)
        var buffer = ByteBuffer(bytes: [0x00])
        #expect(throws: MQTTDecodeError.malformed("fixedHeader.packetType", "packet type 0 is reserved")) {
            try decoder.nextFrame(from: &buffer)
        }
    }

    // Goal: a fifth remaining-length byte is malformed.
    // MQTT 5.0 §1.5.5: a variable byte integer has at most four bytes.
    @Test func fiveByteRemainingLengthIsMalformed() {
        expectDecodeError(
            [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], version: .v5, .malformedPacket, field: "fixedHeader.remainingLength")
    }

    // Goal: a remaining length with a useless trailing zero group is malformed.
    // MQTT 5.0 §1.5.5 [MQTT-1.5.5-1]: the minimum number of bytes must be used.
    @Test func nonMinimalRemainingLengthIsMalformed() {
        expectDecodeError([0xC0, 0x80, 0x00], version: .v5, .malformedPacket, field: "fixedHeader.remainingLength")
    }

    // Goal: a packet whose header announces more than maximumPacketSize fails before its body
    // arrives, from a 4-byte remaining length alone.
    // MQTT 5.0 §3.1.2.11.4 / §4.13: Packet Too Large 0x95.
    @Test func oversizedPacketFailsBeforeBody() {
        var decoder = FrameDecoder(maximumPacketSize: 1024)
        var buffer = ByteBuffer(bytes: [0x30, 0xFF, 0xFF, 0xFF, 0x7F /* 268,435,455, no body */])
        let error = #expect(throws: MQTTDecodeError.self) { try decoder.nextFrame(from: &buffer) }
        #expect(error?.reasonCode == .packetTooLarge)
        #expect(error?.field == "fixedHeader.remainingLength")
    }

    // Goal: the limit counts the whole packet, fixed header included; exactly the limit passes.
    // MQTT 5.0 §3.1.2.11.4: "the total number of bytes in an MQTT Control Packet".
    @Test func maximumPacketSizeCountsFixedHeader() throws {
        var decoder = FrameDecoder(maximumPacketSize: 10)
        var fits = ByteBuffer(bytes: [0x30, 0x08] + [UInt8](repeating: 0x41, count: 8))  // 10 bytes
        #expect(try decoder.nextFrame(from: &fits)?.body.readableBytes == 8)
        var tooLarge = ByteBuffer(bytes: [0x30, 0x09])  // 11 bytes announced
        let error = #expect(throws: MQTTDecodeError.self) { try decoder.nextFrame(from: &tooLarge) }
        #expect(error?.reasonCode == .packetTooLarge)
    }

    // Goal: AUTH (type 15) is framed; only decoding decides whether the version allows it.
    // MQTT 5.0 §2.1.2: type 15 is AUTH.
    @Test func authTypeIsFramed() throws {
        var decoder = FrameDecoder(maximumPacketSize: 10)
        var buffer = ByteBuffer(bytes: [0xF0, 0x00])
        #expect(try decoder.nextFrame(from: &buffer)?.packetType == .auth)
    }

    // Goal: remaining lengths at each width boundary round trip, and encodedLength counts the
    // header bytes. MQTT 5.0 §1.5.5: 127 | 128 | 16,383 | 16,384 | 2,097,151 | 2,097,152.
    @Test(arguments: [127, 128, 16_383, 16_384, 2_097_151, 2_097_152])
    func remainingLengthBoundaries(remainingLength: Int) throws {
        // PUBLISH QoS 0, topic "t" (3 bytes), the rest payload.
        let publish = Packet.publish(
            Publish(topicName: "t", payload: ByteBuffer(repeating: 0x61, count: remainingLength - 3)))
        var buffer = ByteBuffer()
        publish.encode(into: &buffer, version: .v311)
        let headerLength =
            remainingLength < 128 ? 2 : remainingLength < 16_384 ? 3 : remainingLength < 2_097_152 ? 4 : 5
        #expect(buffer.readableBytes == headerLength + remainingLength)
        #expect(publish.encodedLength(version: .v311) == buffer.readableBytes)
        var decoder = FrameDecoder(maximumPacketSize: 4_000_000)
        let frame = try #require(try decoder.nextFrame(from: &buffer))
        #expect(frame.body.readableBytes == remainingLength)
        #expect(try Packet.decode(frame, version: .v311) == publish)
    }

    // Goal: the body is a slice of the read buffer, not a copy: its storage is shared.
    // Design: style.md item 3; the PUBLISH payload travels without copies.
    @Test func bodyIsASlice() throws {
        var decoder = FrameDecoder(maximumPacketSize: 100)
        var buffer = ByteBuffer(bytes: [0x30, 0x04, 0x00, 0x01, 0x74, 0x41])
        let original = buffer  // shares the storage
        let frame = try #require(try decoder.nextFrame(from: &buffer))
        let sameStorage = original.withUnsafeReadableBytes { whole in
            frame.body.withUnsafeReadableBytes { body in
                body.baseAddress! == whole.baseAddress! + 2
            }
        }
        #expect(sameStorage)
    }
}
