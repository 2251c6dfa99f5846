import Foundation
import GRDB

/// The users and access rules without the database's ids and times: what a cluster orders.
public struct AdminContent: Sendable, Equatable {
    /// User name to argon2id PHC string.
    public var users: [String: String]
    /// In evaluation order; every `id` is 0 (ids are this database's own).
    public var rules: [AccessRule]

    public init(users: [String: String] = [:], rules: [AccessRule] = []) {
        self.users = users
        self.rules = rules.map { rule in
            var rule = rule
            rule.id = 0
            return rule
        }
    }

    public init(_ snapshot: AdminSnapshot) {
        self.init(users: snapshot.users, rules: snapshot.rules.rules)
    }
}

/// A cluster member's copy (`cluster_admin_base`, migration 0002): the content the cluster last
/// ordered as this node last wrote it into the database.
extension AdminDatabase {
    /// The content last copied in from the cluster, or nil if none ever was.
    public func clusterBase() throws(AdminDatabaseError) -> AdminContent? {
        let path = self.path
        return try read { db in
            guard let text = try String.fetchOne(db, sql: "SELECT content FROM cluster_admin_base WHERE id = 1")
            else { return nil }
            guard let content = ClusterBaseJSON.decode(text) else {
                throw AdminDatabaseError(
                    path: path, problem: .sqlite(message: "cluster_admin_base holds content that does not parse"))
            }
            return content
        }
    }

    /// Replaces the users and rules with `content` and records it as the cluster base, in one
    /// transaction, unless the database changed since revision `expected` (an operator's edit
    /// that this node has not ordered yet): then nothing is written and the answer is false.
    public func copyFromCluster(_ content: AdminContent, ifRevision expected: Int64) throws(AdminDatabaseError)
        -> Bool
    {
        try write { db in
            guard try Self.revision(db) == expected else { return false }
            var current: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, password_hash FROM users") {
                current[row["name"]] = row["password_hash"] as String
            }
            // Rules first: they refer to users.
            try db.execute(sql: "DELETE FROM access_rules")
            for name in current.keys where content.users[name] == nil {
                try db.execute(sql: "DELETE FROM users WHERE name = ?", arguments: [name])
            }
            for (name, hash) in content.users.sorted(by: { $0.key < $1.key }) where current[name] != hash {
                try db.execute(
                    sql: """
                        INSERT INTO users (name, password_hash) VALUES (?, ?)
                        ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
                            updated_at = \(Self.nowSQL)
                        """,
                    arguments: [name, hash])
            }
            for rule in content.rules {
                let (kind, userName) = Self.columns(of: rule.subject)
                try db.execute(
                    sql: """
                        INSERT INTO access_rules (subject, user_name, action, topic_filter, permission)
                        VALUES (?, ?, ?, ?, ?)
                        """,
                    arguments: [kind, userName, rule.action.rawValue, rule.topicFilter, rule.permission.rawValue])
            }
            try db.execute(
                sql: """
                    INSERT INTO cluster_admin_base (id, content) VALUES (1, ?)
                    ON CONFLICT (id) DO UPDATE SET content = excluded.content
                    """,
                arguments: [try ClusterBaseJSON.encode(content)])
            return true
        }
    }
}

/// The JSON of `cluster_admin_base.content`.
enum ClusterBaseJSON {
    private struct Document: Codable {
        struct Rule: Codable {
            var subject: String
            var user: String?
            var action: String
            var topicFilter: String
            var permission: String
        }
        var users: [String: String]
        var rules: [Rule]
    }

    static func encode(_ content: AdminContent) throws -> String {
        let document = Document(
            users: content.users,
            rules: content.rules.map { rule in
                let (kind, userName) = AdminDatabase.columns(of: rule.subject)
                return Document.Rule(
                    subject: kind, user: userName, action: rule.action.rawValue, topicFilter: rule.topicFilter,
                    permission: rule.permission.rawValue)
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }

    static func decode(_ text: String) -> AdminContent? {
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(text.utf8)) else { return nil }
        var rules: [AccessRule] = []
        for rule in document.rules {
            let subject: AccessRule.Subject
            switch (rule.subject, rule.user) {
            case ("user", let name?): subject = .user(name)
            case ("anonymous", nil): subject = .anonymous
            case ("all-users", nil): subject = .allUsers
            default: return nil
            }
            guard let action = AccessRule.Action(rawValue: rule.action),
                let permission = AccessRule.Permission(rawValue: rule.permission)
            else { return nil }
            rules.append(
                AccessRule(
                    id: 0, subject: subject, action: action, topicFilter: rule.topicFilter, permission: permission))
        }
        return AdminContent(users: document.users, rules: rules)
    }
}
