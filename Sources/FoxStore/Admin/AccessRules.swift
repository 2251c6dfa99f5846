/// The access rules of a node as an immutable value, safe to share between threads: the node
/// asks it before it accepts a PUBLISH or grants a subscription.
///
/// Semantics:
///
/// - No rules at all: every client may publish and subscribe to everything (FoxMQ without rules
///   behaves as before rules existed). As soon as one rule exists, of any subject or action,
///   everything not allowed by a rule is denied.
/// - Subjects: a client with a user name is checked against its own rules (`.user(name)`) first,
///   then against the `.allUsers` rules. A client without a user name (anonymous) is checked
///   against the `.anonymous` rules only.
/// - Within each group, rules are tried in increasing id order and the first rule that matches
///   decides (allow or deny); if no rule matches in either group the request is denied. So a
///   deny placed before a broader allow carves an exception out of it, and a user's own rules
///   override the all-users rules.
/// - Placeholders: `%u` is replaced by the user name and `%c` by the client identifier before
///   matching. If the value is missing (`%u` for an anonymous client) or empty, or contains
///   `/`, `+` or `#` (which would add levels or wildcards and widen the rule), or starts with
///   `$` at the very start of the filter, the rule does not match (it neither allows nor denies).
/// - Publish: a rule matches when its filter matches the topic name (MQTT wildcard rules,
///   including: a filter starting with `+` or `#` does not match a topic starting with `$`).
///   A topic name holding a wildcard is invalid and denied.
/// - Subscribe: an allow rule matches when the requested filter is equal to the rule's filter or
///   covered by it, i.e. every topic the request can match is matched by the rule (`a/+` covers
///   `a/b`; `a/#` covers `a/+/c` and `a`; `a/+` does not cover `a/#`). A deny rule matches when
///   the request overlaps it, i.e. some topic is matched by both: with a deny `a/secret` before
///   an allow `a/#`, a request `a/+` or `#` is denied (it would receive `a/secret`), while
///   `a/public` is allowed. Checking deny rules by coverage only would let `a/+` through.
///   A request `$share/GROUP/FILTER` is checked on FILTER. An invalid request filter is denied.
/// - Rules are checked when a client publishes or subscribes; a subscription granted before a
///   rule changed is not re-checked here (that is the node's business).
public struct AccessRules: Sendable, Equatable {
    /// A rule with its filter split into levels ahead of time when it has no placeholders.
    struct CompiledRule: Sendable, Equatable {
        let rule: AccessRule
        let levels: [Substring]?

        init(_ rule: AccessRule) {
            self.rule = rule
            self.levels =
                AccessTopicFilter.hasPlaceholders(rule.topicFilter) ? nil : AccessTopicFilter.levels(rule.topicFilter)
        }

        func levels(username: String?, clientIdentifier: String) -> [Substring]? {
            if let levels { return levels }
            guard
                let filter = AccessTopicFilter.substituting(
                    rule.topicFilter, username: username, clientIdentifier: clientIdentifier)
            else { return nil }
            return AccessTopicFilter.levels(filter)
        }
    }

    /// The outcome of a check and the rule that decided it (nil when there are no rules, which
    /// allows, or when no rule matched, which denies).
    public struct Decision: Sendable, Equatable {
        public let isAllowed: Bool
        public let rule: AccessRule?

        public init(isAllowed: Bool, rule: AccessRule?) {
            self.isAllowed = isAllowed
            self.rule = rule
        }
    }

    /// Every rule, in increasing id order.
    public let rules: [AccessRule]
    private let byUser: [String: [CompiledRule]]
    private let allUsers: [CompiledRule]
    private let anonymous: [CompiledRule]

    /// No rules: everything is allowed.
    public static let none = AccessRules([])

