import FoxBenchCore
import NIOCore
import Testing

@Suite struct SequenceTrackerTests {
    @Test func inOrderStreamHasNoLossDuplicatesOrViolations() {
        var tracker = SequenceTracker()
        for n in 0..<1000 { tracker.record(UInt64(n)) }
        #expect(tracker.unique == 1000)
        #expect(tracker.lost(expected: 1000) == 0)
        #expect(tracker.duplicates == 0)
        #expect(tracker.orderViolations == 0)
        #expect(tracker.holes.isEmpty)
    }

    @Test func gapsAreLostUntilFilled() {
        var tracker = SequenceTracker()
        for n: UInt64 in [0, 1, 4, 5, 9] { tracker.record(n) }
        #expect(tracker.holes == [2..<4, 6..<9])
        #expect(tracker.lost(expected: 10) == 5)
        tracker.record(7)  // late: fills the middle of a hole
        #expect(tracker.holes == [2..<4, 6..<7, 8..<9])
        #expect(tracker.orderViolations == 1)
        tracker.record(2)
        tracker.record(3)
        tracker.record(6)
        tracker.record(8)
        #expect(tracker.holes.isEmpty)
        #expect(tracker.orderViolations == 5)
        #expect(tracker.lost(expected: 10) == 0)
        #expect(tracker.duplicates == 0)
    }

    @Test func repeatsAreDuplicatesNotViolations() {
        var tracker = SequenceTracker()
        for n: UInt64 in [0, 1, 1, 2, 0, 3, 3] { tracker.record(n) }
        #expect(tracker.received == 7)
        #expect(tracker.unique == 4)
        #expect(tracker.duplicates == 3)
        #expect(tracker.orderViolations == 0)
        // A late arrival, then the same again: one violation, one duplicate.
        tracker.record(6)
        tracker.record(5)
        tracker.record(5)
        #expect(tracker.orderViolations == 1)
        #expect(tracker.duplicates == 4)
        #expect(tracker.lost(expected: 7) == 1)  // 4 never came
    }

    @Test func countsAddUp() {
        var a = SequenceTracker()
        for n: UInt64 in [0, 2, 1, 2] { a.record(n) }
        var counts = DeliveryCounts()
        counts.add(a, expected: 5)
        counts.add(SequenceTracker(), expected: 3)
        #expect(counts.expected == 8)
        #expect(counts.unique == 3)
        #expect(counts.lost == 5)
        #expect(counts.duplicates == 1)
        #expect(counts.orderViolations == 1)
    }
}

@Suite struct PayloadStampTests {
    @Test func roundTripsInPlace() {
        var buffer = ByteBuffer(bytes: [1, 2, 3])
        buffer.writeImmutableBuffer(PayloadStamp.makePayload(size: 40))
        let fields = PayloadStamp.Fields(publisher: 7, sequence: 123_456_789_012, timestamp: 42)
        PayloadStamp.write(fields, into: &buffer, at: 3)
        #expect(buffer.readableBytes == 43)
        #expect(PayloadStamp.read(buffer, at: 3) == fields)
        #expect(PayloadStamp.read(buffer, at: 0) == nil)  // no magic there
        #expect(PayloadStamp.read(ByteBuffer(bytes: [0x46, 0x58, 0x42, 0x31]), at: 0) == nil)  // too short
    }
}

@Suite struct TopicPlanTests {
    @Test func perPublisherPairsSubscribersWithPublishers() {
        let plan = TopicPlan(prefix: "bench", mode: .perPublisher, publishers: 3)
        #expect(plan.publisherTopics(2) == ["bench/2"])
        #expect(plan.subscriberFilter(4) == "bench/1")
        #expect(plan.receives(subscriber: 4, publisher: 1))
        #expect(!plan.receives(subscriber: 4, publisher: 2))
        #expect(plan.expectedCount(subscriber: 4, publisher: 2, sent: 10) == 0)
    }

    @Test func treeLeafFilterSeesEveryKthMessage() {
        let plan = TopicPlan(prefix: "bench", mode: .tree, publishers: 2, treeWidth: 4, treeFilter: .leaf)
        #expect(plan.publisherTopics(1) == ["bench/1/0", "bench/1/1", "bench/1/2", "bench/1/3"])
        #expect(plan.subscriberFilter(6) == "bench/+/2")
        // Of 0..<10, subscriber 6 (leaf 2) sees 2 and 6: stream positions 0 and 1.
        #expect(plan.expectedCount(subscriber: 6, publisher: 0, sent: 10) == 2)
        #expect(plan.expectedCount(subscriber: 6, publisher: 0, sent: 2) == 0)
        #expect(plan.expectedCount(subscriber: 6, publisher: 0, sent: 3) == 1)
        #expect(plan.streamIndex(subscriber: 6, sequence: 6) == 1)
        let all = TopicPlan(prefix: "bench", mode: .tree, publishers: 2, treeWidth: 4, treeFilter: .all)
        #expect(all.subscriberFilter(0) == "bench/#")
        #expect(all.expectedCount(subscriber: 0, publisher: 1, sent: 10) == 10)
    }
}
