-- A cluster member's copy of the users and access rules as the cluster last ordered them and
-- this node last wrote them here (one row: JSON of {"users": {name: hash}, "rules": [...]}).
-- The node compares this database with it to tell what an operator changed on this node (to be
-- ordered for every node) from what the cluster ordered (to be copied in). Single nodes leave
-- it empty.
CREATE TABLE cluster_admin_base (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    content TEXT NOT NULL
) STRICT;
