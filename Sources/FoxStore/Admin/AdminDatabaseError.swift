/// A problem opening, migrating, reading or changing the admin database.
///
/// `description` starts with the path of the file at fault (the database's, or the users.toml's
/// for `.usersFile`), so the command line and start-up can print it as is, e.g.
/// `foxmq.d/admin.sqlite: migration 0002_x.sql (number 2) failed, ...: no such table: y`.
public struct AdminDatabaseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        /// SQLite could not open or set up the file (permissions, not a database, locked, ...).
        case cannotOpen(message: String)
        /// A migration failed; its transaction was rolled back, the database is as it was.
        case migrationFailed(number: Int, name: String, message: String)
        /// A recorded migration's text differs from the one this binary embeds.
        case migrationChanged(number: Int, name: String, recordedSHA256: String, embeddedSHA256: String)
        /// A recorded migration this binary does not have under that number and name.
        case unknownMigration(number: Int, name: String)
        /// The database records migrations beyond the last one this binary knows.
        case newerDatabase(recordedNumber: Int, knownNumber: Int)
        /// Any other SQLite error (disk full, I/O error, busy for too long, ...).
        case sqlite(message: String)
        /// Importing or exporting users.toml failed.
        case usersFile(UsersFileError)
        /// Writing a backup failed.
        case backupFailed(destination: String, message: String)
        case invalidUserName(user: String, reason: String)
        case invalidPasswordHash(user: String, reason: String)
        case passwordHashing(PasswordHashError)
        case unknownUser(String)
        case invalidTopicFilter(filter: String, reason: String)
        case unknownRule(id: Int64)
        case invalidSettingKey(String)
    }

    /// The path of the database file concerned.
    public let path: String
    public let problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var description: String {
        switch problem {
        case .usersFile(let error):
            // The users file is the one at fault, and its error starts with its path.
            return error.description
        default:
            return "\(path): \(problemDescription)"
        }
    }

    private var problemDescription: String {
        switch problem {
        case .cannotOpen(let message):
            return "cannot open the admin database: \(message)"
        case .migrationFailed(let number, let name, let message):
            return "migration \(name) (number \(number)) failed, nothing of it was applied: \(message)"
        case .migrationChanged(_, let name, let recorded, let embedded):
            return
                "migration \(name) was applied with a different text (recorded SHA-256 \(recorded), this foxmq has \(embedded)); released migrations must never change"
        case .unknownMigration(let number, let name):
            return "the database records migration \(name) (number \(number)), which this foxmq does not have"
        case .newerDatabase(let recorded, let known):
            return
                "made by a newer foxmq: the database is at migration \(recorded), this foxmq knows up to \(known); use a newer foxmq or restore a backup"
        case .sqlite(let message):
            return message
        case .usersFile(let error):
            return error.description
        case .backupFailed(let destination, let message):
            return "backup to \(destination) failed: \(message)"
        case .invalidUserName(let user, let reason):
            return "user \(TOMLText.quotedString(user)): \(reason)"
        case .invalidPasswordHash(let user, let reason):
            return "user \(TOMLText.quotedString(user)): password hash is not an Argon2 PHC string: \(reason)"
        case .passwordHashing(let error):
            return error.description
        case .unknownUser(let user):
            return "no user \(TOMLText.quotedString(user))"
        case .invalidTopicFilter(let filter, let reason):
            return "invalid topic filter \(TOMLText.quotedString(filter)): \(reason)"
        case .unknownRule(let id):
            return "no access rule with id \(id)"
        case .invalidSettingKey(let key):
            return "invalid setting key \(TOMLText.quotedString(key)): it must not be empty"
        }
    }
}
