import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// Settings of the admin database over the flags' limits.
@Suite struct BrokerSettingTests {
    // Goal: known settings replace the flags' values; unknown keys and bad values are reported
    // and leave the flag's value; the result is deterministic whatever the dictionary order.
    @Test func settingsOverTheFlags() {
        var base = BrokerLimits()
        base.queuedMessageCountMax = 7
        let (limits, problems) = BrokerSetting.limits(
            [
                "max-subscriptions-per-client": "3", "max-retained-bytes": "4096", "max-inflight": "0",
                "colour": "blue", "max-sessions": "many",
            ], over: base)
        #expect(limits.subscriptionCountMax == 3)
        #expect(limits.retainedBytesMax == 4096)
        #expect(limits.inflightCountMax == base.inflightCountMax)
        #expect(limits.sessionCountMax == base.sessionCountMax)
        #expect(limits.queuedMessageCountMax == 7)
        #expect(problems.count == 3)
        #expect(problems.contains { $0.contains("unknown setting colour") })
        #expect(problems.contains { $0.contains("max-inflight: 0 is outside 1...65535") })
        #expect(problems.contains { $0.contains("'many' is not a whole number") })
    }
}
