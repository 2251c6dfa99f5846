import ArgumentParser
import FoxBrokerCore
import FoxBrokerStore
import FoxStore

/// Lists decoded rows of one state table page by page, printing each as it comes, with damaged
/// rows shown and counted (exit status 1 at the end).
struct RowLister {
    let store: StoreOptions
    let arrayName: String
    var count = 0
    var damaged = 0
    /// Members appended after the array (where the rows come from).
    var trailer: [(String, JSON)] = []

    init(store: StoreOptions, arrayName: String) {
        self.store = store
        self.arrayName = arrayName
        if store.json { Output.line("{\"\(arrayName)\": [") }
    }

    mutating func emit(_ document: JSON, human: () -> String) {
        if store.json {
            Output.line((count == 0 ? "  " : ", ") + document.serialized(indent: nil))
        } else {
            Output.line(human())
        }
        count += 1
    }

    mutating func damaged(table: String, key: [UInt8], error: any Error) {
        damaged += 1
        emit(.object([("key", .string(Render.key(key))), ("error", .string("\(error)"))])) {
            "damaged row in table \(table), key \(Render.key(key).debugDescription): \(error)"
        }
    }

    /// Runs `body` (which reads the rows), then closes the document; throws the exit status.
    mutating func run(_ what: String, _ body: (inout RowLister) throws -> Void) throws {
        var failure: String?
        do {
            try body(&self)
        } catch let error as NodeStoreError {
            failure = StoreOptions.message(error)
            if case .corrupt = error {
                failure = (failure ?? "") + " (the stored rows alone: --checkpoint; every problem: `foxdump verify`)"
            }
        }
        if store.json {
            var tail = "], \"count\": \(count), \"damaged\": \(damaged)"
            for (key, value) in trailer {
                tail += ", "
                JSON.writeString(key, to: &tail)
                tail += ": " + value.serialized(indent: nil)
            }
            if let failure {
                tail += ", \"error\": "
                JSON.writeString(failure, to: &tail)
            }
            Output.line(tail + "}")
        } else if count == 0 && failure == nil {
            Output.line("(no \(what))")
        }
        if let failure {
            Output.error("foxdump: \(failure)")
            throw ExitCode(ExitStatus.problems)
        }
        if damaged > 0 {
            Output.error("foxdump: \(damaged) damaged row\(damaged == 1 ? "" : "s"); run `foxdump verify`")
            throw ExitCode(ExitStatus.problems)
        }
    }
}

/// Where the rows come from: by default the state as recovery rebuilds it now (the last
/// checkpoint's rows plus the log after it, replayed in memory, read only); with
/// `--checkpoint`, the rows as stored, page by page, without replay.
struct RowSource: ParsableArguments {
    @Flag(help: "Show the rows of the last checkpoint as stored (no replay of the log after it).")
    var checkpoint = false

    /// Calls `body` with each row of `table` (only `key`'s when given), in key order.
    func forEach(
        _ nodeStore: NodeStore, _ table: StateTable, key: [UInt8]? = nil, _ lister: inout RowLister,
        _ body: (StoredRow, inout RowLister) -> Void
    ) throws {
        if checkpoint {
            let summary = try nodeStore.summary()
            lister.trailer = [
                ("source", .string("checkpoint")),
                ("atIndex", .number(summary.checkpoint?.appliedIndex ?? 0)),
            ]
            if !lister.store.json {
                Output.line("rows of the checkpoint at log index \(summary.checkpoint?.appliedIndex ?? 0)")
            }
            if let key {
                if let row = try nodeStore.row(table, key: key) { body(row, &lister) }
                return
            }
            try nodeStore.forEachRow(table) { row in body(row, &lister) }
            return
        }
        let current = try nodeStore.currentRows()
        lister.trailer = [
            ("source", .string("recovered")), ("atIndex", .number(current.index)),
            ("checkpointIndex", .number(current.checkpointIndex)),
        ]
        if !lister.store.json {
            Output.line(
                "state at log index \(current.index) (checkpoint at \(current.checkpointIndex) "
                    + "+ \(current.index - current.checkpointIndex) records replayed)")
        }
        for row in current.rows[table] ?? [] where key == nil || row.key == key {
            body(row, &lister)
        }
    }
}

struct RetainedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retained", abstract: "Retained messages, optionally those matching a topic filter.")

    @OptionGroup var store: StoreOptions

    @OptionGroup var source: RowSource

    @Argument(help: "Show only topics matching this MQTT topic filter (after DIR).")
    var filter: String?

    func run() throws {
        let nodeStore = try store.open()
        var lister = RowLister(store: store, arrayName: "retained")
        try lister.run("retained messages") { lister in
            try source.forEach(nodeStore, .retained, &lister) { row, lister in
                let message: ApplicationMessage
                do {
                    message = try RetainedRow.decode(key: row.key, value: row.value)
                } catch {
                    lister.damaged(table: "retained", key: row.key, error: error)
                    return
                }
                if let filter, !topicFilter(filter, matches: message.topicName) { return }
                let members = Render.message(message)
                lister.emit(.object(members)) {
                    "\(message.topicName.debugDescription)  " + Render.fields(Array(members.dropFirst()))
                }
            }
        }
    }
}

struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "Sessions: client id, connected or detached, expiry, subscriptions, queued and in-flight messages.")

    @OptionGroup var store: StoreOptions

    @OptionGroup var source: RowSource

    @Argument(help: "Show only this client's session (after DIR).")
    var client: String?

    func run() throws {
        let nodeStore = try store.open()
        var lister = RowLister(store: store, arrayName: "sessions")
        try lister.run("sessions") { lister in
            try forEachSession(nodeStore, source, client: client, &lister) { session, lister in
                lister.emit(Self.document(session)) { Self.human(session) }
            }
        }
        if let client, lister.count == 0 {
            throw store.fail("no session for client \(client.debugDescription) in \(nodeStore.dataFile)")
        }
    }

    static func document(_ session: SessionSummary) -> JSON {
        var members: [(String, JSON)] = [
            ("clientId", .string(session.clientIdentifier)), ("connected", .bool(session.isConnected)),
            ("connection", JSON.optional(session.connection) { Render.connection($0) }),
            ("protocol", .string(session.protocolVersion.description)),
            ("expiryInterval", .number(session.expiryIntervalSeconds)),
            ("expiresNever", .bool(session.expiryIntervalSeconds == UInt32.max)),
        ]
        members += Render.time("disconnectedAt", session.disconnectedAtMillis)
        members += Render.time("expiresAt", session.expiryDeadlineMillis)
        if let will = session.will { members.append(("will", Render.will(will))) }
        if let pending = session.pendingWill {
            members.append(
                (
                    "pendingWill",
                    .object([("will", Render.will(pending.will))] + Render.time("dueAt", pending.deadlineMillis))
                ))
        }
        members.append(
            (
                "subscriptions",
                .array(
                    session.subscriptions.map { subscription in
                        var fields: [(String, JSON)] = [("filter", .string(subscription.filter))]
                        fields += Render.subscriptionOptions(subscription.options)
                        if let identifier = subscription.subscriptionIdentifier {
                            fields.append(("subscriptionId", .number(identifier)))
                        }
                        return .object(fields)
                    })
            ))
        members += [
            ("queued", .number(session.queued.count)),
            ("inflightCount", .number(session.inflight.count)),
            ("inflightPacketIds", .array(session.inflight.map { .number($0.packetIdentifier) })),
            ("inboundQoS2PacketIds", .array(session.inboundQoS2Unreleased.map { .number($0) })),
            ("windowSize", .number(session.windowSize)),
            ("inflightCountMax", .number(session.inflightCountMax)),
            ("nextPacketId", .number(session.nextPacketIdentifier)),
            ("droppedCount", .number(session.droppedCount)),
            ("maximumPacketSize", JSON.optional(session.maximumPacketSize) { .number($0) }),
        ]
        return .object(members)
    }

    static func human(_ session: SessionSummary) -> String {
        let state = session.connection.map { "connected (\($0))" } ?? "detached"
        let expiry =
            session.expiryIntervalSeconds == UInt32.max ? "never expires" : "expiry \(session.expiryIntervalSeconds) s"
        var lines = [
            "\(session.clientIdentifier.debugDescription)  \(state)  MQTT \(session.protocolVersion)  \(expiry)"
        ]
        if let deadline = session.expiryDeadlineMillis {
            lines.append("  expires at \(Render.iso8601(millis: deadline))")
        }
        if let will = session.will { lines.append("  will " + Render.inline(Render.will(will))) }
        if let pending = session.pendingWill {
            lines.append(
                "  pending will due \(Render.iso8601(millis: pending.deadlineMillis)) "
                    + Render.inline(Render.will(pending.will)))
        }
        for subscription in session.subscriptions {
            var fields = Render.subscriptionOptions(subscription.options)
            if let identifier = subscription.subscriptionIdentifier {
                fields.append(("subscriptionId", .number(identifier)))
            }
            lines.append("  subscription \(subscription.filter.debugDescription)  " + Render.fields(fields))
        }
        let ids = session.inflight.map { String($0.packetIdentifier) }.joined(separator: ",")
        let inbound = session.inboundQoS2Unreleased.map(String.init).joined(separator: ",")
        lines.append(
            "  queued \(session.queued.count)  in-flight \(session.inflight.count) [\(ids)]  inbound QoS 2 [\(inbound)]"
                + "  window \(session.windowSize)  dropped \(session.droppedCount)")
        return lines.joined(separator: "\n")
    }
}

