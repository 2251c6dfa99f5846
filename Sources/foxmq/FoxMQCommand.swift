import ArgumentParser

@main
struct FoxMQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "foxmq",
        abstract: "A decentralized MQTT 5.0 and 3.1.1 broker.",
        discussion: """
            Every node of a cluster orders every publish the same way, so every subscriber \
            sees the same sequence. The configuration directory (default foxmq.d) holds \
            the admin database (admin.sqlite: users, access rules, settings; an existing \
            users.toml is imported), the node's store (data/) and, for a cluster, \
            address-book.toml and the node keys.

            Quick start:
              foxmq user add alice              (prompts for the password)
              foxmq run --mqtt-addr 127.0.0.1:1883
            """,
        version: "0.1.0",
        subcommands: [
            RunCommand.self, AddressBookCommand.self, UserCommand.self, AclCommand.self, ConfigCommand.self,
            SnapshotCommand.self, DevClusterCommand.self,
        ]
    )
}
