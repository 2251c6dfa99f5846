import FoxMQTT
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore

/// `topicMatches` (the reference rule) and `TopicTree` (the index), separately and against
/// each other.
@Suite struct TopicMatchingTests {
    // Goal: the matching rules of MQTT 5.0 §4.7.1 (wildcards) and §4.7.2 ('$' topics), as a
    // table of filter, topic name, expected.
    @Test(arguments: [
        ("a", "a", true), ("a", "b", false), ("a", "a/b", false), ("a/b", "a", false),
        ("+", "a", true), ("+", "a/b", false), ("+", "/a", false), ("+/+", "/a", true),
        ("a/+", "a/b", true), ("a/+", "a", false), ("a/+", "a/", true), ("a/+/c", "a/b/c", true),
        ("a/+/c", "a//c", true), ("a/+/c", "a/b/d", false),
        ("#", "a", true), ("#", "a/b/c", true), ("#", "/", true),
        ("a/#", "a", true), ("a/#", "a/b", true), ("a/#", "a/b/c", true), ("a/#", "ab", false), ("a/#", "b/a", false),
        ("+/#", "a", true), ("+/#", "a/b", true),
        ("#", "$SYS", false), ("#", "$SYS/x", false), ("+", "$x", false), ("+/x", "$SYS/x", false),
        ("$SYS/#", "$SYS/x", true), ("$SYS/#", "$SYS", true), ("$SYS/+", "$SYS/x", true), ("a/$x", "a/$x", true),
        ("a/#", "a/$x", true), ("/", "/", true), ("//", "/", false), ("a//b", "a//b", true),
        ("A", "a", false), ("a/b", "a/B", false),
    ])
    func matches(filter: String, topicName: String, expected: Bool) {
        #expect(topicMatches(filter: filter, topicName: topicName) == expected)
    }
}

@Suite struct TopicTreeTests {
    /// The non-shared subscribers and shared groups (as "share:members") matching a topic.
    func matchAll(_ tree: TopicTree, _ topicName: String) -> (subscribers: [String], groups: [String]) {
        var subscribers: [String] = []
        var groups: [String] = []
        tree.match(
            topicName: topicName,
            subscriber: { client, _ in subscribers.append(client.value) },
            sharedGroup: { group in groups.append(group.members.map(\.value).joined(separator: ",")) })
        return (subscribers.sorted(), groups.sorted())
    }

    static let entry = SubscriptionEntry(options: SubscriptionOptions(qos: .atLeastOnce), subscriptionIdentifier: nil)

    // Goal: insert reports replacement, remove reports absence, the count follows both, and a
    // removed filter no longer matches (MQTT 5.0 §3.8.4 replacement, §3.10.4 removal).
    @Test func insertReplaceRemove() {
        let tree = TopicTree()
        #expect(tree.insert(filter: "a/+", shareName: nil, clientIdentifier: "x", entry: Self.entry) == false)
        #expect(tree.insert(filter: "a/+", shareName: nil, clientIdentifier: "x", entry: Self.entry) == true)
        #expect(tree.insert(filter: "a/+", shareName: nil, clientIdentifier: "y", entry: Self.entry) == false)
        #expect(tree.insert(filter: "a/+", shareName: "g", clientIdentifier: "x", entry: Self.entry) == false)
        #expect(tree.subscriptionCount == 3)
        #expect(matchAll(tree, "a/b").subscribers == ["x", "y"])
        #expect(matchAll(tree, "a/b").groups == ["x"])

        #expect(tree.remove(filter: "a/+", shareName: nil, clientIdentifier: "x"))
        #expect(!tree.remove(filter: "a/+", shareName: nil, clientIdentifier: "x"))
        #expect(!tree.remove(filter: "a/b", shareName: nil, clientIdentifier: "y"))
        #expect(!tree.remove(filter: "a/+", shareName: "other", clientIdentifier: "x"))
        #expect(tree.subscriptionCount == 2)
        #expect(matchAll(tree, "a/b").subscribers == ["y"])
        #expect(tree.remove(filter: "a/+", shareName: "g", clientIdentifier: "x"))
        #expect(tree.remove(filter: "a/+", shareName: nil, clientIdentifier: "y"))
        #expect(tree.subscriptionCount == 0)
        #expect(matchAll(tree, "a/b") == ([], []))
        // Pruned nodes are rebuilt on demand.
        tree.insert(filter: "a/+", shareName: nil, clientIdentifier: "z", entry: Self.entry)
        #expect(matchAll(tree, "a/b").subscribers == ["z"])
    }

