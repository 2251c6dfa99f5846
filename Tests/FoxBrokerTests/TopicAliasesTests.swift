import Testing

@testable import FoxBroker

/// Outbound topic aliases (MQTT 5.0 §3.3.2.3.4).
@Suite struct TopicAliasesTests {
    // Goal: two topics that are canonically equal but byte-different (a precomposed "é" and
    // "e" with a combining accent) are different topics and get different aliases; the same
    // bytes again get the alias alone.
    @Test func aliasesAreKeyedByBytes() {
        var aliases = TopicAliases(inboundMaximum: 0)
        aliases.outboundMaximum = 10
        let precomposed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        #expect(precomposed == decomposed, "Swift compares canonically: the trap this test is about")
        let first = aliases.applyOutbound(topicName: precomposed)
        let second = aliases.applyOutbound(topicName: decomposed)
        #expect(first.topicName == precomposed && first.alias == 1)
        #expect(Array(second.topicName.utf8) == Array(decomposed.utf8) && second.alias == 2)
        let again = aliases.applyOutbound(topicName: decomposed)
        #expect(again.topicName.isEmpty && again.alias == 2)
    }

    // Goal: an alias that would push the PUBLISH over the client's Maximum Packet Size is
    // neither used nor defined; the topic goes in full.
    @Test func anAliasThatDoesNotFitIsNotUsed() {
        var aliases = TopicAliases(inboundMaximum: 0)
        aliases.outboundMaximum = 10
        let refused = aliases.applyOutbound(topicName: "a/b") { _, _ in false }
        #expect(refused.topicName == "a/b" && refused.alias == nil)
        let defined = aliases.applyOutbound(topicName: "a/b")
        #expect(defined.alias == 1, "the refused one did not use up alias 1")
        let knownButTooLarge = aliases.applyOutbound(topicName: "a/b") { topic, _ in !topic.isEmpty }
        #expect(knownButTooLarge.topicName == "a/b" && knownButTooLarge.alias == nil)
    }
}
