import ArgumentParser
import FoxStore

struct AclCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "Manage the access rules: who may publish and subscribe to which topics.",
        discussion: """
            Rules live in DIR/admin.sqlite. \
            With no rules at all every client may publish and subscribe to everything. Once any \
            rule exists, a request is allowed only if the first rule that matches it allows it: \
            a client's own user rules are tried first, then the --all-users rules, each in rule \
            id order (the order of `acl list`); anonymous clients are checked against the \
            --anonymous rules only. No matching rule: denied.

            A topic filter may use + and #, and %u (the user name) and %c (the client \
            identifier); a rule whose value would hold /, + or # does not match. A subscription \
            is allowed when an allow rule's filter covers the requested filter, and denied when \
            it overlaps a deny rule that comes first. $share/GROUP/FILTER is checked on FILTER.

            Examples:
              foxmq acl add --user alice --publish 'sensors/%u/#'
              foxmq acl add --all-users --subscribe 'sensors/#'
              foxmq acl add --anonymous --subscribe 'public/#'
              foxmq acl add --all-users --publish 'sensors/secret/#' --deny
            """,
        subcommands: [Add.self, List.self, Remove.self, Check.self]
    )

    /// `--user NAME | --anonymous | --all-users`.
    struct SubjectOptions: ParsableArguments {
        @Option(help: "The rule is about this user.")
        var user: String?

        @Flag(help: "The rule is about clients that connect without a user name.")
        var anonymous = false

        @Flag(help: "The rule is about every client that connects with a user name.")
        var allUsers = false

        func validate() throws {
            let count = (user == nil ? 0 : 1) + (anonymous ? 1 : 0) + (allUsers ? 1 : 0)
            guard count == 1 else {
                throw ValidationError("Give exactly one of --user NAME, --anonymous, --all-users.")
            }
        }

        var subject: AccessRule.Subject {
            if let user { return .user(user) }
            return anonymous ? .anonymous : .allUsers
        }
    }

    /// `--publish FILTER | --subscribe FILTER`.
    struct ActionOptions: ParsableArguments {
        @Option(help: ArgumentHelp("Publishing to topics that match this filter.", valueName: "filter"))
        var publish: String?

        @Option(help: ArgumentHelp("Subscribing with filters covered by this filter.", valueName: "filter"))
        var subscribe: String?

        func validate() throws {
            guard (publish == nil) != (subscribe == nil) else {
                throw ValidationError("Give exactly one of --publish and --subscribe.")
            }
        }

        var action: AccessRule.Action { publish == nil ? .subscribe : .publish }
        var topic: String { publish ?? subscribe ?? "" }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a rule after the existing ones.",
            discussion: "A --user rule needs an existing user, and is removed with it."
        )

        @OptionGroup var subject: SubjectOptions
        @OptionGroup var action: ActionOptions

        @Flag(help: "Deny instead of allow.")
        var deny = false

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let rule = try database.addRule(
                subject: subject.subject, action: action.action, topicFilter: action.topic,
                permission: deny ? .deny : .allow)
            print("Added rule \(rule.id) to \(database.path): \(rule.statement).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the rules in the order they are tried.")

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let rules = try database.rules()
            if rules.isEmpty {
                print("No access rules in \(database.path): every client may publish and subscribe to everything.")
                return
            }
            for rule in rules { print(rule) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a rule by its id (see `acl list`).")

        @Argument(help: "The rule's id.")
        var id: Int64

        @OptionGroup var directory: ConfigDirectoryOptions

        func run() throws {
            let database = try directory.openDatabase()
            let rule = try database.removeRule(id: id)
            print("Removed rule \(rule.id) from \(database.path): \(rule.statement).")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tell whether a client may publish to a topic or subscribe with a filter, and by which rule.",
            discussion: "Exits with 0 when allowed, 1 when denied."
        )

        @Option(help: "The client's user name (leave out with --anonymous).")
        var user: String?

        @Flag(help: "The client connects without a user name.")
        var anonymous = false

        @Option(help: "The client identifier (for %c).")
        var clientId: String = "client"

        @OptionGroup var action: ActionOptions

        @OptionGroup var directory: ConfigDirectoryOptions

        func validate() throws {
            guard (user == nil) == anonymous else {
                throw ValidationError("Give exactly one of --user NAME, --anonymous.")
            }
        }

        func run() throws {
            let database = try directory.openDatabase()
            let rules = try database.accessRules()
            let decision =
                switch action.action {
                case .publish:
                    rules.publishDecision(topic: action.topic, username: user, clientIdentifier: clientId)
                case .subscribe:
                    rules.subscribeDecision(filter: action.topic, username: user, clientIdentifier: clientId)
                }
            let verdict = decision.isAllowed ? "allowed" : "denied"
            if let rule = decision.rule {
                print("\(verdict) by rule \(rule)")
            } else if rules.isEmpty {
                print("\(verdict): there are no rules")
            } else {
                print("\(verdict): no rule matches")
            }
            if !decision.isAllowed { throw ExitCode(1) }
        }
    }
}
