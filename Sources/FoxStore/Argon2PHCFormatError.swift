/// Why a string is not an Argon2 PHC string.
public struct Argon2PHCFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
