import FoxMigrations
import GRDB
import XCTest

@testable import FoxStore

/// The SQLite admin database: migrations (applied once, recorded with their SHA-256, all or
/// nothing, changed or newer histories refused), users (argon2id, users.toml import and
/// export), access rules and settings storage, the revision counter a node polls, the pragmas
/// that make commits durable, and online backups. Each test works in its own temporary
/// directory; migrations lists are injected through the internal initializer.
final class AdminDatabaseTests: XCTestCase {
    var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    var databasePath: String { directory.file(AdminDatabase.fileName) }

    /// "secret", hashed by argon2-cffi (an independent implementation) with the original's
    /// parameters (the fixture of PasswordHasherTests).
    static let secretHash =
        "$argon2id$v=19$m=19456,t=2,p=1$2h3QEDEt9PxGCLkBXO0S/Q$U/uU0kHze7RWgrskZ0SKNpyVCmfkQf3hN4DBz2VYV9c"
    /// "password", argon2i (the reference implementation's test vector; UsersFileTests).
    static let passwordHash =
        "$argon2i$v=19$m=4096,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$mYIO4o1rz9pgnq7vI1g0U3MQ4r8pnqZfGhcQ2HWhCGo"

    static let first = AdminMigrations.all[0]
    static let goodSecond = AdminMigration(
        number: 2, name: "0002_notes.sql", sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);")
    /// Creates a table, then fails: nothing of it may remain.
    static let badSecond = AdminMigration(
        number: 2, name: "0002_broken.sql",
        sql: """
            CREATE TABLE half_done (id INTEGER PRIMARY KEY);
            INSERT INTO half_done (id) VALUES (1);
            INSERT INTO no_such_table (x) VALUES (1);
            """)

    func open(_ migrations: [AdminMigration]) throws -> AdminDatabase {
        try AdminDatabase(path: databasePath, migrations: migrations, usersFileDirectory: nil)
    }

    /// Everything a migration could have touched: the schema, the migration records and the
    /// rows of the admin tables.
    func contentDump(_ database: AdminDatabase) throws -> [String] {
        try database.queue.read { db in
            var lines = try Row.fetchAll(db, sql: "SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
                .map { "\($0)" }
            for table in ["schema_migrations", "users", "access_rules", "settings", "admin_state"]
            where try db.tableExists(table) {
                lines += try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1").map { "\(table): \($0)" }
            }
            return lines
        }
    }

    // MARK: - Migrations

    /// A new database gets every embedded migration, recorded with the SHA-256 of its text;
    /// opening it again applies nothing and keeps the records.
    func testMigrationsAreAppliedOnceAndRecorded() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        XCTAssertEqual(database.appliedMigrations.map(\.number), AdminMigrations.all.map(\.number))
        let records = try database.recordedMigrations()
        XCTAssertEqual(records.map(\.name), AdminMigrations.all.map(\.name))
        XCTAssertEqual(records.first?.sha256, SHA256.hexDigest(Array(Self.first.sql.utf8)))
        XCTAssertEqual(records.first?.sha256.count, 64)
        XCTAssertTrue(records.first?.appliedAt.hasSuffix("Z") ?? false)
        let tables = try database.queue.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        for table in ["access_rules", "admin_state", "schema_migrations", "settings", "users"] {
            XCTAssertTrue(tables.contains(table), "missing table \(table) in \(tables)")
        }
        try database.close()

        let again = try AdminDatabase.open(directory: directory.path)
        XCTAssertEqual(again.appliedMigrations, [])
        XCTAssertEqual(try again.recordedMigrations(), records)
    }

    /// A second migration added later is applied on the next open, and only it.
    func testALaterMigrationIsAppliedOnTheNextOpen() throws {
        try open([Self.first]).close()
        let database = try open([Self.first, Self.goodSecond])
        XCTAssertEqual(database.appliedMigrations.map(\.name), ["0002_notes.sql"])
        XCTAssertEqual(try database.recordedMigrations().map(\.number), [1, 2])
    }

