import CArgon2

/// libargon2 refused to hash (bad parameter, short salt, out of memory, ...).
public struct PasswordHashError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libargon2's `argon2_error_codes` value.
    public let code: Int32

    public init(code: Int32) {
        self.code = code
    }

    public var description: String {
        "password hashing failed: \(String(cString: argon2_error_message(code)))"
    }
}
