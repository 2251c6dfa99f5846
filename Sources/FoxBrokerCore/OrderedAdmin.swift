import NIOCore

/// The users and access rules of a cluster as the log ordered them: every node applies the same
/// `.admin` entries, so every node authenticates and authorizes alike, whichever node an operator
/// changed (`foxmq user`, `foxmq acl` on any node's admin database). Part of the broker state:
/// kept in the meta row, so checkpoints, the state digest and state transfer carry it.
///
/// The state machine never reads it to decide anything (verdicts are made at the edge, against
/// this ordered copy); it only keeps it in order.
public struct OrderedAdmin: Sendable, Hashable {
    /// One access rule without the database's row id: rules are evaluated in list order.
    public struct Rule: Sendable, Hashable {
        public enum Subject: Sendable, Hashable {
            case user(String)
            case anonymous
            case allUsers
        }

        public var subject: Subject
        /// true: publish; false: subscribe.
        public var publish: Bool
        public var topicFilter: String
        public var allow: Bool

        public init(subject: Subject, publish: Bool, topicFilter: String, allow: Bool) {
            self.subject = subject
            self.publish = publish
            self.topicFilter = topicFilter
            self.allow = allow
        }
    }

    /// User name to argon2id PHC string.
    public internal(set) var users: [String: String] = [:]
    public internal(set) var rules: [Rule] = []
    /// How many admin entries were applied: a cheap "changed" signal for the edge.
    public internal(set) var revision: UInt64 = 0
    /// The greatest sequence number applied per node: a node knows its changes are ordered
    /// once its own number here reaches theirs.
    public internal(set) var sequences: [UInt32: UInt64] = [:]

    public init(
        users: [String: String] = [:], rules: [Rule] = [], revision: UInt64 = 0, sequences: [UInt32: UInt64] = [:]
    ) {
        self.users = users
        self.rules = rules
        self.revision = revision
        self.sequences = sequences
    }

    public func sequence(of node: UInt32) -> UInt64 { sequences[node] ?? 0 }

    /// Applies one ordered entry.
    mutating func apply(_ entry: AdminEntry) {
        apply(entry.change)
        sequences[entry.node] = max(sequence(of: entry.node), entry.sequence)
        revision += 1
    }

    /// Applies a change. Rules of a user who does not exist are dropped, as the admin
    /// database's foreign key does, so every node ends with the same list.
    public mutating func apply(_ change: AdminChange) {
        switch change {
        case .setUser(let name, let passwordHash):
            users[name] = passwordHash
        case .removeUser(let name):
            users[name] = nil
            rules.removeAll { $0.subject == .user(name) }
        case .setRules(let newRules):
            rules = newRules.filter { rule in
                if case .user(let name) = rule.subject { return users[name] != nil }
                return true
            }
        }
    }
}

/// An admin change as an entry: from node `node`, its `sequence`-th (1, 2, ...).
public struct AdminEntry: Sendable, Hashable {
    public var node: UInt32
    public var sequence: UInt64
    public var change: AdminChange

    public init(node: UInt32, sequence: UInt64, change: AdminChange) {
        self.node = node
        self.sequence = sequence
        self.change = change
    }
}

/// One ordered change of the users or access rules. Any member may order one: the cluster's
/// operators administer every node alike.
public enum AdminChange: Sendable, Hashable {
    case setUser(name: String, passwordHash: String)
    case removeUser(name: String)
    /// The whole rule list, in evaluation order (rule lists are short; a whole list keeps the
    /// order every node evaluates in the same, whatever ids each node's database gave).
    case setRules([OrderedAdmin.Rule])
}

// MARK: Canonical encoding

extension ByteBuffer {
    mutating func writeOrderedAdmin(_ admin: OrderedAdmin) {
        writeInteger(admin.revision)
        let sequences = admin.sequences.sorted { $0.key < $1.key }
        writeInteger(UInt32(sequences.count))
        for (node, sequence) in sequences {
            writeInteger(node)
            writeInteger(sequence)
        }
        // Sorted by the names' bytes: the dictionary's order never reaches the bytes.
        let users = admin.users.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        writeInteger(UInt32(users.count))
        for (name, hash) in users {
            writeLengthPrefixed(name)
            writeLengthPrefixed(hash)
        }
        writeRules(admin.rules)
    }

