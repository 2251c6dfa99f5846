import FoxBenchCore
import Testing

@Suite struct FairnessCounterTests {
    // Goal: a message overtaken by another publisher's message sent more than the threshold
    // later counts once; near-simultaneous sends and one publisher's own order do not count.
    @Test func countsOnlyOvertakingBeyondTheThreshold() {
        var counter = FairnessCounter(thresholdNanos: 5_000_000)
        counter.record(sentAt: 100_000_000, publisher: 0)
        counter.record(sentAt: 110_000_000, publisher: 1)
        // Sent 10 ms before the one just delivered, by another publisher: overtaken.
        counter.record(sentAt: 100_500_000, publisher: 2)
        // 3 ms before: within the threshold.
        counter.record(sentAt: 107_000_000, publisher: 0)
        // The same publisher as the latest: its own order is the broker's business, not fairness.
        counter.record(sentAt: 90_000_000, publisher: 1)
        #expect(counter.inversions == 1)
    }
}
