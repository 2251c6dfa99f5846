import GRDB

extension AdminDatabase {
    /// Adds `name` with a new argon2id hash of `password`, or replaces the hash of an existing
    /// user (`foxmq user add`). Hashes before taking the write lock.
    ///
    /// - Throws: `AdminDatabaseError` (`invalidUserName`, `passwordHashing`, SQLite errors).
    @discardableResult
    public func addUser(name: String, password: [UInt8]) throws(AdminDatabaseError) -> UserDirectory.AddUserOutcome {
        try checkUserName(name)
        return try addUser(name: name, passwordHash: try hash(password))
    }

    /// `addUser` with the UTF-8 bytes of `password`.
    @discardableResult
    public func addUser(name: String, password: String) throws(AdminDatabaseError) -> UserDirectory.AddUserOutcome {
        try addUser(name: name, password: Array(password.utf8))
    }

    /// Adds `name`, or replaces its hash, with the Argon2 PHC string `passwordHash` as it is
    /// (e.g. copied from another node's users.toml).
    ///
    /// - Throws: `AdminDatabaseError` (`invalidUserName`, `invalidPasswordHash`, SQLite errors).
    @discardableResult
    public func addUser(
        name: String, passwordHash: String
    ) throws(AdminDatabaseError) -> UserDirectory.AddUserOutcome {
        try checkUserName(name)
        if case .failure(let reason) = Argon2PHC.parse(passwordHash) {
            throw AdminDatabaseError(path: path, problem: .invalidPasswordHash(user: name, reason: reason.reason))
        }
        return try write { db in try Self.upsertUser(db, name: name, passwordHash: passwordHash) }
    }

    /// Replaces the hash of the existing user `name` with a new argon2id hash of `password`.
    ///
    /// - Throws: `AdminDatabaseError.Problem.unknownUser` if there is no such user.
    public func setPassword(name: String, password: [UInt8]) throws(AdminDatabaseError) {
        guard try user(named: name) != nil else {
            throw AdminDatabaseError(path: path, problem: .unknownUser(name))
        }
        let passwordHash = try hash(password)
        let path = self.path
        try write { db in
            try db.execute(
                sql: "UPDATE users SET password_hash = ?, updated_at = \(Self.nowSQL) WHERE name = ?",
                arguments: [passwordHash, name])
            if db.changesCount == 0 {  // removed while we were hashing
                throw AdminDatabaseError(path: path, problem: .unknownUser(name))
            }
        }
    }

    /// `setPassword` with the UTF-8 bytes of `password`.
    public func setPassword(name: String, password: String) throws(AdminDatabaseError) {
        try setPassword(name: name, password: Array(password.utf8))
    }

    /// Removes the user `name` and its access rules, and returns the number of rules removed.
    ///
    /// - Throws: `AdminDatabaseError.Problem.unknownUser` if there is no such user.
    @discardableResult
    public func removeUser(name: String) throws(AdminDatabaseError) -> Int {
        let path = self.path
        return try write { db in
            let rules =
                try Int.fetchOne(db, sql: "SELECT count(*) FROM access_rules WHERE user_name = ?", arguments: [name])
                ?? 0
            // The user's rules go by ON DELETE CASCADE.
            try db.execute(sql: "DELETE FROM users WHERE name = ?", arguments: [name])
            if db.changesCount == 0 {
                throw AdminDatabaseError(path: path, problem: .unknownUser(name))
            }
            return rules
        }
    }

    /// The user `name`, or nil.
    public func user(named name: String) throws(AdminDatabaseError) -> AdminUser? {
        try read { db in
            try Row.fetchOne(
                db, sql: "SELECT name, password_hash, created_at, updated_at FROM users WHERE name = ?",
                arguments: [name]
            ).map(Self.adminUser)
        }
    }

