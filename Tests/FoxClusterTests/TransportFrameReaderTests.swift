import NIOCore
import Testing

@testable import FoxCluster

/// The framing step alone: drip-fed one byte at a time, many frames per buffer, and the limit
/// enforced on the header before the payload is buffered.
@Suite("Cluster frame reader")
struct TransportFrameReaderTests {
    static let payloads: [[UInt8]] = [[], [1], Array(0..<200), [9, 9, 9]]

    static var wire: [UInt8] {
        payloads.flatMap { Array(ClusterFrame.encode($0).readableBytesView) }
    }

    static func drain(_ reader: inout ClusterFrameReader) throws -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let frame = try reader.next() { frames.append(Array(frame.readableBytesView)) }
        return frames
    }

    /// A frame is its length, big-endian, then the payload.
    @Test func encodingIsALengthPrefix() {
        #expect(Array(ClusterFrame.encode([0xAA, 0xBB]).readableBytesView) == [0, 0, 0, 2, 0xAA, 0xBB])
        #expect(Array(ClusterFrame.encode([]).readableBytesView) == [0, 0, 0, 0])
    }

    /// One byte per read: no frame comes out early, none is lost, the empty one included.
    @Test func dripFedBytesYieldEveryFrame() throws {
        var reader = ClusterFrameReader(maxFrameBytes: 1000)
        var frames: [[UInt8]] = []
        for byte in Self.wire {
            reader.append(ByteBuffer(bytes: [byte]))
            frames += try Self.drain(&reader)
        }
        #expect(frames == Self.payloads)
        #expect(reader.bufferedBytes == 0)
    }

    /// All frames in one read, then a partial one that completes in a later read.
    @Test func manyFramesPerBufferAndAPartialTail() throws {
        var reader = ClusterFrameReader(maxFrameBytes: 1000)
        let tail = Array(ClusterFrame.encode([7, 7, 7, 7]).readableBytesView)
        reader.append(ByteBuffer(bytes: Self.wire + tail.prefix(5)))
        #expect(try Self.drain(&reader) == Self.payloads)
        #expect(reader.bufferedBytes == 5)
        reader.append(ByteBuffer(bytes: tail.dropFirst(5)))
        #expect(try Self.drain(&reader) == [[7, 7, 7, 7]])
    }

    /// A header announcing more than the limit throws at once, with only the header read.
    @Test func oversizeHeaderThrowsBeforeThePayload() throws {
        var reader = ClusterFrameReader(maxFrameBytes: 100)
        reader.append(ByteBuffer(bytes: [0, 0, 0, 101]))
        #expect(throws: ClusterFrameTooLarge(payloadBytes: 101, maxBytes: 100)) { try reader.next() }
        var exact = ClusterFrameReader(maxFrameBytes: 100)
        exact.append(ClusterFrame.encode([UInt8](repeating: 1, count: 100)))
        #expect(try exact.next()?.readableBytes == 100)
    }

    /// The limit applies from the next header on: raising it after the handshake admits the
    /// larger frame already buffered behind.
    @Test func raisingTheLimitBetweenFrames() throws {
        var reader = ClusterFrameReader(maxFrameBytes: 10)
        var bytes = ClusterFrame.encode([1, 2])
        bytes.writeImmutableBuffer(ClusterFrame.encode([UInt8](repeating: 3, count: 50)))
        reader.append(bytes)
        #expect(try reader.next().map { Array($0.readableBytesView) } == [1, 2])
        reader.maxFrameBytes = 64
        #expect(try reader.next()?.readableBytes == 50)
    }
}