    mutating func writeRules(_ rules: [OrderedAdmin.Rule]) {
        writeInteger(UInt32(rules.count))
        for rule in rules {
            switch rule.subject {
            case .user(let name):
                writeInteger(0, as: UInt8.self)
                writeLengthPrefixed(name)
            case .anonymous:
                writeInteger(1, as: UInt8.self)
            case .allUsers:
                writeInteger(2, as: UInt8.self)
            }
            writeFlag(rule.publish)
            writeLengthPrefixed(rule.topicFilter)
            writeFlag(rule.allow)
        }
    }

    mutating func writeAdminEntry(_ entry: AdminEntry) {
        writeInteger(entry.node)
        writeInteger(entry.sequence)
        writeAdminChange(entry.change)
    }

    mutating func writeAdminChange(_ change: AdminChange) {
        switch change {
        case .setUser(let name, let passwordHash):
            writeInteger(0, as: UInt8.self)
            writeLengthPrefixed(name)
            writeLengthPrefixed(passwordHash)
        case .removeUser(let name):
            writeInteger(1, as: UInt8.self)
            writeLengthPrefixed(name)
        case .setRules(let rules):
            writeInteger(2, as: UInt8.self)
            writeRules(rules)
        }
    }
}

extension CanonicalReader {
    mutating func orderedAdmin(_ field: String) throws(RecordDecodeError) -> OrderedAdmin {
        let revision = try integer("\(field).revision", as: UInt64.self)
        var sequences: [UInt32: UInt64] = [:]
        var previousNode: UInt32?
        for _ in 0..<(try self.count("\(field).sequences", elementSizeMin: 12)) {
            let node = try integer("\(field).sequences.node", as: UInt32.self)
            if let previousNode, previousNode >= node {
                throw RecordDecodeError("\(field).sequences", "nodes out of order or repeated")
            }
            previousNode = node
            sequences[node] = try integer("\(field).sequences.sequence", as: UInt64.self)
        }
        let count = try self.count("\(field).users", elementSizeMin: 8)
        var users: [String: String] = [:]
        var previous: String?
        for _ in 0..<count {
            let name = try string("\(field).users.name")
            if let previous, !previous.utf8.lexicographicallyPrecedes(name.utf8) {
                throw RecordDecodeError("\(field).users", "names out of order or repeated")
            }
            previous = name
            users[name] = try string("\(field).users.passwordHash")
        }
        return OrderedAdmin(
            users: users, rules: try rules("\(field).rules"), revision: revision, sequences: sequences)
    }

    mutating func rules(_ field: String) throws(RecordDecodeError) -> [OrderedAdmin.Rule] {
        let count = try self.count(field, elementSizeMin: 7)
        var rules: [OrderedAdmin.Rule] = []
        rules.reserveCapacity(count)
        for _ in 0..<count {
            let subject: OrderedAdmin.Rule.Subject
            switch try integer("\(field).subject", as: UInt8.self) {
            case 0: subject = .user(try string("\(field).subject.user"))
            case 1: subject = .anonymous
            case 2: subject = .allUsers
            case let other: throw RecordDecodeError("\(field).subject", "unknown subject \(other)")
            }
            rules.append(
                OrderedAdmin.Rule(
                    subject: subject, publish: try flag("\(field).publish"),
                    topicFilter: try string("\(field).topicFilter"), allow: try flag("\(field).allow")))
        }
        return rules
    }

    mutating func adminEntry(_ field: String) throws(RecordDecodeError) -> AdminEntry {
        AdminEntry(
            node: try integer("\(field).node"), sequence: try integer("\(field).sequence"),
            change: try adminChange(field))
    }

    mutating func adminChange(_ field: String) throws(RecordDecodeError) -> AdminChange {
        switch try integer("\(field).kind", as: UInt8.self) {
        case 0:
            return .setUser(name: try string("\(field).name"), passwordHash: try string("\(field).passwordHash"))
        case 1:
            return .removeUser(name: try string("\(field).name"))
        case 2:
            return .setRules(try rules("\(field).rules"))
        case let other:
            throw RecordDecodeError("\(field).kind", "unknown admin change \(other)")
        }
    }
}
