import FoxMigrations
import GRDB

/// Applies the numbered SQL files of `Migrations/` to an admin database, in order.
///
/// - Each pending migration runs in its own `BEGIN IMMEDIATE` transaction together with its row
///   in `schema_migrations` (number, name, SHA-256 of its text, applied time). SQLite's DDL is
///   transactional, so a failing migration leaves no trace: the error names the migration and
///   carries SQLite's message.
/// - Before anything is applied, and again inside each transaction (another process may be
///   migrating the same file), the recorded migrations are checked against the embedded ones:
///   a recorded number beyond the last known one means a newer foxmq made the database; a
///   recorded migration with another name, or whose text changed, is refused.
/// - `schema_migrations` is the runner's own bookkeeping table, created inside the first
///   migration's transaction (so a failing 0001 leaves an empty file); every other table comes
///   from the migration files.
///
/// Not GRDB's `DatabaseMigrator`: it records identifiers only, not the text's checksum, and has
/// no notion of numbers to compare against.
enum AdminMigrationRunner {
    static let tableName = "schema_migrations"

    /// Applies the pending migrations of `migrations` and returns the ones this call applied.
    ///
    /// - Precondition: `migrations` are numbered 1, 2, 3... in order (a programmer error
    ///   otherwise: the list is compiled in).
    static func run(
        _ migrations: [AdminMigration], on queue: DatabaseQueue, path: String
    ) throws(AdminDatabaseError) -> [AdminMigrationRecord] {
        for (index, migration) in migrations.enumerated() {
            precondition(migration.number == index + 1, "migrations must be numbered 1, 2, 3... in order")
        }
        let known = migrations.map { (migration: $0, sha256: SHA256.hexDigest(Array($0.sql.utf8))) }

        let recorded: [AdminMigrationRecord]
        do {
            recorded = try queue.read { db in try records(db) }
        } catch {
            throw AdminDatabaseError(path: path, problem: .cannotOpen(message: sqliteMessage(error)))
        }
        try check(recorded, against: known, path: path)
        let pending = known.filter { entry in !recorded.contains { $0.number == entry.migration.number } }

        var applied: [AdminMigrationRecord] = []
        for (migration, sha256) in pending {
            do {
                try queue.inTransaction(.immediate) { db in
                    try db.execute(
                        sql: """
                            CREATE TABLE IF NOT EXISTS \(tableName) (
                                number INTEGER PRIMARY KEY NOT NULL,
                                name TEXT NOT NULL,
                                sha256 TEXT NOT NULL,
                                applied_at TEXT NOT NULL
                            ) STRICT
                            """)
                    let current = try records(db)
                    try check(current, against: known, path: path)
                    if current.contains(where: { $0.number == migration.number }) {
                        return .commit  // another process applied it meanwhile
                    }
                    do {
                        try db.execute(sql: migration.sql)
                        let violations = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
                        if !violations.isEmpty {
                            throw DatabaseError(
                                resultCode: .SQLITE_CONSTRAINT_FOREIGNKEY,
                                message: "\(violations.count) rows break a foreign key constraint after it")
                        }
                    } catch {
                        throw AdminDatabaseError(
                            path: path,
                            problem: .migrationFailed(
                                number: migration.number, name: migration.name,
                                message: sqliteMessage(error, namingStatement: true)))
                    }
                    try db.execute(
                        sql: """
                            INSERT INTO \(tableName) (number, name, sha256, applied_at)
                            VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                            """,
                        arguments: [migration.number, migration.name, sha256])
                    if let record = try records(db).first(where: { $0.number == migration.number }) {
                        applied.append(record)
                    }
                    return .commit
                }
            } catch let error as AdminDatabaseError {
                throw error
            } catch {
                throw AdminDatabaseError(path: path, problem: .sqlite(message: sqliteMessage(error)))
            }
        }
        return applied
    }

    /// The recorded migrations in number order (none if the table does not exist yet).
    static func records(_ db: Database) throws -> [AdminMigrationRecord] {
        guard try db.tableExists(tableName) else { return [] }
        return try Row.fetchAll(
            db, sql: "SELECT number, name, sha256, applied_at FROM \(tableName) ORDER BY number"
        ).map { row in
            AdminMigrationRecord(
                number: row["number"], name: row["name"], sha256: row["sha256"], appliedAt: row["applied_at"])
        }
    }

    private static func check(
        _ recorded: [AdminMigrationRecord], against known: [(migration: AdminMigration, sha256: String)],
        path: String
    ) throws(AdminDatabaseError) {
        let lastKnown = known.last?.migration.number ?? 0
        if let newest = recorded.last, newest.number > lastKnown {
            throw AdminDatabaseError(
                path: path, problem: .newerDatabase(recordedNumber: newest.number, knownNumber: lastKnown))
        }
        for record in recorded {
            guard record.number >= 1, record.number <= known.count,
                known[record.number - 1].migration.name == record.name
            else {
                throw AdminDatabaseError(
                    path: path, problem: .unknownMigration(number: record.number, name: record.name))
            }
            let embedded = known[record.number - 1].sha256
            if record.sha256 != embedded {
                throw AdminDatabaseError(
                    path: path,
                    problem: .migrationChanged(
                        number: record.number, name: record.name, recordedSHA256: record.sha256,
                        embeddedSHA256: embedded))
            }
        }
    }
}

/// SQLite's own message for `error` (GRDB's description adds the SQL and its arguments, which
/// may hold a password hash), optionally followed by the start of the failing statement.
func sqliteMessage(_ error: any Error, namingStatement: Bool = false) -> String {
    guard let error = error as? DatabaseError else { return String(describing: error) }
    var message = error.message ?? "SQLite error \(error.resultCode)"
    if namingStatement, let sql = error.sql {
        let lines = sql.split(whereSeparator: \.isNewline).map { line in line.drop { $0 == " " } }
        let statement = lines.joined(separator: " ")
        let excerpt = statement.count > statementExcerptMax ? statement.prefix(statementExcerptMax) + "..." : statement
        message += " (in: \(excerpt))"
    }
    return message
}

/// How much of a failing statement an error message quotes.
private let statementExcerptMax = 120
