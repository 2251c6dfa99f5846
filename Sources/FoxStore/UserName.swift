/// The rules for a user name in `users.toml`.
///
/// A name is what a client sends as the MQTT user name, so it must be a string MQTT can
/// carry: non-empty, at most 65535 UTF-8 bytes, and without control characters (MQTT
/// forbids U+0000 and discourages the others; they are also invisible in a file and in
/// logs). Anything else is allowed: names that are not bare TOML keys are quoted when
/// the file is written.
public enum UserName {
    /// The MQTT UTF-8 string limit.
    public static let maximumUTF8Length = 65535

    /// Why `name` is not a valid user name, or nil if it is.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "user name is empty" }
        if name.utf8.count > maximumUTF8Length {
            return "user name is longer than \(maximumUTF8Length) bytes"
        }
        if let c = name.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            return "user name contains the control character U+\(hex4(c.value))"
        }
        return nil
    }

    /// Whether `name` is a valid user name.
    public static func isValid(_ name: String) -> Bool {
        problem(with: name) == nil
    }

    private static func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}