    /// A migration that fails half way is rolled back entirely (its first table and row are
    /// gone, it is not recorded, earlier data is intact) and the error names it and carries
    /// SQLite's message.
    func testAFailingMigrationLeavesTheDatabaseAsItWas() throws {
        let database = try open([Self.first])
        try database.addUser(name: "alice", passwordHash: Self.secretHash)
        try database.addRule(subject: .user("alice"), action: .publish, topicFilter: "a/#")
        let before = try contentDump(database)
        try database.close()

        XCTAssertThrowsError(try open([Self.first, Self.badSecond])) { error in
            guard let error = error as? AdminDatabaseError,
                case .migrationFailed(let number, let name, let message) = error.problem
            else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(number, 2)
            XCTAssertEqual(name, "0002_broken.sql")
            XCTAssertTrue(message.contains("no such table: no_such_table"), message)
            XCTAssertTrue(message.contains("(in: INSERT INTO no_such_table (x) VALUES (1)"), message)
            XCTAssertTrue(error.description.hasPrefix(self.databasePath + ": migration 0002_broken.sql"))
            XCTAssertTrue(error.description.contains("no such table: no_such_table"))
        }

        let after = try open([Self.first])
        XCTAssertEqual(try contentDump(after), before)
        XCTAssertFalse(try after.queue.read { db in try db.tableExists("half_done") })
        XCTAssertTrue(try after.verify(name: "alice", password: "secret"))
    }

