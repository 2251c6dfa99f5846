-- 0001: the admin database of a FoxMQ node (users, access rules, settings).
--
-- Applied by Sources/FoxStore/Admin/AdminMigrationRunner.swift inside one transaction and
-- recorded with the SHA-256 of this text: never edit this file once released, add 0002_...
-- instead. No BEGIN/COMMIT here (the runner owns the transaction).

-- The users a node accepts: the MQTT user name and an Argon2 PHC string
-- ($argon2id$v=19$m=19456,t=2,p=1$SALT$HASH, as in the original's users.toml).
CREATE TABLE users (
    name TEXT PRIMARY KEY NOT NULL CHECK (length(name) > 0),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- Access rules, evaluated in id order (AUTOINCREMENT: ids are never reused, so a new rule always
-- comes after every existing one). A subject is one user (user_name set), anonymous clients or
-- all authenticated users. The topic filter may hold %u (user name) and %c (client identifier).
-- A user's rules go when the user goes (ON DELETE CASCADE).
CREATE TABLE access_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL CHECK (subject IN ('user', 'anonymous', 'all-users')),
    user_name TEXT REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('publish', 'subscribe')),
    topic_filter TEXT NOT NULL CHECK (length(topic_filter) > 0),
    permission TEXT NOT NULL CHECK (permission IN ('allow', 'deny')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((subject = 'user') = (user_name IS NOT NULL))
) STRICT;

CREATE INDEX access_rules_by_user ON access_rules (user_name);

-- Configuration administration: one value per key.
CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL CHECK (length(key) > 0),
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- One row. `revision` goes up with every change to users, access_rules or settings (the triggers
-- below, so a change made with the sqlite3 shell counts too): a running node polls it and
-- reloads its snapshot when it moves. `users_file_checked_at` is set once, when the database was
-- first opened through its config directory and users.toml was imported (or found missing).
CREATE TABLE admin_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL CHECK (revision >= 0),
    users_file_checked_at TEXT
) STRICT;

INSERT INTO admin_state (id, revision) VALUES (1, 0);

CREATE TRIGGER users_insert_revision AFTER INSERT ON users
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER users_update_revision AFTER UPDATE ON users
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER users_delete_revision AFTER DELETE ON users
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;

CREATE TRIGGER access_rules_insert_revision AFTER INSERT ON access_rules
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER access_rules_update_revision AFTER UPDATE ON access_rules
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER access_rules_delete_revision AFTER DELETE ON access_rules
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;

CREATE TRIGGER settings_insert_revision AFTER INSERT ON settings
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER settings_update_revision AFTER UPDATE ON settings
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;
CREATE TRIGGER settings_delete_revision AFTER DELETE ON settings
BEGIN UPDATE admin_state SET revision = revision + 1 WHERE id = 1; END;
