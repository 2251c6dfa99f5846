import FoxMQTT
import NIOCore

@testable import FoxBrokerCore
@testable import FoxStore

/// `records`: the store's canonical codecs (Sources/FoxBrokerCore/Codec), which recovery, state
/// transfer, snapshots and foxdump read back from disk or from a peer. A decode error must be a
/// thrown `RecordDecodeError`, never a trap; what decodes is encoded again and that decodes to
/// the same value and the same bytes.
///
/// Input: a selector byte, a mode byte (bit 0 set: the value carries its own CRC-32C; clear: the
/// harness appends the right one, so that the fuzzer reaches past the checksum), the value.
///
/// - 0: a log event (`BrokerEvent.decode`).
/// - 1: a log record (8-byte key, then the value: `LogRecord.decode`, `decodeEvent`), which must
///   be exactly the record `LogRecord.encode` writes for its fields.
/// - 2: the meta row (`StateMeta.decode`).
/// - 3: a session row (`Session.decodeRow`, foxdump's `SessionSummary.decode`).
/// - 4: a retained row (`RetainedRow.decode`).
/// - 5: a shared group's cursor row (`CursorRow.decode`, foxdump's `CursorSummary.decode`).
/// - 6: the cluster's copy of the users and rules in admin.sqlite (`ClusterBaseJSON`, JSON).
///
/// The rows of 3-5 are read once without their key, then with the key their name gives (which
/// must succeed) and with another key (which must fail).
let recordsHarness = Harness(
    name: "records", summary: "log records, events and state rows (canonical codec, CRC), decode-encode-decode",
    run: fuzzRecords, seeds: recordsSeeds)

@Sendable func fuzzRecords(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let selector = input.byte() % 7
    let ownChecksum = input.byte() & 1 == 1
    func value(_ body: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer(bytes: body)
        if !ownChecksum { buffer.writeInteger(CRC32C.checksum(body)) }
        return buffer
    }
    switch selector {
    case 0:
        guard let event = try? BrokerEvent.decode(ByteBuffer(bytes: input.rest())) else { return }
        checkEventRoundTrip(event)
    case 1:
        let key = input.take(8)
        checkLogRecord(key: key, value: value(input.rest()))
    case 2:
        guard let meta = try? StateMeta.decode(value(input.rest())) else { return }
        let encoded = meta.encoded
        guard let again = try? StateMeta.decode(encoded) else { fatalError("records: \(meta) encodes to garbage") }
        require(again == meta, "records: the meta row \(meta) came back as \(again)")
        require(again.encoded == encoded, "records: the meta row \(meta) is not encoded canonically")
    case 3:
        checkSessionRow(value(input.rest()))
    case 4:
        checkRetainedRow(value(input.rest()))
    case 5:
        checkCursorRow(value(input.rest()))
    default:
        guard let text = String(validating: input.rest(), as: UTF8.self), let content = ClusterBaseJSON.decode(text)
        else { return }
        guard let encoded = try? ClusterBaseJSON.encode(content), let again = ClusterBaseJSON.decode(encoded) else {
            fatalError("records: the cluster admin base \(content) does not encode to JSON that decodes")
        }
        require(again == content, "records: the cluster admin base \(content) came back as \(again)")
    }
}

func checkEventRoundTrip(_ event: BrokerEvent) {
    let encoded = event.encoded
    guard let again = try? BrokerEvent.decode(encoded) else {
        fatalError("records: \(event) encodes to bytes that do not decode")
    }
    require(again == event, "records: round trip changed \(event) into \(again)")
    require(again.encoded == encoded, "records: \(event) is not encoded canonically")
}

