/// Whether a topic name matches a (non-shared) topic filter (MQTT 5.0 §4.7): `+` matches one
/// level, a trailing `#` matches the parent level and everything below, and topics beginning
/// with `$` are not matched by a leading wildcard (§4.7.2). Used where a tree walk is not
/// available, e.g. retained messages against a new subscription.
func topicMatches(filter: String, topicName: String) -> Bool {
    if topicName.first == "$", let first = filter.first, first == "+" || first == "#" {
        return false
    }
    var filterLevels = filter.split(separator: "/", omittingEmptySubsequences: false)[...]
    var topicLevels = topicName.split(separator: "/", omittingEmptySubsequences: false)[...]
    while let filterLevel = filterLevels.first {
        if filterLevel == "#" { return true }
        guard let topicLevel = topicLevels.first else { return false }
        if filterLevel != "+" && filterLevel != topicLevel { return false }
        filterLevels = filterLevels.dropFirst()
        topicLevels = topicLevels.dropFirst()
    }
    return topicLevels.isEmpty
}