    /// A failing first migration on a new file leaves no table at all, not even the records.
    func testAFailingFirstMigrationLeavesAnEmptyDatabase() throws {
        let broken = AdminMigration(number: 1, name: "0001_broken.sql", sql: "CREATE TABLE t (x); SELECT nonsense(;")
        XCTAssertThrowsError(try open([broken])) { error in
            XCTAssertTrue("\(error)".contains("0001_broken.sql"), "\(error)")
        }
        let raw = try DatabaseQueue(path: databasePath)
        XCTAssertEqual(try raw.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }, 0)
    }

    /// A database that records more migrations than this binary knows is refused, untouched.
    func testADatabaseFromANewerFoxMQIsRefused() throws {
        try open([Self.first, Self.goodSecond]).close()
        XCTAssertThrowsError(try open([Self.first])) { error in
            guard let error = error as? AdminDatabaseError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.problem, .newerDatabase(recordedNumber: 2, knownNumber: 1))
            XCTAssertTrue(error.description.contains("made by a newer foxmq"), error.description)
        }
        XCTAssertEqual(try open([Self.first, Self.goodSecond]).recordedMigrations().count, 2)
    }

    /// A recorded migration whose embedded text changed since is refused.
    func testAChangedMigrationIsRefused() throws {
        try open([Self.first]).close()
        let edited = AdminMigration(number: 1, name: Self.first.name, sql: Self.first.sql + "\n-- edited\n")
        XCTAssertThrowsError(try open([edited])) { error in
            guard let error = error as? AdminDatabaseError,
                case .migrationChanged(1, let name, let recorded, let embedded) = error.problem
            else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(name, Self.first.name)
            XCTAssertNotEqual(recorded, embedded)
        }
    }

    /// A recorded migration under a name this binary has not got at that number is refused.
    func testARenamedMigrationIsRefused() throws {
        try open([Self.first, Self.goodSecond]).close()
        let renamed = AdminMigration(number: 2, name: "0002_other.sql", sql: Self.goodSecond.sql)
        XCTAssertThrowsError(try open([Self.first, renamed])) { error in
            XCTAssertEqual(
                (error as? AdminDatabaseError)?.problem, .unknownMigration(number: 2, name: "0002_notes.sql"))
        }
    }

    /// WAL (so the node reads while the command line writes), synchronous=FULL (a commit
    /// survives a power cut), foreign keys on (a user's rules go with it).
    func testPragmas() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        try database.queue.read { db in
            XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA journal_mode"), "wal")
            XCTAssertEqual(try Int.fetchOne(db, sql: "PRAGMA synchronous"), 2)  // FULL
            XCTAssertEqual(try Int.fetchOne(db, sql: "PRAGMA foreign_keys"), 1)
        }
        // The journal mode is a property of the file: another connection sees it too.
        let raw = try DatabaseQueue(path: databasePath)
        XCTAssertEqual(try raw.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }, "wal")
    }

    /// The FIPS 180-4 examples, plus the padding boundaries of 55 and 56 bytes.
    func testSHA256() {
        XCTAssertEqual(
            SHA256.hexDigest(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(
            SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            SHA256.hexDigest([UInt8](repeating: UInt8(ascii: "a"), count: 55)),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        XCTAssertEqual(
            SHA256.hexDigest([UInt8](repeating: UInt8(ascii: "a"), count: 56)),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
    }

    // MARK: - Users

    /// add, add again (replace), verify, passwd, remove, and the errors for unknown users.
    func testUserLifecycle() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        XCTAssertEqual(try database.addUser(name: "alice", password: "one"), .added)
        XCTAssertEqual(try database.addUser(name: "bob", password: "two"), .added)
        XCTAssertTrue(try database.verify(name: "alice", password: "one"))
        XCTAssertFalse(try database.verify(name: "alice", password: "two"))
        XCTAssertFalse(try database.verify(name: "carol", password: "one"))
        let hash = try XCTUnwrap(try database.user(named: "alice")?.passwordHash)
        XCTAssertTrue(hash.hasPrefix("$argon2id$v=19$m=19456,t=2,p=1$"), hash)

        XCTAssertEqual(try database.addUser(name: "alice", password: "uno"), .replaced)
        XCTAssertTrue(try database.verify(name: "alice", password: "uno"))
        XCTAssertFalse(try database.verify(name: "alice", password: "one"))

        try database.setPassword(name: "bob", password: "deux")
        XCTAssertTrue(try database.verify(name: "bob", password: "deux"))
        XCTAssertFalse(try database.verify(name: "bob", password: "two"))
        XCTAssertThrowsError(try database.setPassword(name: "carol", password: "x")) { error in
            XCTAssertEqual((error as? AdminDatabaseError)?.problem, .unknownUser("carol"))
        }

        XCTAssertEqual(try database.users().map(\.name), ["alice", "bob"])
        XCTAssertEqual(try database.removeUser(name: "bob"), 0)
        XCTAssertEqual(try database.users().map(\.name), ["alice"])
        XCTAssertFalse(try database.verify(name: "bob", password: "deux"))
        XCTAssertThrowsError(try database.removeUser(name: "bob")) { error in
            XCTAssertEqual((error as? AdminDatabaseError)?.problem, .unknownUser("bob"))
            XCTAssertEqual("\(error)", "\(self.databasePath): no user \"bob\"")
        }
    }

    /// Names and hashes are checked before they reach the table.
    func testInvalidUsersAreRefused() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        XCTAssertThrowsError(try database.addUser(name: "", password: "x")) { error in
            guard case .invalidUserName = (error as? AdminDatabaseError)?.problem else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try database.addUser(name: "a\u{7}b", password: "x"))
        XCTAssertThrowsError(try database.addUser(name: "mallory", passwordHash: "plain text")) { error in
            guard case .invalidPasswordHash = (error as? AdminDatabaseError)?.problem else {
                return XCTFail("\(error)")
            }
        }
        XCTAssertEqual(try database.users(), [])
    }

    /// The original's users.toml imports with its PHC strings as they are, and its passwords
    /// verify; importing again changes nothing.
    func testImportOfTheOriginalsUsersFile() throws {
        try directory.write(
            """
            [users.alice]
            password-hash = "\(Self.secretHash)"

            [users."bob smith"]
            password-hash = "\(Self.passwordHash)"
            """, to: "users.toml")
        let database = try AdminDatabase.open(path: databasePath)
        let report = try database.importUsers(fromFile: directory.file("users.toml"))
        XCTAssertEqual(report.added, ["alice", "bob smith"])
        XCTAssertEqual(report.replaced, [])
        XCTAssertEqual(try database.user(named: "alice")?.passwordHash, Self.secretHash)
        XCTAssertTrue(try database.verify(name: "alice", password: "secret"))
        XCTAssertFalse(try database.verify(name: "alice", password: "Secret"))
        XCTAssertTrue(try database.verify(name: "bob smith", password: "password"))

        let revision = try database.revision()
        let again = try database.importUsers(fromFile: directory.file("users.toml"))
        XCTAssertEqual(again.unchanged, ["alice", "bob smith"])
        XCTAssertEqual(try database.revision(), revision)

        XCTAssertThrowsError(try database.importUsers(fromFile: directory.file("missing.toml"))) { error in
            XCTAssertTrue("\(error)".contains("missing.toml"), "\(error)")
        }
    }

    /// The first open through a directory imports its users.toml once and says so; a later
    /// change to the file is not picked up by the next open.
    func testFirstOpenImportsUsersTomlOnce() throws {
        try directory.write(
            "[users.alice]\npassword-hash = \"\(Self.secretHash)\"\n", to: "users.toml")
        let database = try AdminDatabase.open(directory: directory.path)
        let report = try XCTUnwrap(database.firstOpenImport)
        XCTAssertEqual(report.count, 1)
        XCTAssertEqual(
            report.description,
            "imported 1 user from \(directory.file("users.toml")) (1 added, 0 replaced, 0 unchanged)")
        XCTAssertTrue(try database.verify(name: "alice", password: "secret"))
        try database.close()

        try directory.write(
            """
            [users.alice]
            password-hash = "\(Self.secretHash)"

            [users.bob]
            password-hash = "\(Self.passwordHash)"
            """, to: "users.toml")
        let again = try AdminDatabase.open(directory: directory.path)
        XCTAssertNil(again.firstOpenImport)
        XCTAssertNil(try again.user(named: "bob"))
    }

    /// An invalid users.toml fails the first open, naming the file, and imports nothing; once
    /// fixed, the next open imports it.
    func testAnInvalidUsersTomlFailsTheFirstOpenUntilFixed() throws {
        try directory.write("[users.alice]\npassword-hash = \"nope\"\n", to: "users.toml")
        XCTAssertThrowsError(try AdminDatabase.open(directory: directory.path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(self.directory.file("users.toml") + ": "), "\(error)")
        }
        try directory.write(
            "[users.alice]\npassword-hash = \"\(Self.secretHash)\"\n", to: "users.toml")
        let database = try AdminDatabase.open(directory: directory.path)
        XCTAssertEqual(database.firstOpenImport?.added, ["alice"])
    }

    /// A new directory without users.toml: no import, and none later either.
    func testFirstOpenWithoutUsersToml() throws {
        let nested = directory.file("a/b/foxmq.d")
        let database = try AdminDatabase.open(directory: nested)
        XCTAssertNil(database.firstOpenImport)
        XCTAssertEqual(database.path, nested + "/admin.sqlite")
        XCTAssertEqual(try database.users(), [])
    }

    /// Export gives the original's users.toml text; importing it elsewhere gives the same
    /// users with the same hashes, and exporting that gives the same text.
    func testExportRoundTrip() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        try database.addUser(name: "alice", password: "secret")
        try database.addUser(name: "bob smith", passwordHash: Self.passwordHash)
        let text = try database.exportUsers().serialized()
        XCTAssertTrue(text.hasPrefix("[users.alice]\npassword-hash = \"$argon2id$"), text)
        XCTAssertTrue(text.contains("[users.\"bob smith\"]\npassword-hash = \"\(Self.passwordHash)\""))

        try directory.write(text, to: "exported.toml")
        let other = try AdminDatabase.open(path: directory.file("other.sqlite"))
        XCTAssertEqual(try other.importUsers(fromFile: directory.file("exported.toml")).added, ["alice", "bob smith"])
        XCTAssertEqual(try other.exportUsers(), try database.exportUsers())
        XCTAssertEqual(try other.exportUsers().serialized(), text)
        XCTAssertTrue(try other.verify(name: "alice", password: "secret"))
    }

    // MARK: - Access rules and settings

    /// Rules come back in id order with their fields; a user's rules need the user and go
    /// with it; filters are validated.
    func testAccessRuleStorage() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        try database.addUser(name: "alice", passwordHash: Self.secretHash)
        let r1 = try database.addRule(
            subject: .user("alice"), action: .publish, topicFilter: "sensors/%u/#", permission: .deny)
        let r2 = try database.addRule(subject: .allUsers, action: .subscribe, topicFilter: "public/#")
        let r3 = try database.addRule(subject: .anonymous, action: .subscribe, topicFilter: "+/status")
        XCTAssertLessThan(r1.id, r2.id)
        XCTAssertLessThan(r2.id, r3.id)
        XCTAssertEqual(try database.rules(), [r1, r2, r3])
        XCTAssertEqual(r1.description, "\(r1.id): deny user \"alice\" to publish sensors/%u/#")

        XCTAssertThrowsError(try database.addRule(subject: .user("nobody"), action: .publish, topicFilter: "a")) {
            XCTAssertEqual(($0 as? AdminDatabaseError)?.problem, .unknownUser("nobody"))
        }
        for bad in ["", "a/#/b", "a+", "a/b#", "$share/g/a"] {
            XCTAssertThrowsError(try database.addRule(subject: .allUsers, action: .publish, topicFilter: bad)) {
                guard case .invalidTopicFilter = ($0 as? AdminDatabaseError)?.problem else {
                    return XCTFail("\(bad): \($0)")
                }
            }
        }

        XCTAssertEqual(try database.removeRule(id: r2.id), r2)
        XCTAssertThrowsError(try database.removeRule(id: r2.id)) {
            XCTAssertEqual(($0 as? AdminDatabaseError)?.problem, .unknownRule(id: r2.id))
        }
        XCTAssertEqual(try database.removeUser(name: "alice"), 1)
        XCTAssertEqual(try database.rules(), [r3])
        // A new rule never takes a removed rule's id, so it is evaluated after the older ones.
        let r4 = try database.addRule(subject: .allUsers, action: .publish, topicFilter: "x")
        XCTAssertGreaterThan(r4.id, r3.id)
    }

    func testSettings() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        XCTAssertNil(try database.setting("max-connections"))
        try database.setSetting("max-connections", to: "100")
        try database.setSetting("log", to: "json")
        XCTAssertEqual(try database.setting("max-connections"), "100")
        try database.setSetting("max-connections", to: "200")
        XCTAssertEqual(try database.settings(), ["max-connections": "200", "log": "json"])
        try database.setSetting("log", to: nil)
        XCTAssertEqual(try database.settings(), ["max-connections": "200"])
        XCTAssertThrowsError(try database.setSetting("", to: "x"))
    }

    /// Every write moves the revision, a no-op does not, and a change made through another
    /// connection (the command line while a node runs) is seen by the first one.
    func testRevisionMovesWithEveryChange() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        var last = try database.revision()
        func expectMoved(_ what: String, line: UInt = #line) throws {
            let now = try database.revision()
            XCTAssertGreaterThan(now, last, what, line: line)
            last = now
        }
        try database.addUser(name: "alice", passwordHash: Self.secretHash)
        try expectMoved("add user")
        try database.addUser(name: "alice", passwordHash: Self.passwordHash)
        try expectMoved("replace user")
        try database.setPassword(name: "alice", password: "x")
        try expectMoved("passwd")
        let rule = try database.addRule(subject: .user("alice"), action: .publish, topicFilter: "a")
        try expectMoved("add rule")
        try database.removeRule(id: rule.id)
        try expectMoved("remove rule")
        try database.setSetting("k", to: "v")
        try expectMoved("set setting")
        try database.setSetting("k", to: "v")
        XCTAssertEqual(try database.revision(), last, "setting the same value is not a change")
        try database.setSetting("k", to: nil)
        try expectMoved("remove setting")
        try database.removeUser(name: "alice")
        try expectMoved("remove user")

        let snapshot = try database.snapshot()
        XCTAssertEqual(snapshot.revision, last)
        XCTAssertNil(try database.snapshot(ifChangedSince: last))

        let other = try AdminDatabase.open(directory: directory.path)
        try other.addUser(name: "bob", passwordHash: Self.passwordHash)
        try other.addRule(subject: .allUsers, action: .subscribe, topicFilter: "#")
        let fresh = try XCTUnwrap(try database.snapshot(ifChangedSince: last))
        XCTAssertGreaterThan(fresh.revision, last)
        XCTAssertEqual(fresh.users, ["bob": Self.passwordHash])
        XCTAssertEqual(fresh.rules.rules.map(\.topicFilter), ["#"])
        XCTAssertTrue(fresh.userDirectory.verify(username: "bob", password: Array("password".utf8)))
    }

    /// A backup is a complete database that opens with the same users; an existing file is
    /// never overwritten.
    func testBackup() throws {
        let database = try AdminDatabase.open(directory: directory.path)
        try database.addUser(name: "alice", passwordHash: Self.secretHash)
        try database.addRule(subject: .user("alice"), action: .publish, topicFilter: "a/#")
        let destination = directory.file("backup.sqlite")
        try database.backup(to: destination)
        XCTAssertThrowsError(try database.backup(to: destination)) { error in
            XCTAssertTrue("\(error)".contains("backup to \(destination) failed: the file exists"), "\(error)")
        }
        XCTAssertEqual(try directory.contents().filter { $0.contains("tmp") }, [])

        let copy = try AdminDatabase.open(path: destination)
        XCTAssertEqual(copy.appliedMigrations, [])
        XCTAssertEqual(try copy.snapshot(), try database.snapshot())
        XCTAssertTrue(try copy.verify(name: "alice", password: "secret"))
    }

    /// A file that is not a database is refused with an error naming it.
    func testNotADatabase() throws {
        try directory.write(
            "this is not SQLite, just some text that is long enough to not be a header\n", to: "admin.sqlite")
        XCTAssertThrowsError(try AdminDatabase.open(directory: directory.path)) { error in
            guard let error = error as? AdminDatabaseError, case .cannotOpen = error.problem else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue(error.description.hasPrefix(self.databasePath + ": cannot open"), error.description)
        }
    }
}