private func checkLogRecord(key: [UInt8], value: ByteBuffer) {
    guard let record = try? LogRecord.decode(key: key, value: value, previousChain: nil) else { return }
    require(LogRecord.index(ofKey: key) == record.index, "records: the record's index is not its key's")
    // Strict: the value is exactly what `encode` writes for these fields after the chain that
    // gives this chain hash.
    var canonical = ByteBuffer()
    canonical.writeInteger(LogRecord.formatVersion)
    canonical.writeInteger(record.timeMillis)
    canonical.writeInteger(UInt32(record.event.readableBytes))
    canonical.writeImmutableBuffer(record.event)
    canonical.writeBytes(record.chain)
    canonical.writeInteger(CRC32C.checksum(canonical))
    require(canonical == value, "records: a log record that is not in its canonical form decoded")
    // Re-encoded after the genesis chain, it decodes with that chain checked.
    let (encoded, chain) = LogRecord.encode(
        index: record.index, timeMillis: record.timeMillis, event: record.event, previousChain: LogRecord.genesisChain)
    guard let again = try? LogRecord.decode(key: key, value: encoded, previousChain: LogRecord.genesisChain) else {
        fatalError("records: log record \(record.index) re-encodes to bytes that do not decode")
    }
    require(
        again.index == record.index && again.timeMillis == record.timeMillis && again.event == record.event
            && again.chain == chain, "records: log record \(record.index) changed in the round trip")
    // A record whose chain does not follow is refused.
    var otherChain = LogRecord.genesisChain
    otherChain[0] = 1
    require(
        (try? LogRecord.decode(key: key, value: encoded, previousChain: otherChain)) == nil,
        "records: a broken hash chain was not noticed")
    if let event = try? record.decodeEvent() { checkEventRoundTrip(event) }
}

private func checkSessionRow(_ value: ByteBuffer) {
    guard let session = try? Session.decodeRow(value) else { return }
    let clientIdentifier = ExactString(session.clientIdentifier)
    let key = RowKey.key(session.clientIdentifier.utf8)
    let encoded = sessionRow(session)
    guard let again = try? Session.decodeRow(encoded, key: key) else {
        fatalError("records: the session row of \(clientIdentifier) re-encodes to bytes that do not decode")
    }
    require(sessionRow(again) == encoded, "records: the session row of \(clientIdentifier) is not canonical")
    guard let summary = try? SessionSummary.decode(key: key, value: value) else {
        fatalError("records: foxdump cannot read the session row of \(clientIdentifier) that recovery reads")
    }
    require(summary.clientIdentifier == session.clientIdentifier, "records: foxdump reads another session")
    require(
        (try? SessionSummary.decode(key: key + [0], value: value)) == nil,
        "records: a session row was read under another client's key")
}

/// The row the broker writes for `session`.
private func sessionRow(_ session: Session) -> ByteBuffer {
    let state = BrokerState()
    let clientIdentifier = ExactString(session.clientIdentifier)
    state.sessions[clientIdentifier] = session
    guard let row = state.sessionRow(clientIdentifier) else { fatalError("records: no row for a stored session") }
    return row
}

private func checkRetainedRow(_ value: ByteBuffer) {
    guard var reader = try? StateRowFormat.open(value, "retained"),
        let message = try? reader.applicationMessage("retained.message"), (try? reader.expectEnd("retained")) != nil
    else {
        require(
            (try? RetainedRow.decode(key: [], value: value)) == nil,
            "records: foxdump reads a retained row recovery refuses")
        return
    }
    let key = RowKey.key(message.topicName.utf8)
    let encoded = BrokerState.retainedRow(message)
    guard let read = try? RetainedRow.decode(key: key, value: value),
        let again = try? RetainedRow.decode(key: key, value: encoded)
    else { fatalError("records: the retained row of \(message.topicName.debugDescription) does not read back") }
    require(BrokerState.retainedRow(read) == encoded, "records: foxdump reads another retained message")
    require(
        BrokerState.retainedRow(again) == encoded,
        "records: the retained row of \(message.topicName.debugDescription) is not canonical")
    require(
        (try? RetainedRow.decode(key: key + [0], value: value)) == nil,
        "records: a retained row was read under another topic's key")
}