    // Goal: a shared group keeps its members sorted, and the cursor written back through the
    // inout callback survives between matches (MQTT 5.0 §4.8.2: one member per message).
    @Test func sharedGroupMembersAndCursor() {
        let tree = TopicTree()
        for member in ["c", "a", "b"] {
            tree.insert(filter: "t", shareName: "g", clientIdentifier: ExactString(member), entry: Self.entry)
        }
        var chosen: [String] = []
        for _ in 0..<6 {
            tree.match(
                topicName: "t", subscriber: { _, _ in Issue.record("no plain subscriber expected") },
                sharedGroup: { group in
                    #expect(group.members == ["a", "b", "c"])
                    chosen.append(group.members[group.cursor].value)
                    group.cursor = (group.cursor + 1) % group.members.count
                })
        }
        #expect(chosen == ["a", "b", "c", "a", "b", "c"])
    }

    // Goal: removing a member before the cursor keeps the cursor on the same next member, so
    // the round robin neither repeats nor skips one (MQTT 5.0 §4.8.2).
    @Test func sharedGroupCursorAfterRemoval() {
        let tree = TopicTree()
        for member in ["a", "b", "c"] {
            tree.insert(filter: "t", shareName: "g", clientIdentifier: ExactString(member), entry: Self.entry)
        }
        func next() -> String {
            var result = ""
            tree.match(
                topicName: "t", subscriber: { _, _ in },
                sharedGroup: { group in
                    result = group.members[group.cursor % group.members.count].value
                    group.cursor = (group.cursor % group.members.count + 1) % group.members.count
                })
            return result
        }
        #expect(next() == "a")
        #expect(next() == "b")
        tree.remove(filter: "t", shareName: "g", clientIdentifier: "a")
        #expect(next() == "c")
        #expect(next() == "b")
    }

    // Goal: the tree index finds exactly the subscriptions the reference rule `topicMatches`
    // accepts, for random filters and topics (MQTT 5.0 §4.7), shared groups included.
    @Test(arguments: 0..<20)
    func agreesWithBruteForce(seed: UInt64) {
        var random = SplitMix64(seed: seed &+ 0xF0F0)
        func randomTopic() -> String { random.topicName() }
        func randomFilter() -> String { random.topicFilter() }

        let tree = TopicTree()
        var plain: [(client: String, filter: String)] = []
        var shared: [(group: String, filter: String)] = []
        for index in 0..<60 {
            let filter = randomFilter()
            #expect(Topic.isValidFilter(filter), "generator made an invalid filter \(filter)")
            if random.chance(25) {
                // One member per group, named after its group, so a matched group names itself.
                let group = "S\(index)"
                tree.insert(
                    filter: filter, shareName: ExactString("g\(index)"), clientIdentifier: ExactString(group),
                    entry: Self.entry)
                shared.append((group, filter))
            } else {
                let client = "c\(index)"
                tree.insert(filter: filter, shareName: nil, clientIdentifier: ExactString(client), entry: Self.entry)
                plain.append((client, filter))
            }
        }
        // Remove some again, to exercise pruning.
        for _ in 0..<10 where !plain.isEmpty {
            let removed = plain.remove(at: Int.random(in: 0..<plain.count, using: &random))
            #expect(tree.remove(filter: removed.filter, shareName: nil, clientIdentifier: ExactString(removed.client)))
        }
        #expect(tree.subscriptionCount == plain.count + shared.count)

        for _ in 0..<200 {
            let topic = randomTopic()
            let found = matchAll(tree, topic)
            let expectedPlain = plain.filter { topicMatches(filter: $0.filter, topicName: topic) }.map(\.client)
                .sorted()
            let expectedShared = shared.filter { topicMatches(filter: $0.filter, topicName: topic) }.map(\.group)
                .sorted()
            #expect(found.subscribers == expectedPlain, "topic \(topic)")
            #expect(found.groups == expectedShared, "topic \(topic)")
        }
    }
}