    /// The rules in `rules`, evaluated in increasing id order whatever their order here.
    public init(_ rules: [AccessRule]) {
        let sorted = rules.sorted { $0.id < $1.id }
        self.rules = sorted
        var byUser: [String: [CompiledRule]] = [:]
        var allUsers: [CompiledRule] = []
        var anonymous: [CompiledRule] = []
        for rule in sorted {
            switch rule.subject {
            case .user(let name): byUser[name, default: []].append(CompiledRule(rule))
            case .allUsers: allUsers.append(CompiledRule(rule))
            case .anonymous: anonymous.append(CompiledRule(rule))
            }
        }
        self.byUser = byUser
        self.allUsers = allUsers
        self.anonymous = anonymous
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// Whether a client may publish to the topic name `topic`.
    ///
    /// - Parameters:
    ///   - username: the user name the client authenticated with, nil for an anonymous client.
    ///   - clientIdentifier: the client identifier in use (the assigned one if the server chose).
    public func mayPublish(topic: String, username: String?, clientIdentifier: String) -> Bool {
        publishDecision(topic: topic, username: username, clientIdentifier: clientIdentifier).isAllowed
    }

    /// Whether a client may subscribe with `filter` (possibly `$share/GROUP/FILTER`).
    public func maySubscribe(filter: String, username: String?, clientIdentifier: String) -> Bool {
        subscribeDecision(filter: filter, username: username, clientIdentifier: clientIdentifier).isAllowed
    }

    /// `mayPublish` with the rule that decided.
    public func publishDecision(topic: String, username: String?, clientIdentifier: String) -> Decision {
        if rules.isEmpty { return Decision(isAllowed: true, rule: nil) }
        guard AccessTopicFilter.isValidTopicName(topic) else { return Decision(isAllowed: false, rule: nil) }
        let topicLevels = AccessTopicFilter.levels(topic)
        return decide(.publish, username: username, clientIdentifier: clientIdentifier) { _, ruleLevels in
            AccessTopicFilter.matches(filter: ruleLevels, topic: topicLevels)
        }
    }

    /// `maySubscribe` with the rule that decided.
    public func subscribeDecision(filter: String, username: String?, clientIdentifier: String) -> Decision {
        if rules.isEmpty { return Decision(isAllowed: true, rule: nil) }
        var requested = filter
        if filter.hasPrefix(AccessTopicFilter.sharePrefix) {
            // $share/GROUP/FILTER: GROUP is one non-empty level without wildcards.
            let afterPrefix = filter.dropFirst(AccessTopicFilter.sharePrefix.count)
            guard let slash = afterPrefix.firstIndex(of: "/") else { return Decision(isAllowed: false, rule: nil) }
            let group = afterPrefix[..<slash]
            guard !group.isEmpty, !group.contains("+"), !group.contains("#") else {
                return Decision(isAllowed: false, rule: nil)
            }
            requested = String(afterPrefix[afterPrefix.index(after: slash)...])
        }
        guard AccessTopicFilter.isValidFilter(requested) else { return Decision(isAllowed: false, rule: nil) }
        let requestLevels = AccessTopicFilter.levels(requested)
        return decide(.subscribe, username: username, clientIdentifier: clientIdentifier) { permission, ruleLevels in
            switch permission {
            case .allow: AccessTopicFilter.covers(rule: ruleLevels, request: requestLevels)
            case .deny: AccessTopicFilter.overlaps(ruleLevels, requestLevels)
            }
        }
    }

    private func decide(
        _ action: AccessRule.Action, username: String?, clientIdentifier: String,
        matches: (AccessRule.Permission, [Substring]) -> Bool
    ) -> Decision {
        let groups: [[CompiledRule]]
        if let username {
            groups = [byUser[username] ?? [], allUsers]
        } else {
            groups = [anonymous]
        }
        for group in groups {
            for compiled in group where compiled.rule.action == action {
                guard let levels = compiled.levels(username: username, clientIdentifier: clientIdentifier) else {
                    continue
                }
                if matches(compiled.rule.permission, levels) {
                    return Decision(isAllowed: compiled.rule.permission == .allow, rule: compiled.rule)
                }
            }
        }
        return Decision(isAllowed: false, rule: nil)
    }
}
