import ArgumentParser
import FoxStore

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// `-o/--output-dir DIR`, the configuration directory of the `user` and `acl` commands (the
/// original's name for it; `run` takes the same directory as a trailing argument).
struct ConfigDirectoryOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "The configuration directory.")
    var outputDir: String = "foxmq.d"

    /// Opens DIR/admin.sqlite (creating it, and importing DIR/users.toml on its first open, which
    /// is reported on standard error so that standard output stays clean for `user export`).
    func openDatabase() throws -> AdminDatabase {
        let database = try AdminDatabase.open(directory: outputDir)
        if let report = database.firstOpenImport {
            writeStandardError("New admin database \(database.path): \(report).\n")
        }
        return database
    }

    /// Rewrites DIR/users.toml from the database after a change of users, so that the file the
    /// original FoxMQ (and a node from before the admin database) reads holds the same users.
    /// The database is the source of truth; the file is only imported by the database's first
    /// open.
    func mirrorUsersFile(from database: AdminDatabase) throws -> String {
        let path = UsersFile.path(inDirectory: outputDir)
        try database.exportUsers().save(to: path)
        return path
    }
}

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage the users allowed to connect (DIR/admin.sqlite).",
        discussion: """
            Users live in the admin database DIR/admin.sqlite. Every change is also written to \
            DIR/users.toml in the original FoxMQ format (argon2id PHC strings), which the \
            original reads; when the database is created, an existing DIR/users.toml is imported \
            into it.
            """,
        subcommands: [Add.self, List.self, Remove.self, Passwd.self, Import.self, Export.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user, or replace its password.",
            discussion: """
                Prompts on standard input for what is left out; the password is not echoed.
                """
        )

        @Argument(help: "The user name. Prompted for when left out.")
        var name: String?

        @Argument(help: "The password. Prompted for (without echo) when left out.")
        var password: String?

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let name = try self.name ?? prompt("User name: ", echo: true)
            let password = try self.password ?? prompt("Password: ", echo: false)
            if let reason = UserName.problem(with: name) { throw ValidationError("Invalid user name: \(reason).") }
            guard !password.isEmpty else { throw ValidationError("The password must not be empty.") }
            let database = try directory.openDatabase()
            let outcome = try database.addUser(name: name, password: password)
            let mirror = try directory.mirrorUsersFile(from: database)
            let verb = outcome == .added ? "Added user \(name) to" : "Replaced the password of \(name) in"
            print("\(verb) \(database.path) and \(mirror).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users.")

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let users = try database.users()
            if users.isEmpty {
                print("No users in \(database.path).")
                return
            }
            let width = users.map(\.name.count).max() ?? 0
            for user in users {
                let padding = String(repeating: " ", count: width - user.name.count)
                print("\(user.name)\(padding)  created \(user.createdAt)  password set \(user.updatedAt)")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user and its access rules.")

        @Argument(help: "The user name.")
        var name: String

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let rules = try database.removeUser(name: name)
            let mirror = try directory.mirrorUsersFile(from: database)
            let ruleNote = rules == 0 ? "" : " and its \(rules) access rule\(rules == 1 ? "" : "s")"
            print("Removed user \(name)\(ruleNote) from \(database.path) and \(mirror).")
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the password of an existing user.",
            discussion: "Prompts (without echo) when the password is left out."
        )

        @Argument(help: "The user name.")
        var name: String

        @Argument(help: "The new password. Prompted for (without echo) when left out.")
        var password: String?

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            // Fail before prompting when the user does not exist.
            guard try database.user(named: name) != nil else {
                throw AdminDatabaseError(path: database.path, problem: .unknownUser(name))
            }
            let password = try self.password ?? prompt("New password: ", echo: false)
            guard !password.isEmpty else { throw ValidationError("The password must not be empty.") }
            try database.setPassword(name: name, password: password)
            let mirror = try directory.mirrorUsersFile(from: database)
            print("Changed the password of \(name) in \(database.path) and \(mirror).")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import the users of a users.toml (the original FoxMQ's format).",
            discussion: """
                Password hashes are copied as they are, so the same passwords keep working. A user \
                already in the database gets the file's hash; users not in the file are kept.
                """
        )

        @Argument(help: "The users file (default: DIR/users.toml).")
        var file: String?

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let source = file ?? UsersFile.path(inDirectory: directory.outputDir)
            let report = try database.importUsers(fromFile: source)
            let mirror = try directory.mirrorUsersFile(from: database)
            print(
                "Imported \(report.count) user\(report.count == 1 ? "" : "s") from \(source) into \(database.path) "
                    + "(\(report.added.count) added, \(report.replaced.count) replaced, "
                    + "\(report.unchanged.count) unchanged); \(mirror) updated.")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the users in users.toml format (the original FoxMQ's).",
            discussion: "To standard output, or to --file (written atomically, mode 0600 when new)."
        )

        @Option(help: "Write to this file instead of standard output.")
        var file: String?

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let users = try database.exportUsers()
            guard let file else {
                print(users.serialized(), terminator: "")
                return
            }
            try users.save(to: file)
            print("Exported \(users.users.count) user\(users.users.count == 1 ? "" : "s") to \(file).")
        }
    }
}

/// Reads one line from standard input after writing `text` to standard error; without echo
/// when `echo` is false and standard input is a terminal.
func prompt(_ text: String, echo: Bool) throws -> String {
    writeStandardError(text)
    var saved = termios()
    let isTerminal = isatty(STDIN_FILENO) == 1
    if !echo && isTerminal {
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
    }
    defer {
        if !echo && isTerminal {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved)
            writeStandardError("\n")
        }
    }
    guard let line = readLine(strippingNewline: true) else {
        throw ValidationError("No input on standard input for \(text.trimmingCharacters(in: ": "))")
    }
    return line
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var result = Substring(self)
        while let last = result.last, set.contains(last) { result.removeLast() }
        return String(result)
    }
}