    /// Every user, by name (byte order).
    public func users() throws(AdminDatabaseError) -> [AdminUser] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT name, password_hash, created_at, updated_at FROM users ORDER BY name"
            ).map(Self.adminUser)
        }
    }

    /// Whether `name` exists and `password` matches its hash (Argon2: slow, off the event loop).
    /// The hash is read, then verified without holding the database.
    public func verify(name: String, password: [UInt8]) throws(AdminDatabaseError) -> Bool {
        guard let user = try user(named: name) else { return false }
        return PasswordHasher.verify(password: password, phc: user.passwordHash)
    }

    /// `verify` with the UTF-8 bytes of `password`.
    public func verify(name: String, password: String) throws(AdminDatabaseError) -> Bool {
        try verify(name: name, password: Array(password.utf8))
    }

    /// Imports the users of the users.toml at `usersFile`: PHC strings are copied as they are
    /// (hashes made by the original FoxMQ keep verifying); a user already present gets the
    /// file's hash. All or nothing, in one transaction. Users absent from the file are kept.
    ///
    /// - Throws: `AdminDatabaseError` with `.usersFile` if the file is missing or invalid.
    public func importUsers(fromFile usersFile: String) throws(AdminDatabaseError) -> UsersImportReport {
        guard AdminFileSystem.exists(usersFile) else {
            throw AdminDatabaseError(path: path, problem: .usersFile(AdminFileSystem.missingUsersFile(usersFile)))
        }
        let file = try Self.loadUsersFile(usersFile, databasePath: path)
        return try write { db in try Self.importUsers(db, file: file, source: usersFile) }
    }

    /// The users in `UsersFile` form; `serialized()` gives the original's users.toml text.
    public func exportUsers() throws(AdminDatabaseError) -> UsersFile {
        var file = UsersFile()
        for user in try users() { file.users[user.name] = user.passwordHash }
        return file
    }

    // MARK: - Helpers

    private func checkUserName(_ name: String) throws(AdminDatabaseError) {
        if let reason = UserName.problem(with: name) {
            throw AdminDatabaseError(path: path, problem: .invalidUserName(user: name, reason: reason))
        }
    }

    private func hash(_ password: [UInt8]) throws(AdminDatabaseError) -> String {
        do {
            return try PasswordHasher.hash(password: password)
        } catch {
            throw AdminDatabaseError(path: path, problem: .passwordHashing(error))
        }
    }

    private static func loadUsersFile(
        _ usersFile: String, databasePath: String
    ) throws(AdminDatabaseError) -> UsersFile {
        do {
            return try UsersFile.load(from: usersFile)
        } catch {
            throw AdminDatabaseError(path: databasePath, problem: .usersFile(error))
        }
    }

    private static func adminUser(_ row: Row) -> AdminUser {
        AdminUser(
            name: row["name"], passwordHash: row["password_hash"], createdAt: row["created_at"],
            updatedAt: row["updated_at"])
    }

    private static func upsertUser(
        _ db: Database, name: String, passwordHash: String
    ) throws -> UserDirectory.AddUserOutcome {
        let existing = try String.fetchOne(
            db, sql: "SELECT password_hash FROM users WHERE name = ?", arguments: [name])
        if existing == nil {
            try db.execute(
                sql: "INSERT INTO users (name, password_hash) VALUES (?, ?)", arguments: [name, passwordHash])
            return .added
        }
        try db.execute(
            sql: "UPDATE users SET password_hash = ?, updated_at = \(nowSQL) WHERE name = ?",
            arguments: [passwordHash, name])
        return .replaced
    }

    static func importUsers(_ db: Database, file: UsersFile, source: String) throws -> UsersImportReport {
        var added: [String] = []
        var replaced: [String] = []
        var unchanged: [String] = []
        for name in file.users.keys.sorted() {
            let phc = file.users[name]!
            let existing = try String.fetchOne(
                db, sql: "SELECT password_hash FROM users WHERE name = ?", arguments: [name])
            if existing == phc {
                unchanged.append(name)
            } else if try upsertUser(db, name: name, passwordHash: phc) == .added {
                added.append(name)
            } else {
                replaced.append(name)
            }
        }
        return UsersImportReport(source: source, added: added, replaced: replaced, unchanged: unchanged)
    }

    /// The first open through a config directory: imports its users.toml if there is one, and
    /// marks the check done in the same transaction (an invalid file fails the open and is
    /// tried again next time; a file that appears later is not imported automatically).
    static func importUsersFileOnFirstOpen(
        queue: DatabaseQueue, path: String, usersFile: String
    ) throws(AdminDatabaseError) -> UsersImportReport? {
        do {
            var report: UsersImportReport?
            try queue.inTransaction(.immediate) { db in
                let checked = try Row.fetchOne(db, sql: "SELECT users_file_checked_at FROM admin_state WHERE id = 1")
                guard let checked, (checked["users_file_checked_at"] as String?) == nil else { return .commit }
                if AdminFileSystem.exists(usersFile) {
                    let file = try loadUsersFile(usersFile, databasePath: path)
                    report = try importUsers(db, file: file, source: usersFile)
                }
                try db.execute(sql: "UPDATE admin_state SET users_file_checked_at = \(nowSQL) WHERE id = 1")
                return .commit
            }
            return report
        } catch let error as AdminDatabaseError {
            throw error
        } catch {
            throw AdminDatabaseError(path: path, problem: .sqlite(message: sqliteMessage(error)))
        }
    }
}
