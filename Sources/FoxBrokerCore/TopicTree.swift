import FoxMQTT

/// One subscription as the topic tree keeps it.
public struct SubscriptionEntry: Sendable, Hashable {
    public var options: SubscriptionOptions
    public var subscriptionIdentifier: UInt32?

    public init(options: SubscriptionOptions, subscriptionIdentifier: UInt32?) {
        self.options = options
        self.subscriptionIdentifier = subscriptionIdentifier
    }
}

/// Subscriptions indexed by topic filter level (MQTT 5.0 §4.7), for matching a topic name in
/// time proportional to its level count, not to the subscription count.
///
/// Matching never exposes dictionary order: callers sort what they collect before anything is
/// sent (the consensus design forbids hash order from reaching ordered output), and a shared
/// group's members are kept in a sorted array with a round-robin cursor.
final class TopicTree {
    final class Node {
        var children: [TopicLevel: Node] = [:]
        /// Non-shared subscriptions at this filter, by client identifier.
        var subscribers: [ExactString: SubscriptionEntry] = [:]
        /// Shared subscriptions at this filter, by share name.
        var sharedGroups: [ExactString: SharedGroup] = [:]

        var isEmpty: Bool { children.isEmpty && subscribers.isEmpty && sharedGroups.isEmpty }
    }

    /// The members of one `$share/NAME/FILTER` (§4.8.2), each message going to one member.
    struct SharedGroup {
        /// Sorted client identifiers, so that the choice is the same on every node.
        var members: [ExactString] = []
        var entries: [ExactString: SubscriptionEntry] = [:]
        var cursor: Int = 0
    }

    private let root = Node()
    private(set) var subscriptionCount = 0

    /// Adds or replaces a subscription; returns true when it replaced one.
    @discardableResult
    func insert(
        filter: String, shareName: ExactString?, clientIdentifier: ExactString, entry: SubscriptionEntry
    ) -> Bool {
        var node = root
        for level in topicLevels(filter) {
            node = node.children.child(at: level, orInsert: Node.init)
        }
        let replaced: Bool
        if let shareName {
            var group = node.sharedGroups[shareName] ?? SharedGroup()
            replaced = group.entries.updateValue(entry, forKey: clientIdentifier) != nil
            if !replaced {
                let index = group.members.partitioningIndex { $0 >= clientIdentifier }
                group.members.insert(clientIdentifier, at: index)
            }
            node.sharedGroups[shareName] = group
        } else {
            replaced = node.subscribers.updateValue(entry, forKey: clientIdentifier) != nil
        }
        if !replaced { subscriptionCount += 1 }
        return replaced
    }

    /// Removes a subscription and prunes empty nodes; returns false when there was none.
    @discardableResult
    func remove(filter: String, shareName: ExactString?, clientIdentifier: ExactString) -> Bool {
        let levels = topicLevels(filter)
        let removed = remove(levels[...], from: root, shareName: shareName, clientIdentifier: clientIdentifier)
        if removed { subscriptionCount -= 1 }
        return removed
    }

    private func remove(
        _ levels: ArraySlice<Substring>, from node: Node, shareName: ExactString?,
        clientIdentifier: ExactString
    ) -> Bool {
        guard let level = levels.first else {
            if let shareName {
                guard var group = node.sharedGroups[shareName],
                    group.entries.removeValue(forKey: clientIdentifier) != nil
                else { return false }
                if let index = group.members.firstIndex(of: clientIdentifier) {
                    group.members.remove(at: index)
                    if group.cursor > index { group.cursor -= 1 }
                }
                node.sharedGroups[shareName] = group.members.isEmpty ? nil : group
                return true
            }
            return node.subscribers.removeValue(forKey: clientIdentifier) != nil
        }
        let key = TopicLevel(level)
        guard let child = node.children[key] else { return false }
        let removed = remove(
            levels.dropFirst(), from: child, shareName: shareName, clientIdentifier: clientIdentifier)
        if child.isEmpty { node.children[key] = nil }
        return removed
    }

