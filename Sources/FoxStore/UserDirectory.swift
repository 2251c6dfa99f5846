import FoxFiles

/// The users a broker accepts: an immutable snapshot of a `UsersFile`, safe to share
/// between threads. To pick up changes, load a new one and swap it in.
///
/// - Important: `verify` runs Argon2 (tens of milliseconds, ~19 MiB, blocking). Call it
///   off the event loop.
public struct UserDirectory: Sendable {
    /// User name -> Argon2 PHC string.
    public let users: [String: String]

    public init(_ file: UsersFile) {
        self.users = file.users
    }

    /// Loads `directory/users.toml` (a missing file gives an empty directory).
    public static func load(fromDirectory directory: String) throws(UsersFileError) -> UserDirectory {
        UserDirectory(try UsersFile.load(from: UsersFile.path(inDirectory: directory)))
    }

    public var count: Int { users.count }
    public var isEmpty: Bool { users.isEmpty }

    public func contains(username: String) -> Bool {
        users[username] != nil
    }

    /// Whether `username` exists and `password` matches its hash.
    ///
    /// An unknown user returns false at once, without spending a hash's time, so the
    /// response time tells a client whether a user name exists. Accepted for now: user
    /// names are not secret in FoxMQ's model, and a dummy hash would double the CPU an
    /// attacker can make the broker burn per unknown name.
    public func verify(username: String, password: [UInt8]) -> Bool {
        guard let phc = users[username] else { return false }
        return PasswordHasher.verify(password: password, phc: phc)
    }

    /// What `addUser` did.
    public enum AddUserOutcome: Sendable, Equatable {
        case added
        case replaced
    }

    /// `foxmq user add`: loads `directory/users.toml` (creating the directory if needed),
    /// hashes `password` with the default parameters, adds or replaces `name` and saves
    /// the file atomically.
    ///
    /// - Throws: `UsersFileError` (invalid name, unreadable/corrupt/unwritable file) or
    ///   `PasswordHashError`.
    @discardableResult
    public static func addUser(name: String, password: [UInt8], in directory: String) throws -> AddUserOutcome {
        let path = UsersFile.path(inDirectory: directory)
        if let reason = UserName.problem(with: name) {
            throw UsersFileError(path: path, problem: .invalidUserName(user: name, reason: reason))
        }
        do {
            try Files.makeDirectories(directory, mode: 0o777)
        } catch {
            throw UsersFileError(path: path, problem: .unwritable(errno: error.errno, message: error.message))
        }
        var file = try UsersFile.load(from: path)
        let phc = try PasswordHasher.hash(password: password)
        let outcome: AddUserOutcome = file.users.updateValue(phc, forKey: name) == nil ? .added : .replaced
        try file.save(to: path)
        return outcome
    }

    /// `addUser` with the UTF-8 bytes of `password`.
    @discardableResult
    public static func addUser(name: String, password: String, in directory: String) throws -> AddUserOutcome {
        try addUser(name: name, password: Array(password.utf8), in: directory)
    }
}
