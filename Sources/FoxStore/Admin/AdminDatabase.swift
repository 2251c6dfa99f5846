import FoxFiles
import FoxMigrations
import GRDB

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The SQLite admin database of a node, `DIR/admin.sqlite`: users, access rules and settings.
///
/// - Its schema comes only from the numbered SQL files of `Migrations/`, applied at open by
///   `AdminMigrationRunner` (see there for the rules: one transaction each, recorded with a
///   SHA-256, a changed or newer history refused).
/// - The file is in WAL mode with `synchronous=FULL` (a committed change survives a power cut)
///   and foreign keys on; other processes (`foxmq user ...` while a node runs) may open it at the
///   same time and wait up to `busyTimeoutSeconds` for each other's writes.
/// - Every change to users, access rules or settings moves `revision()` (SQL triggers, so
///   changes made with the sqlite3 shell count too); a running node polls it cheaply and swaps
///   in a new `AdminSnapshot` when it moved.
///
/// - Important: every method blocks on file I/O, and the user methods that take a password run
///   Argon2 (tens of milliseconds). Call them off the event loops (e.g. on an NIOThreadPool).
///   An `AdminDatabase` may be used from any thread: GRDB serializes the accesses.
public final class AdminDatabase: Sendable {
    /// The file's name inside a config directory.
    public static let fileName = "admin.sqlite"
    /// How long a write waits for another connection's write transaction before failing.
    public static let busyTimeoutSeconds: Double = 10

    /// The database file.
    public let path: String
    /// The migrations this open applied (empty when the database was up to date).
    public let appliedMigrations: [AdminMigrationRecord]
    /// What the first open through a config directory imported from its `users.toml`: set only
    /// by the open that did it, nil when the import was done before or there was no file.
    public let firstOpenImport: UsersImportReport?

    let queue: DatabaseQueue

    /// `directory/admin.sqlite`.
    public static func path(inDirectory directory: String) -> String {
        Files.join(directory, fileName)
    }

    /// Opens (creating it and `directory` if needed) `directory/admin.sqlite`, applies the
    /// pending migrations, and on the database's first open through a directory imports
    /// `directory/users.toml` if it exists (once: later changes to that file are not read, use
    /// `importUsers(fromFile:)`); `firstOpenImport` tells what that import did, for the log.
    ///
    /// - Throws: `AdminDatabaseError` naming the file: unopenable, a failed, changed or unknown
    ///   migration, a database made by a newer foxmq, an invalid users.toml (nothing imported;
    ///   the next open tries again).
    public static func open(directory: String) throws(AdminDatabaseError) -> AdminDatabase {
        let path = path(inDirectory: directory)
        do {
            try Files.makeDirectories(directory, mode: 0o777)
        } catch {
            throw AdminDatabaseError(path: path, problem: .cannotOpen(message: error.message))
        }
        return try AdminDatabase(path: path, migrations: AdminMigrations.all, usersFileDirectory: directory)
    }

    /// Opens (creating it if needed) the admin database at `path` and applies the pending
    /// migrations; no users.toml import. For tools and backups (e.g. inspecting a snapshot).
    public static func open(path: String) throws(AdminDatabaseError) -> AdminDatabase {
        try AdminDatabase(path: path, migrations: AdminMigrations.all, usersFileDirectory: nil)
    }

    /// Opens an existing `path` for reading only: nothing is created, migrated or imported, so
    /// it is safe beside a running node (foxdump). A database with migrations this build does
    /// not know is read all the same: the tables read here exist since the first one.
    public static func openReadOnly(path: String) throws(AdminDatabaseError) -> AdminDatabase {
        try AdminDatabase(readOnlyPath: path)
    }

    private init(readOnlyPath path: String) throws(AdminDatabaseError) {
        self.path = path
        var configuration = Configuration()
        configuration.label = "FoxStore.AdminDatabase.readOnly"
        configuration.readonly = true
        configuration.busyMode = .timeout(Self.busyTimeoutSeconds)
        guard access(path, R_OK) == 0 else {
            throw AdminDatabaseError(path: path, problem: .cannotOpen(message: "no such file, or not readable"))
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw AdminDatabaseError(path: path, problem: .cannotOpen(message: sqliteMessage(error)))
        }
        appliedMigrations = []
        firstOpenImport = nil
    }

