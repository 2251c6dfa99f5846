import GRDB

extension AdminDatabase {
    /// The value of the setting `key`, or nil.
    public func setting(_ key: String) throws(AdminDatabaseError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) }
    }

    /// Every setting, key -> value.
    public func settings() throws(AdminDatabaseError) -> [String: String] {
        try read { db in
            var settings: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM settings") {
                settings[row["key"]] = row["value"] as String
            }
            return settings
        }
    }

    /// Sets `key` to `value`, or removes it when `value` is nil. Setting the value it already
    /// has changes nothing (the revision does not move).
    ///
    /// - Throws: `AdminDatabaseError` with `invalidSettingKey` for an empty key.
    public func setSetting(_ key: String, to value: String?) throws(AdminDatabaseError) {
        guard !key.isEmpty else {
            throw AdminDatabaseError(path: path, problem: .invalidSettingKey(key))
        }
        try write { db in
            if let value {
                try db.execute(
                    sql: """
                        INSERT INTO settings (key, value) VALUES (?, ?)
                        ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = \(Self.nowSQL)
                        WHERE value IS NOT excluded.value
                        """,
                    arguments: [key, value])
            } else {
                try db.execute(sql: "DELETE FROM settings WHERE key = ?", arguments: [key])
            }
        }
    }
}
