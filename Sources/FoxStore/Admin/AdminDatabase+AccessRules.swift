import GRDB

extension AdminDatabase {
    /// Adds a rule after every existing one (ids only grow) and returns it with its id.
    ///
    /// - Throws: `AdminDatabaseError` with `invalidTopicFilter` (not a topic filter, or a
    ///   `$share/...` one), `unknownUser` for a `.user` subject that does not exist.
    @discardableResult
    public func addRule(
        subject: AccessRule.Subject, action: AccessRule.Action, topicFilter: String,
        permission: AccessRule.Permission = .allow
    ) throws(AdminDatabaseError) -> AccessRule {
        if let reason = AccessTopicFilter.problem(withRuleFilter: topicFilter) {
            throw AdminDatabaseError(path: path, problem: .invalidTopicFilter(filter: topicFilter, reason: reason))
        }
        let path = self.path
        let (kind, userName) = Self.columns(of: subject)
        return try write { db in
            if let userName,
                try Int.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [userName]) == nil
            {
                throw AdminDatabaseError(path: path, problem: .unknownUser(userName))
            }
            try db.execute(
                sql: """
                    INSERT INTO access_rules (subject, user_name, action, topic_filter, permission)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [kind, userName, action.rawValue, topicFilter, permission.rawValue])
            return AccessRule(
                id: db.lastInsertedRowID, subject: subject, action: action, topicFilter: topicFilter,
                permission: permission)
        }
    }

    /// Every rule, in id (evaluation) order.
    public func rules() throws(AdminDatabaseError) -> [AccessRule] {
        try read { db in try Self.accessRules(db) }
    }

    /// The rules as the value the node checks requests against.
    public func accessRules() throws(AdminDatabaseError) -> AccessRules {
        AccessRules(try rules())
    }

    /// Removes the rule `id` and returns it.
    ///
    /// - Throws: `AdminDatabaseError.Problem.unknownRule` if there is no such rule.
    @discardableResult
    public func removeRule(id: Int64) throws(AdminDatabaseError) -> AccessRule {
        let path = self.path
        return try write { db in
            guard let rule = try Self.accessRules(db, id: id).first else {
                throw AdminDatabaseError(path: path, problem: .unknownRule(id: id))
            }
            try db.execute(sql: "DELETE FROM access_rules WHERE id = ?", arguments: [id])
            return rule
        }
    }

    static func accessRules(_ db: Database, id: Int64? = nil) throws -> [AccessRule] {
        let columns = "id, subject, user_name, action, topic_filter, permission"
        let rows =
            if let id {
                try Row.fetchAll(db, sql: "SELECT \(columns) FROM access_rules WHERE id = ?", arguments: [id])
            } else {
                try Row.fetchAll(db, sql: "SELECT \(columns) FROM access_rules ORDER BY id")
            }
        return try rows.map { row throws in
            let kind: String = row["subject"]
            let userName: String? = row["user_name"]
            let subject: AccessRule.Subject
            switch (kind, userName) {
            case ("user", let name?): subject = .user(name)
            case ("anonymous", nil): subject = .anonymous
            case ("all-users", nil): subject = .allUsers
            default: throw corruptRow(row)
            }
            guard let action = AccessRule.Action(rawValue: row["action"]),
                let permission = AccessRule.Permission(rawValue: row["permission"])
            else { throw corruptRow(row) }
            return AccessRule(
                id: row["id"], subject: subject, action: action, topicFilter: row["topic_filter"],
                permission: permission)
        }
    }

    private static func corruptRow(_ row: Row) -> DatabaseError {
        // The CHECK constraints of 0001_admin.sql make this unreachable short of a corrupt file.
        DatabaseError(resultCode: .SQLITE_CORRUPT, message: "unreadable access rule \(row)")
    }

    static func columns(of subject: AccessRule.Subject) -> (kind: String, userName: String?) {
        switch subject {
        case .user(let name): ("user", name)
        case .anonymous: ("anonymous", nil)
        case .allUsers: ("all-users", nil)
        }
    }
}
