import NIOCore

/// One peer's outbound frames (each with its header), bounded in bytes. When a frame does not
/// fit, the oldest frames are dropped to make room: a lagging or dead peer costs at most
/// `maxBytes` (or one frame, if a single frame is longer), and what it misses consensus fetches
/// again by sync.
struct ClusterOutboundQueue {
    let maxBytes: Int
    private var frames = CircularBuffer<ByteBuffer>()
    private(set) var bytes = 0

    init(maxBytes: Int) {
        precondition(maxBytes > 0)
        self.maxBytes = maxBytes
    }

    var count: Int { frames.count }
    var isEmpty: Bool { frames.isEmpty }

    /// Appends a frame, dropping the oldest ones while it does not fit; returns how many were
    /// dropped. A frame longer than the bound replaces the whole queue.
    mutating func append(_ frame: ByteBuffer) -> Int {
        var dropped = 0
        while !frames.isEmpty && bytes + frame.readableBytes > maxBytes {
            bytes -= frames.removeFirst().readableBytes
            dropped += 1
        }
        frames.append(frame)
        bytes += frame.readableBytes
        assert(bytes <= max(maxBytes, frame.readableBytes))
        return dropped
    }

    /// The oldest frames, at least one if any, up to about `batchBytes`.
    mutating func popBatch(batchBytes: Int) -> [ByteBuffer] {
        var batch: [ByteBuffer] = []
        var batchTotal = 0
        while let first = frames.first, batch.isEmpty || batchTotal + first.readableBytes <= batchBytes {
            frames.removeFirst()
            bytes -= first.readableBytes
            batchTotal += first.readableBytes
            batch.append(first)
        }
        return batch
    }

    /// Empties the queue; returns how many frames it held.
    mutating func removeAll() -> Int {
        let count = frames.count
        frames.removeAll()
        bytes = 0
        return count
    }
}