struct InflightCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inflight",
        abstract: "Per client, the outbound in-flight messages (packet id, state, topic, QoS) and inbound QoS 2 ids.")

    @OptionGroup var store: StoreOptions

    @OptionGroup var source: RowSource

    @Argument(help: "Show only this client (after DIR).")
    var client: String?

    func run() throws {
        let nodeStore = try store.open()
        var lister = RowLister(store: store, arrayName: "clients")
        try lister.run("in-flight messages") { lister in
            try forEachSession(nodeStore, source, client: client, &lister) { session, lister in
                guard client != nil || !session.inflight.isEmpty || !session.inboundQoS2Unreleased.isEmpty else {
                    return
                }
                let entries: [JSON] = session.inflight.map { inflight in
                    var fields: [(String, JSON)] = [
                        ("packetId", .number(inflight.packetIdentifier)), ("state", .string(inflight.state.rawValue)),
                    ]
                    if let message = inflight.message {
                        fields += [
                            ("topic", .string(message.topicName)), ("qos", Render.qos(inflight.qos ?? message.qos)),
                        ]
                        fields.append(("payload", Render.payload(message.payload)))
                    } else {
                        fields.append(("qos", .number(2)))
                    }
                    fields.append(("resendPending", .bool(inflight.resendPending)))
                    return .object(fields)
                }
                let document = JSON.object([
                    ("clientId", .string(session.clientIdentifier)), ("connected", .bool(session.isConnected)),
                    ("inflight", .array(entries)),
                    ("inboundQoS2PacketIds", .array(session.inboundQoS2Unreleased.map { .number($0) })),
                ])
                lister.emit(document) {
                    var lines = [
                        "\(session.clientIdentifier.debugDescription)  \(session.isConnected ? "connected" : "detached")"
                            + "  in-flight \(session.inflight.count)  inbound QoS 2 ["
                            + session.inboundQoS2Unreleased.map(String.init).joined(separator: ",") + "]"
                    ]
                    for entry in entries {
                        guard case .object(let fields) = entry else { continue }
                        lines.append("  " + Render.fields(fields))
                    }
                    return lines.joined(separator: "\n")
                }
            }
        }
        if let client, lister.count == 0 {
            throw store.fail("no session for client \(client.debugDescription) in \(nodeStore.dataFile)")
        }
    }
}

/// Each decoded session (or just `client`'s), damaged rows reported to the lister.
func forEachSession(
    _ nodeStore: NodeStore, _ source: RowSource, client: String?, _ lister: inout RowLister,
    _ body: (SessionSummary, inout RowLister) -> Void
) throws {
    try source.forEach(nodeStore, .sessions, key: client.map { RowKey.key($0.utf8) }, &lister) { row, lister in
        do {
            body(try SessionSummary.decode(key: row.key, value: row.value), &lister)
        } catch {
            lister.damaged(table: "sessions", key: row.key, error: error)
        }
    }
}

/// `users` and `acl` read the SQLite admin database (DIR/admin.sqlite), whose API has no
/// read-only open yet: `AdminDatabase.open` creates the file and applies migrations, which
/// foxdump must never do. Until it has one, both say so and exit with status 3.
enum AdminNotAvailable {
    /// Opens DIR/admin.sqlite read-only, or prints why not and exits non-zero.
    static func open(_ store: StoreOptions) throws -> AdminDatabase {
        do {
            return try AdminDatabase.openReadOnly(path: AdminDatabase.path(inDirectory: store.directory))
        } catch {
            throw store.fail("\(error)")
        }
    }
}

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Users of the admin database (DIR/admin.sqlite), read-only.")

    @OptionGroup var store: StoreOptions

    func run() throws {
        let database = try AdminNotAvailable.open(store)
        let users: [AdminUser]
        do { users = try database.users() } catch { throw store.fail("\(error)") }
        if store.json {
            Output.line(
                JSON.object([
                    (
                        "users",
                        .array(
                            users.map { user in
                                .object([
                                    ("name", .string(user.name)), ("created", .string(user.createdAt)),
                                    (
                                        "hashAlgorithm",
                                        .string(String(user.passwordHash.split(separator: "$").first ?? ""))
                                    ),
                                ])
                            })
                    )
                ]).serialized())
        } else {
            Output.line("\(users.count) users in \(database.path)")
            for user in users { Output.line("  \(user.name)  (since \(user.createdAt))") }
        }
    }
}

struct AclCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl", abstract: "Access rules of the admin database (DIR/admin.sqlite), read-only.")

    @OptionGroup var store: StoreOptions

    func run() throws {
        let database = try AdminNotAvailable.open(store)
        let rules: [AccessRule]
        do { rules = try database.rules() } catch { throw store.fail("\(error)") }
        if store.json {
            Output.line(
                JSON.object([
                    ("rules", .array(rules.map { .object([("id", .number($0.id)), ("rule", .string($0.statement))]) }))
                ]).serialized())
        } else {
            Output.line(
                rules.isEmpty
                    ? "no access rules in \(database.path): everything is allowed"
                    : "\(rules.count) access rules in \(database.path), first match decides:")
            for rule in rules { Output.line("  \(rule.description)") }
        }
    }
}
