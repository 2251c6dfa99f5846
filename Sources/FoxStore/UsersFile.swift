import FoxFiles
import TOMLKit

/// The `users.toml` file of a FoxMQ config directory, in the original's format:
///
///     [users.alice]
///     password-hash = "$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH"
///
/// Loading checks every entry (name rules, a `password-hash` that is an Argon2 PHC
/// string) and fails with a `UsersFileError` naming the file and the problem. Keys
/// other than `users` at the top level, and keys other than `password-hash` inside a
/// user, are ignored (room for later fields).
public struct UsersFile: Sendable, Equatable {
    /// The file's name inside a config directory.
    public static let fileName = "users.toml"

    /// Mode of a newly created users file (an existing file keeps its mode).
    public static let newFileMode: UInt32 = 0o600

    /// User name -> Argon2 PHC string.
    public var users: [String: String]

    public init(users: [String: String] = [:]) {
        self.users = users
    }

    /// `directory/users.toml`.
    public static func path(inDirectory directory: String) -> String {
        Files.join(directory, fileName)
    }

    /// Loads `path`. A missing file is an empty users file.
    public static func load(from path: String) throws(UsersFileError) -> UsersFile {
        let text: String?
        do {
            text = try TOMLFile.readText(path)
        } catch {
            throw UsersFileError(path: path, problem: UsersFileError.Problem(error))
        }
        guard let text else { return UsersFile() }
        return try parse(text, path: path)
    }

    /// Parses the TOML `text` of a users file; `path` is only used in errors.
    public static func parse(_ text: String, path: String) throws(UsersFileError) -> UsersFile {
        let root: TOMLTable
        do {
            root = try TOMLFile.parse(text)
        } catch {
            throw UsersFileError(path: path, problem: UsersFileError.Problem(error))
        }

        guard let usersValue = root["users"] else { return UsersFile() }
        guard let usersTable = usersValue.table else {
            throw UsersFileError(path: path, problem: .usersNotATable)
        }

        var users: [String: String] = [:]
        for (name, value) in usersTable {
            if let reason = UserName.problem(with: name) {
                throw UsersFileError(path: path, problem: .invalidUserName(user: name, reason: reason))
            }
            guard let userTable = value.table else {
                throw UsersFileError(path: path, problem: .userNotATable(user: name))
            }
            guard let hashValue = userTable["password-hash"] else {
                throw UsersFileError(path: path, problem: .missingPasswordHash(user: name))
            }
            guard let phc = hashValue.string else {
                throw UsersFileError(path: path, problem: .passwordHashNotAString(user: name))
            }
            if case .failure(let reason) = Argon2PHC.parse(phc) {
                throw UsersFileError(path: path, problem: .invalidPasswordHash(user: name, reason: reason.reason))
            }
            users[name] = phc
        }
        return UsersFile(users: users)
    }

    /// The file's text: one `[users.NAME]` table per user, names in sorted order
    /// (by Unicode scalars, like Rust's `BTreeMap<String, _>`), separated by blank lines.
    /// Names that are not bare TOML keys are quoted. No users gives `[users]`.
    public func serialized() -> String {
        let names = users.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        if names.isEmpty { return "[users]\n" }
        return names.map { name in
            "[users.\(TOMLText.key(name))]\npassword-hash = \(TOMLText.quotedString(users[name]!))\n"
        }.joined(separator: "\n")
    }

    /// Checks every entry as `load` would, so a saved file always loads again.
    public func validate(path: String) throws(UsersFileError) {
        for (name, phc) in users {
            if let reason = UserName.problem(with: name) {
                throw UsersFileError(path: path, problem: .invalidUserName(user: name, reason: reason))
            }
            if case .failure(let reason) = Argon2PHC.parse(phc) {
                throw UsersFileError(path: path, problem: .invalidPasswordHash(user: name, reason: reason.reason))
            }
        }
    }

    /// Validates, then writes `serialized()` to `path` atomically (temporary file in the
    /// same directory + rename). The directory must exist. A new file gets mode 0600;
    /// an existing file keeps its mode.
    public func save(to path: String) throws(UsersFileError) {
        try validate(path: path)
        do {
            try Files.writeAtomically(Array(serialized().utf8), to: path, newFileMode: Self.newFileMode)
        } catch {
            throw UsersFileError(path: path, problem: .unwritable(errno: error.errno, message: error.message))
        }
    }
}
