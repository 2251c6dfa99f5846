#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

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
        compareUTF8(lhs.value.utf8, rhs.value.utf8) == 0
    }

    public func hash(into hasher: inout Hasher) {
        hashUTF8(value.utf8, into: &hasher)
    }

    /// Byte order, the same on every node.
    public static func < (lhs: ExactString, rhs: ExactString) -> Bool {
        compareUTF8(lhs.value.utf8, rhs.value.utf8) < 0
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

extension Dictionary where Key == TopicLevel {
    /// The child node at `level` of a topic-level tree, created by `make` when missing. A new
    /// key is a fresh String, so it does not keep the whole topic's storage alive.
    mutating func child(at level: Substring, orInsert make: () -> Value) -> Value {
        if let child = self[TopicLevel(level)] { return child }
        let child = make()
        self[TopicLevel(Substring(String(level)))] = child
        return child
    }
}

/// Three-way byte comparison: memcmp on the contiguous UTF-8 of native strings (the usual
/// case), element by element otherwise.
private func compareUTF8(_ lhs: String.UTF8View, _ rhs: String.UTF8View) -> Int {
    let result = lhs.withContiguousStorageIfAvailable { left in
        rhs.withContiguousStorageIfAvailable { right -> Int in
            let common = min(left.count, right.count)
            if common > 0, let a = left.baseAddress, let b = right.baseAddress {
                let order = memcmp(a, b, common)
                if order != 0 { return Int(order) }
            }
            return left.count - right.count
        }
    }
    if let result = result ?? nil { return result }
    if lhs.elementsEqual(rhs) { return 0 }
    return lhs.lexicographicallyPrecedes(rhs) ? -1 : 1
}

private func hashUTF8<Bytes: Collection<UInt8>>(_ bytes: Bytes, into hasher: inout Hasher) {
    let hashed: Void? = bytes.withContiguousStorageIfAvailable { buffer in
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
