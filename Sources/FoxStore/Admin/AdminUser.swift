/// A user row of the admin database.
public struct AdminUser: Sendable, Equatable {
    /// The MQTT user name.
    public let name: String
    /// The Argon2 PHC string.
    public let passwordHash: String
    /// UTC, ISO 8601 (`2025-01-31T12:00:00.000Z`).
    public let createdAt: String
    /// When the password last changed, UTC, ISO 8601.
    public let updatedAt: String
}

/// What an import of users (a `users.toml`) did.
public struct UsersImportReport: Sendable, Equatable, CustomStringConvertible {
    /// The file imported.
    public let source: String
    /// Users that were not in the database.
    public let added: [String]
    /// Users whose password hash the file replaced.
    public let replaced: [String]
    /// Users already in the database with the same hash.
    public let unchanged: [String]

    /// How many users the file held.
    public var count: Int { added.count + replaced.count + unchanged.count }

    /// E.g. `imported 3 users from foxmq.d/users.toml (2 added, 1 replaced, 0 unchanged)`.
    public var description: String {
        "imported \(count) user\(count == 1 ? "" : "s") from \(source) "
            + "(\(added.count) added, \(replaced.count) replaced, \(unchanged.count) unchanged)"
    }
}
