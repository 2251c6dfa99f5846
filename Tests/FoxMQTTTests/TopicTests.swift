import FoxMQTT
import Testing

@Suite struct TopicTests {
    // Goal: topic names are non-empty and wildcard-free.
    // MQTT 5.0 §4.7.3, §3.3.2.1 [MQTT-3.3.2-2].
    @Test func names() {
        for name in ["a", "a/b", "/", "a//b", "$SYS/x", " ", "é/🦊"] { #expect(Topic.isValidName(name), "\(name)") }
        for name in ["", "+", "#", "a/+", "a/#", "a+b"] { #expect(!Topic.isValidName(name), "\(name)") }
        #expect(Topic.isValidName("x/a/b".dropFirst(2)))
    }

    // Goal: '#' only as the whole last level, '+' only as a whole level.
    // MQTT 5.0 §4.7.1.2 [MQTT-4.7.1-1], §4.7.1.3 [MQTT-4.7.1-2].
    @Test func filters() {
        for filter in ["#", "+", "a/#", "a/+", "+/+", "+/a/#", "/", "//", "/+", "a/b", "$share/g/a", "+/#"] {
            #expect(Topic.isValidFilter(filter), "\(filter)")
        }
        for filter in ["", "a#", "a/b#", "#/a", "a/#/b", "a+", "+a", "a/+b", "a/b+/c", "##", "++"] {
            #expect(!Topic.isValidFilter(filter), "\(filter)")
        }
    }

    // Goal: shared subscriptions split into share name and filter; invalid ones are nil.
    // MQTT 5.0 §4.8.2 [MQTT-4.8.2-1, MQTT-4.8.2-2].
    @Test func shared() {
        #expect(Topic.parseShared("$share/g/a/b")! == ("g", "a/b"))
        #expect(Topic.parseShared("$share/group/#")! == ("group", "#"))
        #expect(Topic.parseShared("a/b") == nil)
        #expect(Topic.parseShared("$share") == nil)
        #expect(Topic.parseShared("$share/g") == nil)
        #expect(Topic.parseShared("$share/g/") == nil)
        #expect(Topic.parseShared("$share//a") == nil)
        #expect(Topic.parseShared("$share/g+/a") == nil)
        #expect(Topic.parseShared("$share/#/a") == nil)
        #expect(Topic.isShared("$share/g/a") && !Topic.isShared("$sharex/g/a"))
        #expect(Topic.isValidSharedFilter("$share/g/+/x"))
        #expect(!Topic.isValidSharedFilter("$share/g/a#"))
        #expect(!Topic.isValidSharedFilter("a/b"))
    }

    // Goal: levels are counted by separators, empty levels included.
    // MQTT 5.0 §4.7.1.1: "/" separates levels; empty levels count.
    @Test func levels() {
        #expect(Topic.levelCount("a") == 1)
        #expect(Topic.levelCount("a/b") == 2)
        #expect(Topic.levelCount("/") == 2)
        #expect(Topic.levelCount("a//b/") == 4)
        #expect(Topic.levelCount("") == 1)
    }
}