private func checkCursorRow(_ value: ByteBuffer) {
    guard var reader = try? StateRowFormat.open(value, "cursor"), let shareName = try? reader.string("shareName"),
        let filter = try? reader.string("filter"), let cursor = try? reader.integer("cursor", as: UInt32.self),
        (try? reader.expectEnd("cursor")) != nil
    else {
        require((try? CursorRow.decode(key: [], value: value)) == nil, "records: a cursor row decoded unchecked")
        return
    }
    let key = RowKey.key(Array(shareName.utf8) + [0] + Array(filter.utf8))
    guard let row = try? CursorRow.decode(key: key, value: value),
        let summary = try? CursorSummary.decode(key: key, value: value)
    else { fatalError("records: the cursor row of \(shareName) on \(filter) does not read under its key") }
    require(
        row == CursorRow(shareName: shareName, filter: filter, cursor: cursor)
            && summary == CursorSummary(shareName: shareName, filter: filter, cursor: cursor),
        "records: the cursor row reads as \(row), \(summary)")
    let encoded = StateRowFormat.seal { buffer in
        buffer.writeLengthPrefixed(shareName)
        buffer.writeLengthPrefixed(filter)
        buffer.writeInteger(cursor)
    }
    require(encoded == value, "records: a cursor row that is not in its canonical form decoded")
    require(
        (try? CursorRow.decode(key: key + [0], value: value)) == nil,
        "records: a cursor row was read under another group's key")
}

// MARK: Seeds

/// A small broker history: sessions with wills and subscriptions (shared ones too), retained
/// messages, deliveries in flight and queued, admin entries. Its events and rows are the seeds.
func sampleBrokerHistory() -> (events: [BrokerEvent], state: BrokerState) {
    var limits = BrokerLimits()
    limits.inflightCountMax = 2
    let state = BrokerState(limits: limits)
    let first = ConnectionID(node: 0, incarnation: 1, local: 1)
    let second = ConnectionID(node: 0, incarnation: 1, local: 2)
    var willProperties = Properties()
    willProperties.willDelayIntervalSeconds = 10
    willProperties.contentType = "text/plain"
    let will = Will(
        topicName: "status/c1", payload: ByteBuffer(string: "offline"), qos: .atLeastOnce, retain: true,
        properties: willProperties)
    var publishProperties = Properties()
    publishProperties.messageExpiryIntervalSeconds = 600
    publishProperties.appendUserProperty(UserProperty("k", "v"))
    publishProperties.correlationData = [1, 2]
    let subscriptions = [
        TopicSubscription(topicFilter: "a/+", options: SubscriptionOptions(qos: .exactlyOnce)),
        TopicSubscription(
            topicFilter: "$share/g/b/#",
            options: SubscriptionOptions(
                qos: .atLeastOnce, noLocal: true, retainAsPublished: true, retainHandling: .sendOnNewSubscribe)),
    ]
    var subscribeProperties = Properties()
    subscribeProperties.appendSubscriptionIdentifier(5)
    let events: [BrokerEvent] = [
        .nodeStarted(node: 0, incarnation: 1),
        .configure(limits),
        .sessionOpen(
            SessionOpen(
                connection: first, clientIdentifier: "c1", protocolVersion: .v5, cleanStart: true,
                sessionExpiryIntervalSeconds: 3600, will: will, receiveMaximum: 2, maximumPacketSize: 65536)),
        .sessionOpen(
            SessionOpen(
                connection: second, clientIdentifier: "c2", protocolVersion: .v311, cleanStart: false,
                sessionExpiryIntervalSeconds: 0, will: nil, receiveMaximum: 10, maximumPacketSize: nil)),
        .subscribe(
            first, Subscribe(packetIdentifier: 1, subscriptions: subscriptions, properties: subscribeProperties),
            denied: []),
        .subscribe(second, Subscribe(packetIdentifier: 1, subscriptions: subscriptions), denied: [1]),
        .publish(
            second,
            Publish(
                topicName: "a/x", payload: ByteBuffer(string: "retained"), qos: .atLeastOnce, retain: true,
                packetIdentifier: 7, properties: publishProperties)),
        .publish(
            second, Publish(topicName: "a/y", payload: ByteBuffer(string: "1"), qos: .exactlyOnce, packetIdentifier: 8)),
        .publish(
            second, Publish(topicName: "a/z", payload: ByteBuffer(string: "2"), qos: .atLeastOnce, packetIdentifier: 9)),
        .publish(
            second, Publish(topicName: "b/q", payload: ByteBuffer(string: "3"), qos: .atLeastOnce, packetIdentifier: 10)
        ),
        .pubRec(first, packetIdentifier: 1, reasonCode: .success),
        .pubRel(second, packetIdentifier: 8),
        .pubAck(first, packetIdentifier: 2),
        .pubComp(first, packetIdentifier: 1),
        .publishDenied(second, packetIdentifier: 11, qos: .atLeastOnce),
        .unsubscribe(second, Unsubscribe(packetIdentifier: 2, topicFilters: ["a/+"])),
        .admin(AdminEntry(node: 0, sequence: 1, change: .setUser(name: "alice", passwordHash: validPHC))),
        .admin(
            AdminEntry(
                node: 0, sequence: 2,
                change: .setRules([
                    OrderedAdmin.Rule(subject: .user("alice"), publish: true, topicFilter: "a/#", allow: true),
                    OrderedAdmin.Rule(subject: .anonymous, publish: false, topicFilter: "#", allow: false),
                    OrderedAdmin.Rule(subject: .allUsers, publish: false, topicFilter: "b/+", allow: true),
                ]))),
        .admin(AdminEntry(node: 1, sequence: 1, change: .removeUser(name: "bob"))),
        .systemPublish(node: 0, topicName: "$SYS/broker/uptime", payload: ByteBuffer(string: "42")),
        .sessionClose(second, SessionClose(cause: .abnormal, sessionExpiryIntervalSeconds: 60)),
        .sessionClose(first, SessionClose(cause: .disconnectWithWill)),
        .sessionClose(second, SessionClose(cause: .willRefused)),
        .tick,
        .nodeLost(node: 1, incarnation: 3),
    ]
    var time: UInt64 = 1_000
    for event in events {
        var actions: [BrokerAction] = []
        state.apply(event, atMillis: time, into: &actions)
        time += 250
    }
    return (events, state)
}

