import FoxMQTT

/// Retained messages by topic name (MQTT 5.0 §3.3.1.3): set, replaced, cleared by an empty
/// payload, and sent to new subscriptions.
///
/// Kept as a tree of topic levels, so a wildcard subscription visits only the branches its
/// filter can match: `sensors/+/temperature` among 100,000 retained topics looks at the
/// children of `sensors`, not at every topic. Like `TopicTree`, the walk never exposes
/// dictionary order: `matching` sorts what it found by topic bytes.
final class RetainedMessages {
    private final class Node {
        var children: [TopicLevel: Node] = [:]
        var message: ApplicationMessage?
    }

    private let root = Node()
    private(set) var count = 0
    /// Topic plus payload bytes of every retained message, for `BrokerLimits.retainedBytesMax`.
    private(set) var byteCount = 0
    /// Topics set or cleared since `takeChanged`: the rows a checkpoint rewrites.
    private var changed: Set<ExactString> = []

    static func size(of message: ApplicationMessage) -> Int {
        message.topicName.utf8.count + message.payload.readableBytes
    }

    /// The retained message of a topic, expired or not.
    func message(at topicName: String) -> ApplicationMessage? {
        var node = root
        for level in topicLevels(topicName) {
            guard let child = node.children[TopicLevel(level)] else { return nil }
            node = child
        }
        return node.message
    }

    /// Whether storing `message` (a set, not a clear) stays within the limits: replacing a
    /// topic's message counts only the difference.
    func admits(_ message: ApplicationMessage, limits: BrokerLimits) -> Bool {
        let previous = self.message(at: message.topicName)
        let addedCount = previous == nil ? 1 : 0
        let addedBytes = Self.size(of: message) - (previous.map(Self.size(of:)) ?? 0)
        return count + addedCount <= limits.retainedMessageCountMax
            && (addedBytes <= 0 || byteCount + addedBytes <= limits.retainedBytesMax)
    }

    func store(_ message: ApplicationMessage) {
        let levels = topicLevels(message.topicName)
        changed.insert(ExactString(message.topicName))
        if message.payload.readableBytes == 0 {
            remove(levels: levels)
            return
        }
        var node = root
        for level in levels {
            node = node.children.child(at: level, orInsert: Node.init)
        }
        if let previous = node.message {
            byteCount -= Self.size(of: previous)
        } else {
            count += 1
        }
        var stored = message
        stored.retain = true
        stored.payload = message.payload.compacted()
        node.message = stored
        byteCount += Self.size(of: stored)
    }

    /// Clears a topic (an expired message's purge).
    func remove(topicName: String) {
        changed.insert(ExactString(topicName))
        remove(levels: topicLevels(topicName))
    }

    /// The changed topics, sorted, and a fresh start.
    func takeChanged() -> [ExactString] {
        defer { changed.removeAll(keepingCapacity: true) }
        return changed.sorted()
    }

    /// Every retained message, sorted by topic bytes (rows, digests, foxdump).
    func all() -> [ApplicationMessage] {
        var found: [ApplicationMessage] = []
        collectAll(from: root, atRoot: false, into: &found)
        found.sort { ExactString($0.topicName) < ExactString($1.topicName) }
        return found
    }

    /// Clears a topic and prunes the branches left empty, so cleared topics cost nothing.
    private func remove(levels: [Substring]) {
        var path = [root]
        for level in levels {
            guard let child = path[path.count - 1].children[TopicLevel(level)] else { return }
            path.append(child)
        }
        guard let previous = path[path.count - 1].message else { return }
        path[path.count - 1].message = nil
        count -= 1
        byteCount -= Self.size(of: previous)
        for depth in stride(from: levels.count, to: 0, by: -1) {
            let node = path[depth]
            guard node.message == nil && node.children.isEmpty else { break }
            path[depth - 1].children[TopicLevel(levels[depth - 1])] = nil
        }
        assert(count >= 0)
    }

    /// The unexpired retained messages matching a filter, sorted by topic so every node sends
    /// them in the same order. Expired ones are never sent; the deadline index purges them.
    func matching(filter: String, nowMillis: UInt64) -> [ApplicationMessage] {
        var found: [ApplicationMessage] = []
        collect(from: root, levels: topicLevels(filter)[...], atRoot: true, into: &found)
        found.removeAll { $0.isExpired(atMillis: nowMillis) }
        if found.count > 1 { found.sort { ExactString($0.topicName) < ExactString($1.topicName) } }
        return found
    }

    private func collect(
        from node: Node, levels: ArraySlice<Substring>, atRoot: Bool, into found: inout [ApplicationMessage]
    ) {
        guard let level = levels.first else {
            if let message = node.message { found.append(message) }
            return
        }
        if level.utf8.elementsEqual("#".utf8) {
            // `#` matches the parent level too (`a/#` matches `a`) and everything below.
            collectAll(from: node, atRoot: atRoot, into: &found)
        } else if level.utf8.elementsEqual("+".utf8) {
            for (key, child) in node.children where !(atRoot && key.startsWithDollar) {
                collect(from: child, levels: levels.dropFirst(), atRoot: false, into: &found)
            }
        } else if let child = node.children[TopicLevel(level)] {
            collect(from: child, levels: levels.dropFirst(), atRoot: false, into: &found)
        }
    }

    private func collectAll(from node: Node, atRoot: Bool, into found: inout [ApplicationMessage]) {
        if let message = node.message { found.append(message) }
        // A filter starting with a wildcard does not match topics starting with `$` (§4.7.2).
        for (key, child) in node.children where !(atRoot && key.startsWithDollar) {
            collectAll(from: child, atRoot: false, into: &found)
        }
    }
}

extension TopicLevel {
    fileprivate var startsWithDollar: Bool { value.utf8.first == UInt8(ascii: "$") }
}
