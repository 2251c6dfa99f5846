import ArgumentParser

/// foxdump: reads a foxmq node's store (read-only, safe while the node runs), as
/// `mosquitto_db_dump` does for Mosquitto: what it holds, and whether it is whole.
@main
struct FoxDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "foxdump",
        abstract: "Read a foxmq node's store (read-only, safe while the node runs).",
        discussion: """
            DIR is the configuration directory as for `foxmq run` (default foxmq.d); the store is \
            DIR/data unless --data-dir PATH is given. Every command takes --json for one JSON \
            document with a stable key order.

            Exit status: 0 when all is well, 1 when the store cannot be read or verify finds \
            problems, 3 when a command's data is not available in this build, 64 for bad usage.
            """,
        subcommands: [
            InfoCommand.self, LogCommand.self, RetainedCommand.self, SessionsCommand.self, InflightCommand.self,
            UsersCommand.self, AclCommand.self, VerifyCommand.self, CompareCommand.self,
        ])
}
