import FoxMQTT

/// Retained messages by topic name (MQTT 5.0 §3.3.1.3): set, replaced, cleared by an empty
/// payload, and sent to new subscriptions.
struct RetainedMessages {
    private var byTopic: [ExactString: ApplicationMessage] = [:]

    var count: Int { byTopic.count }

    mutating func store(_ message: ApplicationMessage) {
        if message.payload.readableBytes == 0 {
            byTopic.removeValue(forKey: ExactString(message.topicName))
        } else {
            var stored = message
            stored.retain = true
            stored.payload = message.payload.compacted()
            byTopic[ExactString(message.topicName)] = stored
        }
    }

    /// The unexpired retained messages matching a filter, sorted by topic so every node sends
    /// them in the same order. Expired ones are left for the next store to replace; they are
    /// never sent.
    func matching(filter: String, nowMillis: UInt64) -> [ApplicationMessage] {
        if !filter.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }) {
            guard let message = byTopic[ExactString(filter)], !message.isExpired(atMillis: nowMillis) else { return [] }
            return [message]
        }
        return byTopic.keys.filter { topicMatches(filter: filter, topicName: $0.value) }.sorted().compactMap {
            guard let message = byTopic[$0], !message.isExpired(atMillis: nowMillis) else { return nil }
            return message
        }
    }
}
