/// One row of the admin database's access rules: who (`subject`) may or may not (`permission`)
/// publish to or subscribe with (`action`) the topics of `topicFilter`.
///
/// `topicFilter` is an MQTT topic filter (`+` and `#` wildcards) in which `%u` stands for the
/// client's user name and `%c` for its client identifier; any other `%` is a literal character.
/// See `AccessRules` for how rules are evaluated.
public struct AccessRule: Sendable, Hashable, CustomStringConvertible {
    /// Whom a rule is about.
    public enum Subject: Sendable, Hashable, CustomStringConvertible {
        /// One user (the MQTT user name the client authenticated with).
        case user(String)
        /// Clients that connected without a user name (with `--allow-anonymous-login`).
        case anonymous
        /// Every client that authenticated with a user name (not anonymous ones).
        case allUsers

        public var description: String {
            switch self {
            case .user(let name): "user \(TOMLText.quotedString(name))"
            case .anonymous: "anonymous clients"
            case .allUsers: "all users"
            }
        }
    }

    public enum Action: String, Sendable, Hashable, CaseIterable {
        case publish
        case subscribe
    }

    public enum Permission: String, Sendable, Hashable, CaseIterable {
        case allow
        case deny
    }

    /// The rule's id in the database; rules are evaluated in increasing id order.
    public var id: Int64
    public var subject: Subject
    public var action: Action
    public var topicFilter: String
    public var permission: Permission

    public init(id: Int64, subject: Subject, action: Action, topicFilter: String, permission: Permission) {
        self.id = id
        self.subject = subject
        self.action = action
        self.topicFilter = topicFilter
        self.permission = permission
    }

    /// E.g. `3: deny user "alice" to publish sensors/%u/#`.
    public var description: String {
        "\(id): \(statement)"
    }

    /// The rule without its id, e.g. `deny user "alice" to publish sensors/%u/#`.
    public var statement: String {
        "\(permission.rawValue) \(subject) to \(action.rawValue) \(topicFilter)"
    }
}
