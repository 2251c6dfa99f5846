/// Whether a topic name matches a (non-shared) topic filter (MQTT 5.0 §4.7): `+` matches one
/// level, a trailing `#` matches the parent level and everything below, and topics beginning
/// with `$` are not matched by a leading wildcard (§4.7.2). Levels are compared as bytes, with
/// no normalization (§4.7.3). The reference rule: `TopicTree` and `RetainedMessages` walk
/// their trees instead, and the tests check them against this.
func topicMatches(filter: String, topicName: String) -> Bool {
    if topicName.utf8.first == UInt8(ascii: "$"), let first = filter.utf8.first,
        first == UInt8(ascii: "+") || first == UInt8(ascii: "#")
    {
        return false
    }
    var filterLevels = FoxBrokerCore.topicLevels(filter)[...]
    var nameLevels = FoxBrokerCore.topicLevels(topicName)[...]
    while let filterLevel = filterLevels.first {
        if filterLevel.hasSameBytes(as: "#") { return true }
        guard let nameLevel = nameLevels.first else { return false }
        if !filterLevel.hasSameBytes(as: "+") && !filterLevel.hasSameBytes(as: nameLevel) { return false }
        filterLevels = filterLevels.dropFirst()
        nameLevels = nameLevels.dropFirst()
    }
    return nameLevels.isEmpty
}

/// The levels of a topic name or filter, split at each '/' byte. Not `String.split`, which
/// works on grapheme clusters: "a/\u{301}b" is one cluster "/\u{301}" there, but two levels here.
func topicLevels(_ topic: String) -> [Substring] {
    topic.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { Substring($0) }
}
