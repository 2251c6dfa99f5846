import FoxFiles

/// A problem reading, parsing or writing a `users.toml` file.
///
/// `description` always starts with the file's path, so start-up can print it as is
/// and stop, e.g. `foxmq.d/users.toml: line 3, column 1: ...`.
public struct UsersFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        /// The file exists but could not be read (`errno` and its message).
        case unreadable(errno: Int32, message: String)
        /// The file is not valid UTF-8.
        case notUTF8
        /// The file is not valid TOML (position as given by the TOML parser).
        case invalidTOML(message: String, line: Int?, column: Int?)
        /// `users` is present but is not a table.
        case usersNotATable
        /// `users.NAME` is not a table.
        case userNotATable(user: String)
        /// `users.NAME` has no `password-hash`.
        case missingPasswordHash(user: String)
        /// `users.NAME.password-hash` is not a string.
        case passwordHashNotAString(user: String)
        /// `users.NAME.password-hash` is not an Argon2 PHC string.
        case invalidPasswordHash(user: String, reason: String)
        /// The user name breaks the rules of `UserName`.
        case invalidUserName(user: String, reason: String)
        /// The file (or its directory, or a temporary file beside it) could not be written.
        case unwritable(errno: Int32, message: String)
    }

    /// The path of the users file concerned.
    public let path: String
    public let problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var description: String {
        "\(path): \(problemDescription)"
    }

    private var problemDescription: String {
        switch problem {
        case .unreadable(_, let message):
            return "cannot read users file: \(message)"
        case .notUTF8:
            return "users file is not valid UTF-8"
        case .invalidTOML(let message, let line, let column):
            return TOMLFile.describeInvalid(message: message, line: line, column: column)
        case .usersNotATable:
            return "'users' must be a table of users ([users.NAME])"
        case .userNotATable(let user):
            return "user \(quoted(user)): [users.\(TOMLText.key(user))] must be a table with a password-hash"
        case .missingPasswordHash(let user):
            return "user \(quoted(user)): missing password-hash"
        case .passwordHashNotAString(let user):
            return "user \(quoted(user)): password-hash must be a string"
        case .invalidPasswordHash(let user, let reason):
            return "user \(quoted(user)): password-hash is not an Argon2 PHC string: \(reason)"
        case .invalidUserName(let user, let reason):
            return "user \(quoted(user)): \(reason)"
        case .unwritable(_, let message):
            return "cannot write users file: \(message)"
        }
    }

    private func quoted(_ s: String) -> String {
        TOMLText.quotedString(s)
    }
}

extension UsersFileError.Problem: TOMLFileProblem {}