    /// Every shared group's round-robin cursor, sorted by share name then filter bytes: the
    /// one part of the tree that the sessions' subscriptions do not determine.
    func sharedGroupCursors() -> [(shareName: ExactString, filter: String, cursor: Int)] {
        var found: [(shareName: ExactString, filter: String, cursor: Int)] = []
        func walk(_ node: Node, path: [Substring]) {
            for (name, group) in node.sharedGroups {
                found.append((name, path.joined(separator: "/"), group.cursor))
            }
            for (level, child) in node.children { walk(child, path: path + [level.value]) }
        }
        walk(root, path: [])
        found.sort { ($0.shareName, ExactString($0.filter)) < ($1.shareName, ExactString($1.filter)) }
        return found
    }

    /// Restores a cursor loaded from the store; false when no such group exists.
    @discardableResult
    func setCursor(shareName: ExactString, filter: String, cursor: Int) -> Bool {
        var node = root
        for level in topicLevels(filter) {
            guard let child = node.children[TopicLevel(level)] else { return false }
            node = child
        }
        guard var group = node.sharedGroups[shareName] else { return false }
        // As it was, even past the end after a removal: the choice takes it modulo the count.
        group.cursor = cursor
        node.sharedGroups[shareName] = group
        return true
    }

    /// Calls `subscriber` for every non-shared subscription matching `topicName` and
    /// `sharedGroup` for every shared group whose filter matches. Topics beginning with `$` are
    /// not matched by a leading `+` or `#` (§4.7.2).
    func match(
        topicName: String,
        subscriber: (ExactString, SubscriptionEntry) -> Void,
        sharedGroup: (inout SharedGroup) -> Void
    ) {
        let levels = topicLevels(topicName)
        let isSystemTopic = topicName.utf8.first == UInt8(ascii: "$")
        match(
            levels[...], node: root, isFirstLevel: true, isSystemTopic: isSystemTopic,
            subscriber: subscriber, sharedGroup: sharedGroup)
    }

    private func match(
        _ levels: ArraySlice<Substring>, node: Node, isFirstLevel: Bool, isSystemTopic: Bool,
        subscriber: (ExactString, SubscriptionEntry) -> Void,
        sharedGroup: (inout SharedGroup) -> Void
    ) {
        let wildcardsAllowed = !(isFirstLevel && isSystemTopic)
        // "a/#" also matches "a" (§4.7.1.2): a '#' child matches whatever is left, even nothing.
        if wildcardsAllowed, let multi = node.children[.multiLevelWildcard] {
            visit(multi, subscriber: subscriber, sharedGroup: sharedGroup)
        }
        guard let level = levels.first else {
            visit(node, subscriber: subscriber, sharedGroup: sharedGroup)
            return
        }
        let rest = levels.dropFirst()
        if let exact = node.children[TopicLevel(level)] {
            match(
                rest, node: exact, isFirstLevel: false, isSystemTopic: isSystemTopic,
                subscriber: subscriber, sharedGroup: sharedGroup)
        }
        if wildcardsAllowed, let single = node.children[.singleLevelWildcard] {
            match(
                rest, node: single, isFirstLevel: false, isSystemTopic: isSystemTopic,
                subscriber: subscriber, sharedGroup: sharedGroup)
        }
    }

    private func visit(
        _ node: Node, subscriber: (ExactString, SubscriptionEntry) -> Void,
        sharedGroup: (inout SharedGroup) -> Void
    ) {
        for (clientIdentifier, entry) in node.subscribers {
            subscriber(clientIdentifier, entry)
        }
        if node.sharedGroups.isEmpty { return }
        // Sorted by share name so the cursors advance in the same order on every node.
        for name in node.sharedGroups.keys.sorted() {
            guard var group = node.sharedGroups[name] else { continue }
            sharedGroup(&group)
            node.sharedGroups[name] = group
        }
    }
}

extension Array {
    /// The first index whose element satisfies `belongsInSecondPartition`, for a sorted array.
    func partitioningIndex(where belongsInSecondPartition: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if belongsInSecondPartition(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
