/// One numbered SQL file of this folder: `number` is its four-digit prefix, `name` the file
/// name, `sql` its text exactly as embedded (its SHA-256 is recorded when it is applied).
public struct AdminMigration: Sendable, Equatable {
    public let number: Int
    public let name: String
    public let sql: String

    public init(number: Int, name: String, sql: String) {
        self.number = number
        self.name = name
        self.sql = sql
    }

    init(number: Int, name: String, bytes: [UInt8]) {
        self.init(number: number, name: name, sql: String(decoding: bytes, as: UTF8.self))
    }
}

/// The numbered SQL files of this folder, embedded in the binary, in order.
///
/// To add one: write `NNNN_what.sql` (the next number; never edit a released file, the runner
/// refuses a database whose recorded text differs), add `.embedInCode("NNNN_what.sql")` to the
/// `FoxMigrations` target in Package.swift, and append it here. SwiftPM names the embedded bytes
/// after the file with its first character, a digit, replaced by `_`: `0002_what.sql` is
/// `PackageResources._002_what_sql`.
public enum AdminMigrations {
    public static let all: [AdminMigration] = [
        AdminMigration(number: 1, name: "0001_admin.sql", bytes: PackageResources._001_admin_sql),
        AdminMigration(number: 2, name: "0002_cluster_admin.sql", bytes: PackageResources._002_cluster_admin_sql),
    ]
}
