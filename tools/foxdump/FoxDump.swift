import ArgumentParser

@main
struct FoxDump: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "foxdump", abstract: "Read a foxmq node's store.")
}
