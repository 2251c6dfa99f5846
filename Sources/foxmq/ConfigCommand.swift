import ArgumentParser
import FoxBroker
import FoxStore

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Settings of the admin database (DIR/admin.sqlite) that win over run's flags.",
        discussion: """
            A running node reads a change within a second and orders the new limits, so they \
            decide from that point of the log on. Keys: \
            \(BrokerSetting.allCases.map(\.rawValue).joined(separator: ", ")).
            """,
        subcommands: [Set.self, Get.self, List.self, Unset.self]
    )

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a setting.")
        @Argument(help: "The setting.") var key: String
        @Argument(help: "Its value.") var value: String
        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            guard let setting = BrokerSetting(rawValue: key) else {
                throw ValidationError(
                    "Unknown setting \(key); known: \(BrokerSetting.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            if case .failure(let error) = setting.parse(value) { throw ValidationError(error.message) }
            let database = try directory.openDatabase()
            try database.setSetting(key, to: value)
            print("Set \(key) = \(value) in \(database.path) (\(setting.explanation)).")
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a setting.")
        @Argument(help: "The setting.") var key: String
        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            guard let value = try database.setting(key) else {
                throw ValidationError("\(key) is not set in \(database.path) (run's flag or default applies).")
            }
            print(value)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the settings.")
        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let settings = try database.settings()
            if settings.isEmpty { print("No settings in \(database.path): run's flags and defaults apply.") }
            for key in settings.keys.sorted() { print("\(key) = \(settings[key] ?? "")") }
        }
    }

    struct Unset: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a setting (run's flag applies again).")
        @Argument(help: "The setting.") var key: String
        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            guard try database.setting(key) != nil else {
                throw ValidationError("\(key) is not set in \(database.path).")
            }
            try database.setSetting(key, to: nil)
            print("Removed \(key) from \(database.path).")
        }
    }
}