@Sendable func recordsSeeds() -> [Seed] {
    let (events, state) = sampleBrokerHistory()
    var seeds: [Seed] = []
    /// Without the trailing CRC: the harness appends the right one (mode 0).
    func body(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView.dropLast(4)) }
    for (index, event) in events.enumerated() {
        seeds.append(Seed("event-\(index)", [0, 0] + Array(event.encoded.readableBytesView)))
    }
    var chain = LogRecord.genesisChain
    for (index, event) in events.prefix(6).enumerated() {
        let (value, next) = LogRecord.encode(
            index: UInt64(index + 1), timeMillis: 1_000 + UInt64(index), event: event.encoded, previousChain: chain)
        chain = next
        seeds.append(Seed("log-\(index)", [1, 0] + LogRecord.key(UInt64(index + 1)) + body(value)))
        if index == 0 {
            seeds.append(Seed("log-own-crc", [1, 1] + LogRecord.key(1) + Array(value.readableBytesView)))
        }
    }
    seeds.append(Seed("meta", [2, 0] + body(state.meta(appliedIndex: UInt64(events.count)).encoded)))
    seeds.append(
        Seed("meta-no-admin", [2, 0] + body(StateMeta(appliedIndex: 3, nowMillis: 9, limits: BrokerLimits()).encoded)))
    let rows = state.allRows()
    for (index, row) in rows.sessions.enumerated() {
        if let value = row.value { seeds.append(Seed("session-\(index)", [3, 0] + body(value))) }
    }
    for (index, row) in rows.retained.enumerated() {
        if let value = row.value { seeds.append(Seed("retained-\(index)", [4, 0] + body(value))) }
    }
    for (index, row) in rows.cursors.enumerated() {
        if let value = row.value { seeds.append(Seed("cursor-\(index)", [5, 0] + body(value))) }
    }
    let admin = AdminContent(
        users: ["alice": validPHC, "bob smith": validPHC],
        rules: [
            AccessRule(id: 0, subject: .user("alice"), action: .publish, topicFilter: "a/#", permission: .allow),
            AccessRule(id: 0, subject: .anonymous, action: .subscribe, topicFilter: "#", permission: .deny),
            AccessRule(id: 0, subject: .allUsers, action: .subscribe, topicFilter: "b/+", permission: .allow),
        ])
    if let json = try? ClusterBaseJSON.encode(admin) {
        seeds.append(Seed("cluster-admin-base", [6, 0] + Array(json.utf8)))
    }
    return seeds
}
