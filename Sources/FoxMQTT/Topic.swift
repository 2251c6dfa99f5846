/// Topic names and topic filters (MQTT 5.0 §4.7). Topics are '/'-separated levels; a filter may
/// use '+' for exactly one level and '#' for the rest of the topic. A shared subscription's
/// filter is "$share/{ShareName}/{filter}" (§4.8.2).
///
/// The decoder checks only what makes a packet malformed (wildcards in a PUBLISH topic name);
/// a filter that misuses wildcards is a well-formed packet the broker answers with SUBACK
/// 0x8F Topic Filter Invalid, using these helpers.
public enum Topic {
    /// The prefix of a shared subscription's topic filter (§4.8.2).
    public static let sharePrefix = "$share/"

    /// A topic name: non-empty, without '+' or '#' (§4.7.3, §3.3.2.1).
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        guard !name.isEmpty else { return false }
        return !name.utf8.contains { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }
    }

    /// A topic filter (§4.7.1): non-empty; '#' only as the whole last level; '+' only as a
    /// whole level. Shared subscription syntax is not interpreted here; see `isValidSharedFilter`.
    public static func isValidFilter(_ filter: some StringProtocol) -> Bool {
        guard !filter.isEmpty else { return false }
        let bytes = filter.utf8
        var levelStart = true  // the previous byte was '/' or the start
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            let next = bytes.index(after: index)
            switch byte {
            case UInt8(ascii: "#"):
                // Alone in its level, and the last level.
                guard levelStart, next == bytes.endIndex else { return false }
            case UInt8(ascii: "+"):
                guard levelStart, next == bytes.endIndex || bytes[next] == UInt8(ascii: "/") else { return false }
            default:
                break
            }
            levelStart = byte == UInt8(ascii: "/")
            index = next
        }
        return true
    }

    /// Whether the filter uses the shared subscription syntax (starts with "$share/").
    public static func isShared(_ filter: some StringProtocol) -> Bool {
        filter.utf8.starts(with: sharePrefix.utf8)
    }

    /// Splits "$share/GROUP/FILTER" into its share name and filter (§4.8.2). Returns nil when
    /// the filter does not start with "$share/", or when the share name is empty or holds '+'
    /// or '#', or the filter part is empty. The filter part is not checked: use `isValidFilter`.
    public static func parseShared(_ filter: String) -> (shareName: String, filter: String)? {
        guard isShared(filter) else { return nil }
        let rest = filter.utf8.dropFirst(sharePrefix.utf8.count)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let shareName = rest[rest.startIndex..<slash]
        let inner = rest[rest.index(after: slash)...]
        guard !shareName.isEmpty, !inner.isEmpty,
            !shareName.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") })
        else { return nil }
        return (String(Substring(shareName)), String(Substring(inner)))
    }

    /// A valid shared subscription filter: "$share/", a valid share name, '/', a valid filter
    /// (§4.8.2) [MQTT-4.8.2-1, MQTT-4.8.2-2].
    public static func isValidSharedFilter(_ filter: String) -> Bool {
        guard let parts = parseShared(filter) else { return false }
        return isValidFilter(parts.filter)
    }

    /// The number of levels: one more than the number of '/' ("a/b" has 2, "/" has 2, "a" 1).
    public static func levelCount(_ topic: some StringProtocol) -> Int {
        var count = 1
        for byte in topic.utf8 where byte == UInt8(ascii: "/") { count += 1 }
        return count
    }
}
