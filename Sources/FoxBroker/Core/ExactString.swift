/// A string that is equal, hashed and ordered by its UTF-8 bytes. Swift's `String` compares by
/// Unicode canonical equivalence ("caf\u{E9}" == "cafe\u{301}"), but MQTT forbids any
/// normalization of topic names and filters (MQTT 5.0 §4.7.3 [MQTT-4.7.3-4]) and two client
/// identifiers with different bytes are two clients. Every key of the broker core is one.
public struct ExactString: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let value: String

    public init(_ value: String) { self.value = value }
    public init(_ value: Substring) { self.value = String(value) }
    public init(stringLiteral value: String) { self.value = value }

    public static func == (lhs: ExactString, rhs: ExactString) -> Bool {
        lhs.value.utf8.elementsEqual(rhs.value.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        hashUTF8(value.utf8, into: &hasher)
    }

    /// Byte order, the same on every node.
    public static func < (lhs: ExactString, rhs: ExactString) -> Bool {
        lhs.value.utf8.lexicographicallyPrecedes(rhs.value.utf8)
    }

    public var description: String { value }
}

/// One level of a topic name or filter, as a key of the topic tree: compared by bytes, like
/// `ExactString`, without copying the level out of its topic when looking it up.
struct TopicLevel: Hashable {
    let value: Substring

    init(_ value: Substring) { self.value = value }

    static func == (lhs: TopicLevel, rhs: TopicLevel) -> Bool {
        lhs.value.utf8.elementsEqual(rhs.value.utf8)
    }

    func hash(into hasher: inout Hasher) {
        hashUTF8(value.utf8, into: &hasher)
    }

    static let singleLevelWildcard = TopicLevel("+")
    static let multiLevelWildcard = TopicLevel("#")
}

private func hashUTF8<Bytes: Collection<UInt8>>(_ bytes: Bytes, into hasher: inout Hasher) {
    let hashed = bytes.withContiguousStorageIfAvailable { buffer in
        hasher.combine(bytes: UnsafeRawBufferPointer(buffer))
    }
    if hashed == nil {
        for byte in bytes { hasher.combine(byte) }
    }
    hasher.combine(bytes.count)
}

extension Substring {
    /// Byte equality, never Unicode equivalence (see `ExactString`).
    func hasSameBytes(as other: Substring) -> Bool { utf8.elementsEqual(other.utf8) }
}
