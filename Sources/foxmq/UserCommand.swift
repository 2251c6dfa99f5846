import ArgumentParser
import FoxStore

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage the users allowed to connect (users.toml).",
        subcommands: [Add.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user, or replace its password.",
            discussion: """
                Writes DIR/users.toml in the original FoxMQ format (argon2id PHC strings), \
                so the file works with both. Prompts on standard input for what is left out; \
                the password is not echoed.
                """
        )

        @Argument(help: "The user name. Prompted for when left out.")
        var name: String?

        @Argument(help: "The password. Prompted for (without echo) when left out.")
        var password: String?

        @Option(name: [.short, .long], help: "The configuration directory.")
        var outputDir: String = "foxmq.d"

        func run() throws {
            let name = try self.name ?? prompt("User name: ", echo: true)
            let password = try self.password ?? prompt("Password: ", echo: false)
            guard !password.isEmpty else { throw ValidationError("The password must not be empty.") }
            let outcome = try UserDirectory.addUser(name: name, password: password, in: outputDir)
            let path = UsersFile.path(inDirectory: outputDir)
            print(outcome == .added ? "Added user \(name) to \(path)." : "Replaced the password of \(name) in \(path).")
        }

        private func prompt(_ text: String, echo: Bool) throws -> String {
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
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var result = Substring(self)
        while let last = result.last, set.contains(last) { result.removeLast() }
        return String(result)
    }
}
