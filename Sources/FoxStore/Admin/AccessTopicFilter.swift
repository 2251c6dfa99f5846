/// Topic matching for access rules, written here so that FoxStore stays independent of the
/// broker's modules. Follows MQTT 5 section 4.7: levels are separated by `/`; `+` matches exactly
/// one level; `#` (last, alone in its level) matches the parent level and any number of child
/// levels; a topic whose first level starts with `$` is not matched by a filter whose first
/// level is a wildcard. Levels are compared as exact strings (no Unicode normalization).
enum AccessTopicFilter {
    /// The longest topic filter or name MQTT can carry, in UTF-8 bytes.
    static let lengthMaxBytes = 65535
    /// The prefix of a shared subscription request: `$share/GROUP/FILTER`.
    static let sharePrefix = "$share/"

    /// Why `filter` cannot be the topic filter of a rule, or nil if it can.
    static func problem(withRuleFilter filter: String) -> String? {
        if filter.isEmpty { return "it is empty" }
        if filter.utf8.count > lengthMaxBytes { return "it is longer than \(lengthMaxBytes) bytes" }
        if filter.utf8.contains(0) { return "it contains U+0000" }
        if filter.hasPrefix(sharePrefix) {
            return "a rule names the filter itself: $share/GROUP/FILTER requests are checked on FILTER"
        }
        return wildcardProblem(levels(filter))
    }

    /// Whether `filter` is a valid MQTT topic filter (the shape of a subscription request).
    static func isValidFilter(_ filter: String) -> Bool {
        !filter.isEmpty && filter.utf8.count <= lengthMaxBytes && !filter.utf8.contains(0)
            && wildcardProblem(levels(filter)) == nil
    }

    /// Whether `topic` is a valid MQTT topic name (no wildcards).
    static func isValidTopicName(_ topic: String) -> Bool {
        !topic.isEmpty && topic.utf8.count <= lengthMaxBytes
            && !topic.utf8.contains { $0 == 0 || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }
    }

    static func levels(_ s: String) -> [Substring] {
        s.split(separator: "/", omittingEmptySubsequences: false)
    }

    private static func wildcardProblem(_ levels: [Substring]) -> String? {
        for (index, level) in levels.enumerated() {
            if level == "#" {
                if index != levels.count - 1 { return "'#' must be the last level" }
            } else if level != "+" && level.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") })
            {
                return "a wildcard ('+' or '#') must be a whole level"
            }
        }
        return nil
    }

    /// Whether `filter` holds a `%u` or `%c` placeholder.
    static func hasPlaceholders(_ filter: String) -> Bool {
        filter.contains("%u") || filter.contains("%c")
    }

    /// `filter` with `%u` replaced by `username` and `%c` by `clientIdentifier`, or nil when the
    /// rule cannot apply: a placeholder whose value is missing (anonymous client for `%u`), empty,
    /// or holds `/`, `+` or `#` (it would add levels or wildcards, widening the rule), or a value
    /// starting with `$` at the very start of the filter.
    static func substituting(_ filter: String, username: String?, clientIdentifier: String) -> String? {
        var out = ""
        out.reserveCapacity(filter.utf8.count)
        var rest = Substring(filter)
        while let percent = rest.firstIndex(of: "%") {
            out += rest[..<percent]
            let next = rest.index(after: percent)
            guard next < rest.endIndex, rest[next] == "u" || rest[next] == "c" else {
                out += "%"
                rest = rest[next...]
                continue
            }
            let value = rest[next] == "u" ? username : clientIdentifier
            guard let value, isSafeSubstitution(value) else { return nil }
            // A value that would start the filter with `$` would reach the `$` topics that
            // wildcards never match (`$SYS/...`): not what a rule like `%c/#` grants.
            if out.isEmpty && value.hasPrefix("$") { return nil }
            out += value
            rest = rest[rest.index(after: next)...]
        }
        out += rest
        return out
    }

    private static func isSafeSubstitution(_ value: String) -> Bool {
        !value.isEmpty
            && !value.utf8.contains {
                $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") || $0 == 0
            }
    }

    /// Whether the rule filter `filter` matches the topic name `topic` (both split into levels).
    static func matches(filter: [Substring], topic: [Substring]) -> Bool {
        guard let first = filter.first, let topicFirst = topic.first else { return false }
        if topicFirst.hasPrefix("$") && (first == "+" || first == "#") { return false }
        var i = 0
        while i < filter.count {
            if filter[i] == "#" { return true }
            if i == topic.count { return false }
            if filter[i] != "+" && filter[i] != topic[i] { return false }
            i += 1
        }
        return i == topic.count
    }

    /// Whether every topic that `request` (a subscription's filter) matches is also matched by
    /// `rule`: equal filters, or a rule that is wider level by level (`a/+` covers `a/b`, `a/#`
    /// covers `a/+/c` and `a`, but `a/+` does not cover `a/#`).
    static func covers(rule: [Substring], request: [Substring]) -> Bool {
        guard let first = rule.first, let requestFirst = request.first else { return false }
        if requestFirst.hasPrefix("$") && (first == "+" || first == "#") { return false }
        var i = 0
        while true {
            if i < rule.count && rule[i] == "#" { return true }
            if i == request.count { return i == rule.count }
            if i == rule.count { return false }
            switch request[i] {
            case "#":
                return false
            case "+":
                if rule[i] != "+" { return false }
            default:
                if rule[i] != "+" && rule[i] != request[i] { return false }
            }
            i += 1
        }
    }

    /// Whether some topic name is matched by both filters `a` and `b`.
    static func overlaps(_ a: [Substring], _ b: [Substring]) -> Bool {
        guard let aFirst = a.first, let bFirst = b.first else { return false }
        let aWild = aFirst == "+" || aFirst == "#"
        let bWild = bFirst == "+" || bFirst == "#"
        if (aWild && !bWild && bFirst.hasPrefix("$")) || (bWild && !aWild && aFirst.hasPrefix("$")) { return false }
        var i = 0
        while true {
            if (i < a.count && a[i] == "#") || (i < b.count && b[i] == "#") { return true }
            if i == a.count || i == b.count { return a.count == b.count }
            if a[i] != "+" && b[i] != "+" && a[i] != b[i] { return false }
            i += 1
        }
    }
}