    /// Opens `path` with the migrations `migrations` (tests pass their own list).
    init(path: String, migrations: [AdminMigration], usersFileDirectory: String?) throws(AdminDatabaseError) {
        self.path = path
        var configuration = Configuration()
        configuration.label = "FoxStore.AdminDatabase"
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(Self.busyTimeoutSeconds)
        // Not `journalMode = .wal`: GRDB then sets synchronous=NORMAL after this runs, and a
        // committed user change must survive a power cut.
        configuration.prepareDatabase { db in
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            guard mode == "wal" else {
                throw DatabaseError(
                    resultCode: .SQLITE_ERROR,
                    message: "cannot switch to WAL mode (journal_mode is \(mode ?? "unknown"))")
            }
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw AdminDatabaseError(path: path, problem: .cannotOpen(message: sqliteMessage(error)))
        }
        appliedMigrations = try AdminMigrationRunner.run(migrations, on: queue, path: path)
        if let usersFileDirectory {
            firstOpenImport = try Self.importUsersFileOnFirstOpen(
                queue: queue, path: path, usersFile: UsersFile.path(inDirectory: usersFileDirectory))
        } else {
            firstOpenImport = nil
        }
    }

    /// Closes the connection; later calls fail. Also happens when the value is released.
    public func close() throws(AdminDatabaseError) {
        do {
            try queue.close()
        } catch {
            throw failure(error)
        }
    }

    /// The migrations recorded in the database, in number order.
    public func recordedMigrations() throws(AdminDatabaseError) -> [AdminMigrationRecord] {
        try read { db in try AdminMigrationRunner.records(db) }
    }

    // MARK: - Changes

    /// A counter that goes up with every committed change to users, access rules or settings,
    /// by this process or any other. One indexed row read: cheap enough to poll every second.
    public func revision() throws(AdminDatabaseError) -> Int64 {
        try read { db in try Self.revision(db) }
    }

    /// Everything a node needs, read in one transaction.
    public func snapshot() throws(AdminDatabaseError) -> AdminSnapshot {
        try read { db in try Self.snapshot(db) }
    }

    /// A new snapshot if the revision is no longer `revision`, else nil (one row read).
    public func snapshot(ifChangedSince revision: Int64) throws(AdminDatabaseError) -> AdminSnapshot? {
        try read { db in
            try Self.revision(db) == revision ? nil : try Self.snapshot(db)
        }
    }

    static func revision(_ db: Database) throws -> Int64 {
        guard let revision = try Int64.fetchOne(db, sql: "SELECT revision FROM admin_state WHERE id = 1") else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "the admin_state row is missing")
        }
        return revision
    }

    private static func snapshot(_ db: Database) throws -> AdminSnapshot {
        var users: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, password_hash FROM users") {
            users[row["name"]] = row["password_hash"] as String
        }
        var settings: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM settings") {
            settings[row["key"]] = row["value"] as String
        }
        return AdminSnapshot(
            revision: try revision(db), users: users, rules: AccessRules(try accessRules(db)), settings: settings)
    }

    // MARK: - Backup

    /// Copies the database to `destination` with SQLite's online backup API: a consistent copy
    /// taken while the node keeps running (writers wait for the copy, which is short for a
    /// database of this size). The copy is written beside `destination` and renamed into place,
    /// so `destination` never holds a partial copy. An existing `destination` is refused.
    public func backup(to destination: String) throws(AdminDatabaseError) {
        func failed(_ message: String) -> AdminDatabaseError {
            AdminDatabaseError(path: path, problem: .backupFailed(destination: destination, message: message))
        }
        var st = stat()
        if lstat(destination, &st) == 0 { throw failed("the file exists") }
        var rng = SystemRandomNumberGenerator()
        let temporary = "\(destination).tmp-\(getpid())-\(String(rng.next() as UInt32, radix: 16))"
        defer {
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temporary + suffix) }
        }
        do {
            let copy = try DatabaseQueue(path: temporary)
            try queue.backup(to: copy)
            try copy.close()
        } catch {
            throw failed(sqliteMessage(error))
        }
        if rename(temporary, destination) != 0 {
            throw failed(String(cString: strerror(errno)))
        }
    }

    // MARK: - Access helpers

    func read<T>(_ body: (Database) throws -> T) throws(AdminDatabaseError) -> T {
        do {
            return try queue.read(body)
        } catch {
            throw failure(error)
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction (it takes the write lock at once, so a
    /// read followed by a write cannot fail half way on another process's write), committed if
    /// `body` returns, rolled back if it throws.
    func write<T>(_ body: (Database) throws -> T) throws(AdminDatabaseError) -> T {
        var result: T?
        do {
            try queue.inTransaction(.immediate) { db in
                result = try body(db)
                return .commit
            }
        } catch {
            throw failure(error)
        }
        return result!
    }

    func failure(_ error: any Error) -> AdminDatabaseError {
        if let error = error as? AdminDatabaseError { return error }
        return AdminDatabaseError(path: path, problem: .sqlite(message: sqliteMessage(error)))
    }

    /// The current time as the database writes it (UTC, ISO 8601, milliseconds).
    static let nowSQL = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
}
