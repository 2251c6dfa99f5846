import FoxMQTT
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Payloads kept for long do not pin the read buffer they were sliced from.
@Suite struct PayloadCompactionTests {
    // Goal: a small slice of a 64 KiB buffer is copied into storage of its own size; a buffer
    // that is mostly payload is kept as is (no copy on the hot path).
    @Test func smallSliceOfLargeBufferIsCopied() {
        var large = ByteBufferAllocator().buffer(capacity: 65_536)
        large.writeRepeatingByte(0x61, count: 60_000)
        let slice = large.getSlice(at: 100, length: 10)!
        #expect(slice.storageCapacity >= 60_000)
        let compacted = slice.compacted()
        #expect(compacted == slice)
        #expect(compacted.storageCapacity < 1024)

        var exact = ByteBufferAllocator().buffer(capacity: 10)
        exact.writeRepeatingByte(0x62, count: 10)
        #expect(exact.compacted().storageCapacity == exact.storageCapacity)
    }

    // Goal: a retained message keeps its bytes but not the read buffer behind them
    // (MQTT 5.0 §3.3.1.3 says what is retained; the bound is ours).
    @Test func retainedPayloadIsCompacted() {
        var large = ByteBufferAllocator().buffer(capacity: 65_536)
        large.writeRepeatingByte(0x61, count: 60_000)
        let payload = large.getSlice(at: 0, length: 5)!
        let retained = RetainedMessages()
        retained.store(
            ApplicationMessage(
                topicName: "t", payload: payload, qos: .atMostOnce, retain: true, properties: Properties(),
                expiryDeadlineMillis: nil, originClientIdentifier: nil))
        let stored = retained.matching(filter: "t", nowMillis: 0)
        #expect(stored.count == 1)
        #expect(stored.first?.payload == payload)
        #expect((stored.first?.payload.storageCapacity ?? .max) < 1024)
    }
}
