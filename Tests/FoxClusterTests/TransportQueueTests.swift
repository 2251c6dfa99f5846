import NIOCore
import Testing

@testable import FoxCluster

/// The outbound queue's bound and the reconnect delays, as values.
@Suite("Cluster outbound queue and backoff")
struct TransportQueueTests {
    static func frame(_ tag: UInt8, payloadBytes: Int) -> ByteBuffer {
        ClusterFrame.encode([tag] + [UInt8](repeating: 0, count: payloadBytes - 1))
    }

    /// A frame that does not fit drops the oldest frames, as many as it takes, never more.
    @Test func appendDropsTheOldestUntilTheFrameFits() {
        var queue = ClusterOutboundQueue(maxBytes: 100)
        for tag in 0..<4 { #expect(queue.append(Self.frame(UInt8(tag), payloadBytes: 16)) == 0) }  // 4 × 20 bytes
        #expect(queue.bytes == 80 && queue.count == 4)
        #expect(queue.append(Self.frame(4, payloadBytes: 56)) == 2)  // 60 bytes: 80 + 60 − 2 × 20 = 100
        #expect(queue.bytes == 100 && queue.count == 3)
        let batch = queue.popBatch(batchBytes: 1000)
        #expect(batch.map { $0.getInteger(at: 4, as: UInt8.self) } == [2, 3, 4])
        #expect(queue.isEmpty && queue.bytes == 0)
    }

    /// A batch stops near its byte budget but always holds at least one frame.
    @Test func popBatchHonoursItsBudget() {
        var queue = ClusterOutboundQueue(maxBytes: 1000)
        for tag in 0..<5 { _ = queue.append(Self.frame(UInt8(tag), payloadBytes: 96)) }  // 100 bytes each
        #expect(queue.popBatch(batchBytes: 250).count == 2)
        #expect(queue.popBatch(batchBytes: 10).count == 1)
        #expect(queue.removeAll() == 2)
        #expect(queue.append(Self.frame(9, payloadBytes: 2000)) == 0)  // longer than the bound: kept alone
        #expect(queue.append(Self.frame(10, payloadBytes: 10)) == 1)
        #expect(queue.popBatch(batchBytes: 10).count == 1)
        #expect(queue.popBatch(batchBytes: 10).isEmpty)
    }

    /// 100 ms doubling to 5 s; jitter takes off up to half, from the injected random value.
    @Test func backoffDoublesToItsCapWithJitter() {
        let backoff = ClusterTransport.ReconnectBackoff()
        #expect(
            (0..<8).map { backoff.delayMillis(attempt: $0, random: 0) } == [100, 200, 400, 800, 1600, 3200, 5000, 5000])
        #expect(backoff.delayMillis(attempt: 1000, random: 0) == 5000)
        #expect(backoff.delayMillis(attempt: 0, random: 0.5) == 75)
        #expect(backoff.delayMillis(attempt: 6, random: 0.999) == 2503)
    }

    /// Addresses as the book writes them.
    @Test func addressesSplitIntoHostAndPort() {
        #expect(ClusterTransport.splitAddress("127.0.0.1:5000")! == ("127.0.0.1", 5000))
        #expect(ClusterTransport.splitAddress("node-2.example:80")! == ("node-2.example", 80))
        #expect(ClusterTransport.splitAddress("[::1]:5000")! == ("::1", 5000))
        for bad in ["127.0.0.1", "::1:5000", ":5000", "host:70000", "host:x"] {
            #expect(ClusterTransport.splitAddress(bad) == nil, "\(bad)")
        }
    }
}
