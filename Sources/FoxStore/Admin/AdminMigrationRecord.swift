/// A migration as recorded in the admin database's `schema_migrations` table.
public struct AdminMigrationRecord: Sendable, Equatable {
    /// The file's number (`0001_admin.sql` is 1).
    public let number: Int
    /// The file's name.
    public let name: String
    /// The SHA-256 of the file's text when it was applied, 64 lowercase hex digits.
    public let sha256: String
    /// When it was applied, UTC, ISO 8601 (`2025-01-31T12:00:00.000Z`).
    public let appliedAt: String
}
