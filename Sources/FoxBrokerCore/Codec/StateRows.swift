import Crypto
import FoxMQTT
import NIOCore

/// The broker state as rows, the unit of checkpoints, snapshots, foxdump and the state digest.
///
/// | table | key | value |
/// |---|---|---|
/// | sessions | client identifier (UTF-8 bytes) | the session: connection, will, pending will, sorted subscriptions, in-flight (in order), queue, inbound QoS 2 identifiers (sorted) |
/// | retained | topic name (UTF-8 bytes) | the message |
/// | cursors | share name, 0x00, filter | the shared group's round-robin cursor |
/// | meta (`state` key) | | applied log index, ordered clock, limits |
///
/// Every value starts with the format version and ends with a CRC-32C of what precedes it.
/// The topic tree, the connection owners, the detached set and the deadline index are derived
/// from these rows at load; nothing else is state.
public enum StateRowFormat {
    /// The format this build writes and reads. A newer one is refused, never guessed at.
    public static let version: UInt8 = 1

    static func seal(_ body: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(version)
        body(&buffer)
        buffer.writeInteger(CRC32C.checksum(buffer))
        return buffer
    }

    /// Checks version and checksum; returns a reader over the body.
    static func open(_ value: ByteBuffer, _ what: String) throws(RecordDecodeError) -> CanonicalReader {
        guard value.readableBytes >= 5 else {
            throw RecordDecodeError(what, "\(value.readableBytes) bytes is too short")
        }
        let body = try CRC32C.verifiedBody(value, what)
        let found = body.getInteger(at: body.readerIndex, as: UInt8.self)!
        guard found <= version else {
            throw RecordDecodeError(
                what, "format version \(found) is newer than this foxmq reads (\(version)); upgrade foxmq")
        }
        guard found == version else { throw RecordDecodeError(what, "format version \(found) is unknown") }
        return CanonicalReader(body.getSlice(at: body.readerIndex + 1, length: body.readableBytes - 1)!)
    }
}

/// The key of a row named by a client identifier, a topic or a share name and filter. LMDB
/// keys hold at most 511 bytes and those names up to 65,535: a name of 400 bytes or more is
/// keyed by its first 368 bytes and its SHA-256 (exactly 400 bytes), a shorter one by itself
/// (at most 399), so the two kinds of keys never meet. The whole name is in the row's value,
/// checked against the key at load (so a damaged key is found too).
public enum RowKey {
    static let hashedKeyBytes = 400

    public static func key(_ name: some Collection<UInt8>) -> [UInt8] {
        let bytes = Array(name)
        guard bytes.count >= hashedKeyBytes else { return bytes }
        return Array(bytes.prefix(hashedKeyBytes - 32)) + Array(SHA256.hash(data: bytes))
    }

    static func check(_ name: some Collection<UInt8>, against key: some Collection<UInt8>, _ what: String)
        throws(RecordDecodeError)
    {
        guard Self.key(name).elementsEqual(key) else {
            throw RecordDecodeError(what, "the name in the row does not belong to the row's key")
        }
    }
}

/// One row to write (a nil value deletes the key).
public struct StateRow: Sendable {
    public var key: [UInt8]
    public var value: ByteBuffer?

    public init(key: [UInt8], value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// The rows that changed since the last checkpoint, and the meta row of the applied index
/// they reflect: written in the same transaction as the log records up to that index.
public struct StateCheckpoint: Sendable {
    public var appliedIndex: UInt64
    public var meta: ByteBuffer
    public var sessions: [StateRow]
    public var retained: [StateRow]
    /// Every cursor (there are few): the table is replaced whole.
    public var cursors: [StateRow]
}

/// The applied index, ordered clock and limits, decoded from the meta row.
public struct StateMeta: Sendable, Equatable {
    public var appliedIndex: UInt64
    public var nowMillis: UInt64
    public var limits: BrokerLimits
    /// The ordered users and access rules; a meta row written before they were ordered has
    /// none (it ends after the limits).
    public var admin: OrderedAdmin

    public init(appliedIndex: UInt64, nowMillis: UInt64, limits: BrokerLimits, admin: OrderedAdmin = OrderedAdmin()) {
        self.appliedIndex = appliedIndex
        self.nowMillis = nowMillis
        self.limits = limits
        self.admin = admin
    }

    public var encoded: ByteBuffer {
        StateRowFormat.seal { buffer in
            buffer.writeInteger(appliedIndex)
            buffer.writeInteger(nowMillis)
            buffer.writeLimits(limits)
            // Written only once something was ordered: the rows of a node without admin
            // entries (every single node) keep the bytes, and the digests, they had.
            if admin != OrderedAdmin() { buffer.writeOrderedAdmin(admin) }
        }
    }

    public static func decode(_ value: ByteBuffer) throws(RecordDecodeError) -> StateMeta {
        var reader = try StateRowFormat.open(value, "meta.state")
        var meta = StateMeta(
            appliedIndex: try reader.integer("meta.appliedIndex"), nowMillis: try reader.integer("meta.nowMillis"),
            limits: try reader.limits("meta.limits"))
        if reader.buffer.readableBytes > 0 { meta.admin = try reader.orderedAdmin("meta.admin") }
        try reader.expectEnd("meta.state")
        return meta
    }
}

extension BrokerState {
    // MARK: Rows out

    /// The rows changed since the previous call, for a checkpoint at `appliedIndex` (the index
    /// of the last event applied). Call under the orderer's lock, right after that event.
    public func takeCheckpoint(appliedIndex: UInt64) -> StateCheckpoint {
        let sessionRows = sessions.takeChanged().map { clientIdentifier in
            StateRow(key: RowKey.key(clientIdentifier.value.utf8), value: sessionRow(clientIdentifier))
        }
        let retainedRows = retained.takeChanged().map { topic in
            StateRow(key: RowKey.key(topic.value.utf8), value: retained.message(at: topic.value).map(Self.retainedRow))
        }
        return StateCheckpoint(
            appliedIndex: appliedIndex, meta: meta(appliedIndex: appliedIndex).encoded,
            sessions: sessionRows, retained: retainedRows, cursors: cursorRows())
    }

    public func meta(appliedIndex: UInt64) -> StateMeta {
        StateMeta(appliedIndex: appliedIndex, nowMillis: nowMillis, limits: limits, admin: admin)
    }

    /// Every row, each table sorted by key: a full checkpoint and the digest's input.
    public func allRows() -> (sessions: [StateRow], retained: [StateRow], cursors: [StateRow]) {
        let sessionRows = sessions.sortedKeys.map {
            StateRow(key: RowKey.key($0.value.utf8), value: sessionRow($0))
        }
        let retainedRows = retained.all().map {
            StateRow(key: RowKey.key($0.topicName.utf8), value: Self.retainedRow($0))
        }
        return (sessionRows, retainedRows, cursorRows())
    }

    /// SHA-256 over the meta row and every row in table and name order: equal states, equal
    /// digests, whatever the insertion history (the rows are canonical, hash order never
    /// reaches them).
    public func stateDigest(appliedIndex: UInt64) -> SHA256.Digest {
        var hasher = SHA256()
        func feed(_ table: String, _ rows: [StateRow]) {
            hasher.update(data: Array(table.utf8))
            for row in rows {
                var length = UInt32(row.key.count).bigEndian
                withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
                hasher.update(data: row.key)
                if let value = row.value { value.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
            }
        }
        meta(appliedIndex: appliedIndex).encoded.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        let rows = allRows()
        feed("sessions", rows.sessions)
        feed("retained", rows.retained)
        feed("cursors", rows.cursors)
        return hasher.finalize()
    }

    private func cursorRows() -> [StateRow] {
        topicTree.sharedGroupCursors().map { group in
            StateRow(
                key: RowKey.key(Array(group.shareName.value.utf8) + [0] + Array(group.filter.utf8)),
                value: StateRowFormat.seal { buffer in
                    buffer.writeLengthPrefixed(group.shareName.value)
                    buffer.writeLengthPrefixed(group.filter)
                    buffer.writeInteger(UInt32(clamping: group.cursor))
                })
        }
    }

    static func retainedRow(_ message: ApplicationMessage) -> ByteBuffer {
        StateRowFormat.seal { $0.writeApplicationMessage(message) }
    }

    func sessionRow(_ clientIdentifier: ExactString) -> ByteBuffer? {
        guard let session = sessions[clientIdentifier] else { return nil }
        return StateRowFormat.seal { buffer in
            buffer.writeLengthPrefixed(session.clientIdentifier)
            buffer.writeOptional(session.connection) { $0.writeConnectionID($1) }
            buffer.writeInteger(session.protocolVersion.rawValue)
            buffer.writeInteger(session.expiryIntervalSeconds)
            buffer.writeOptional(session.will) { $0.writeWill($1) }
            buffer.writeOptional(session.pendingWill) { buffer, pending in
                buffer.writeWill(pending.will)
                buffer.writeInteger(pending.protocolVersion.rawValue)
                buffer.writeInteger(pending.deadlineMillis)
            }
            buffer.writeOptional(session.disconnectedAtMillis) { $0.writeInteger($1) }
            let filters = session.subscriptions.keys.sorted()
            buffer.writeInteger(UInt32(filters.count))
            for filter in filters {
                let entry = session.subscriptions[filter]!
                buffer.writeLengthPrefixed(filter.value)
                buffer.writeSubscriptionOptions(entry.options)
                buffer.writeOptional(entry.subscriptionIdentifier) { $0.writeInteger($1) }
            }
            let outbound = session.outbound
            buffer.writeInteger(UInt32(outbound.inflight.count))
            for (packetIdentifier, state) in outbound.inflight {
                buffer.writeInteger(packetIdentifier)
                switch state {
                case .awaitingAcknowledgement(let queued):
                    buffer.writeInteger(0 as UInt8)
                    buffer.writeQueued(queued)
                case .awaitingComplete:
                    buffer.writeInteger(1 as UInt8)
                }
            }
            buffer.writeInteger(UInt32(outbound.queue.count))
            for queued in outbound.queue { buffer.writeQueued(queued) }
            buffer.writeInteger(UInt32(outbound.resendPending.count))
            for packetIdentifier in outbound.resendPending { buffer.writeInteger(packetIdentifier) }
            buffer.writeInteger(outbound.nextPacketIdentifier)
            buffer.writeInteger(UInt32(outbound.windowSize))
            buffer.writeInteger(UInt32(outbound.inflightCountMax))
            buffer.writeInteger(outbound.droppedCount)
            buffer.writeOptional(session.maximumPacketSize) { $0.writeInteger($1) }
            let unreleased = session.inboundQoS2Unreleased.sorted()
            buffer.writeInteger(UInt32(unreleased.count))
            for packetIdentifier in unreleased { buffer.writeInteger(packetIdentifier) }
        }
    }

    // MARK: Rows in

    /// A broker state made from rows (sessions, retained, cursors in any order) and the meta
    /// row. The derived indexes (topic tree, connection owners, detached sessions, deadlines)
    /// are rebuilt; the result applies the log after `meta.appliedIndex` exactly as the state
    /// that wrote the rows did.
    public static func load(
        meta: StateMeta, sessions sessionRows: some Sequence<(key: [UInt8], value: ByteBuffer)>,
        retained retainedRows: some Sequence<(key: [UInt8], value: ByteBuffer)>,
        cursors cursorRows: some Sequence<(key: [UInt8], value: ByteBuffer)>
    ) throws(StateLoadError) -> BrokerState {
        let state = BrokerState(limits: meta.limits)
        state.nowMillis = meta.nowMillis
        state.admin = meta.admin
        for (key, value) in sessionRows {
            do {
                state.install(try Session.decodeRow(value, key: key))
            } catch {
                throw StateLoadError(table: "sessions", key: String(decoding: key, as: UTF8.self), error: error)
            }
        }
        for (key, value) in retainedRows {
            do {
                var reader = try StateRowFormat.open(value, "retained")
                let message = try reader.applicationMessage("retained.message")
                try reader.expectEnd("retained")
                try RowKey.check(message.topicName.utf8, against: key, "retained.topicName")
                state.retained.store(message)
            } catch {
                throw StateLoadError(table: "retained", key: String(decoding: key, as: UTF8.self), error: error)
            }
        }
        for (key, value) in cursorRows {
            do {
                let row = try CursorRow.decode(key: key, value: value)
                guard
                    state.topicTree.setCursor(
                        shareName: ExactString(row.shareName), filter: row.filter, cursor: Int(row.cursor))
                else { throw RecordDecodeError("cursor", "no shared group \(row.shareName) on \(row.filter)") }
            } catch {
                throw StateLoadError(table: "cursors", key: String(decoding: key, as: UTF8.self), error: error)
            }
        }
        state.rebuildDeadlines()
        // Loaded rows are what the store holds: nothing to write at the next checkpoint.
        _ = state.sessions.takeChanged()
        _ = state.retained.takeChanged()
        return state
    }

    /// Puts a decoded session in the table with everything derived from it.
    private func install(_ session: Session) {
        let clientIdentifier = ExactString(session.clientIdentifier)
        for (filter, entry) in session.subscriptions.sorted(by: { $0.key < $1.key }) {
            let shared = Topic.parseShared(filter.value)
            topicTree.insert(
                filter: shared?.filter ?? filter.value, shareName: shared.map { ExactString($0.shareName) },
                clientIdentifier: clientIdentifier, entry: entry)
        }
        if let connection = session.connection {
            connectionOwners[connection] = clientIdentifier
        } else {
            detachedSessions.insert(clientIdentifier)
        }
        sessions[clientIdentifier] = session
    }
}

/// A row that does not decode: the table and key, and what is wrong.
public struct StateLoadError: Error, CustomStringConvertible {
    public var table: String
    public var key: String
    public var error: any Error

    public var description: String { "table \(table), key \(key.debugDescription): \(error)" }
}

/// A shared group's cursor row: share name, filter, cursor.
public struct CursorRow: Sendable, Equatable {
    public var shareName: String
    public var filter: String
    public var cursor: UInt32

    public static func decode(key: some Collection<UInt8>, value: ByteBuffer) throws(RecordDecodeError) -> CursorRow {
        var reader = try StateRowFormat.open(value, "cursor")
        let row = CursorRow(
            shareName: try reader.string("cursor.shareName"), filter: try reader.string("cursor.filter"),
            cursor: try reader.integer("cursor", as: UInt32.self))
        try reader.expectEnd("cursor")
        try RowKey.check(Array(row.shareName.utf8) + [0] + Array(row.filter.utf8), against: key, "cursor.name")
        return row
    }
}

extension Session {
    /// Decodes a session row; with `key`, checks that the row's client identifier belongs to it.
    static func decodeRow(_ value: ByteBuffer, key: [UInt8]? = nil) throws(RecordDecodeError) -> Session {
        var reader = try StateRowFormat.open(value, "session")
        let clientIdentifier = try reader.string("session.clientIdentifier")
        if let key { try RowKey.check(clientIdentifier.utf8, against: key, "session.clientIdentifier") }
        let connection = try reader.optional("session.connection") { (reader) throws(RecordDecodeError) in
            try reader.connectionID("session.connection")
        }
        let version = try reader.protocolVersion("session.protocolVersion")
        let expiry = try reader.integer("session.expiryInterval", as: UInt32.self)
        let will = try reader.optional("session.will") { (reader) throws(RecordDecodeError) in
            try reader.will("session.will")
        }
        let pendingWill = try reader.optional("session.pendingWill") { (reader) throws(RecordDecodeError) in
            PendingWill(
                will: try reader.will("session.pendingWill.will"),
                protocolVersion: try reader.protocolVersion("session.pendingWill.protocolVersion"),
                deadlineMillis: try reader.integer("session.pendingWill.deadline"))
        }
        let disconnectedAt = try reader.optional("session.disconnectedAt") { (reader) throws(RecordDecodeError) in
            try reader.integer("session.disconnectedAt", as: UInt64.self)
        }
        var subscriptions: [ExactString: SubscriptionEntry] = [:]
        for _ in 0..<(try reader.count("session.subscriptions", elementSizeMin: 7)) {
            let filter = try reader.string("session.subscriptions.filter")
            let options = try reader.subscriptionOptions("session.subscriptions.options")
            let identifier = try reader.optional("session.subscriptions.identifier") {
                (reader) throws(RecordDecodeError) in
                try reader.integer("session.subscriptions.identifier", as: UInt32.self)
            }
            subscriptions[ExactString(filter)] = SubscriptionEntry(options: options, subscriptionIdentifier: identifier)
        }
        var inflight: [(UInt16, OutboundFlow.InflightState)] = []
        for _ in 0..<(try reader.count("session.inflight", elementSizeMin: 3)) {
            let packetIdentifier = try reader.integer("session.inflight.packetIdentifier", as: UInt16.self)
            switch try reader.integer("session.inflight.state", as: UInt8.self) {
            case 0: inflight.append((packetIdentifier, .awaitingAcknowledgement(try reader.queued("session.inflight"))))
            case 1: inflight.append((packetIdentifier, .awaitingComplete))
            case let other: throw RecordDecodeError("session.inflight.state", "unknown state \(other)")
            }
        }
        var queue: [OutboundFlow.Queued] = []
        for _ in 0..<(try reader.count("session.queue", elementSizeMin: 20)) {
            queue.append(try reader.queued("session.queue"))
        }
        var resendPending: [UInt16] = []
        for _ in 0..<(try reader.count("session.resendPending", elementSizeMin: 2)) {
            resendPending.append(try reader.integer("session.resendPending"))
        }
        let nextPacketIdentifier = try reader.integer("session.nextPacketIdentifier", as: UInt16.self)
        let windowSize = Int(try reader.integer("session.windowSize", as: UInt32.self))
        let inflightCountMax = Int(try reader.integer("session.inflightCountMax", as: UInt32.self))
        let dropped = try reader.integer("session.droppedCount", as: UInt64.self)
        let maximumPacketSize = try reader.optional("session.maximumPacketSize") { (reader) throws(RecordDecodeError) in
            try reader.integer("session.maximumPacketSize", as: UInt32.self)
        }
        var unreleased: Set<UInt16> = []
        for _ in 0..<(try reader.count("session.inboundQoS2Unreleased", elementSizeMin: 2)) {
            unreleased.insert(try reader.integer("session.inboundQoS2Unreleased"))
        }
        try reader.expectEnd("session")
        guard inflightCountMax >= 1 && inflightCountMax <= Int(UInt16.max), nextPacketIdentifier != 0,
            inflight.count <= Int(UInt16.max)
        else { throw RecordDecodeError("session.outbound", "window, identifiers or in-flight count out of range") }

        var session = Session(
            clientIdentifier: clientIdentifier, protocolVersion: version, expiryIntervalSeconds: expiry,
            inflightCountMax: inflightCountMax)
        session.connection = connection
        session.will = will
        session.pendingWill = pendingWill
        session.disconnectedAtMillis = disconnectedAt
        session.subscriptions = subscriptions
        for (packetIdentifier, state) in inflight { session.outbound.inflight[packetIdentifier] = state }
        session.outbound.queue.append(contentsOf: queue)
        session.outbound.resendPending.append(contentsOf: resendPending)
        session.outbound.nextPacketIdentifier = nextPacketIdentifier
        session.outbound.windowSize = windowSize
        session.outbound.droppedCount = dropped
        session.maximumPacketSize = maximumPacketSize
        session.inboundQoS2Unreleased = unreleased
        return session
    }
}

extension ByteBuffer {
    mutating func writeSubscriptionOptions(_ options: SubscriptionOptions) {
        writeInteger(options.qos.rawValue)
        writeFlag(options.noLocal)
        writeFlag(options.retainAsPublished)
        writeInteger(options.retainHandling.rawValue)
    }

    mutating func writeApplicationMessage(_ message: ApplicationMessage) {
        writeLengthPrefixed(message.topicName)
        writeLengthPrefixed(message.payload)
        writeInteger(message.qos.rawValue)
        writeFlag(message.retain)
        writeProperties(message.properties)
        writeOptional(message.expiryDeadlineMillis) { $0.writeInteger($1) }
        writeOptional(message.originClientIdentifier) { $0.writeLengthPrefixed($1.value) }
    }

    mutating func writeQueued(_ queued: OutboundFlow.Queued) {
        writeApplicationMessage(queued.message)
        writeInteger(queued.qos.rawValue)
        writeFlag(queued.retain)
        writeInteger(UInt32(queued.subscriptionIdentifiers.count))
        for identifier in queued.subscriptionIdentifiers { writeInteger(identifier) }
    }
}

extension CanonicalReader {
    mutating func subscriptionOptions(_ field: @autoclosure () -> String) throws(RecordDecodeError)
        -> SubscriptionOptions
    {
        let qos = try qos(field() + ".qos")
        let noLocal = try flag(field() + ".noLocal")
        let retainAsPublished = try flag(field() + ".retainAsPublished")
        let raw = try integer(field() + ".retainHandling", as: UInt8.self)
        guard let retainHandling = RetainHandling(rawValue: raw) else {
            throw RecordDecodeError(field() + ".retainHandling", "unknown value \(raw)")
        }
        return SubscriptionOptions(
            qos: qos, noLocal: noLocal, retainAsPublished: retainAsPublished, retainHandling: retainHandling)
    }

    mutating func applicationMessage(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> ApplicationMessage
    {
        ApplicationMessage(
            topicName: try string(field() + ".topicName"), payload: try bytes(field() + ".payload"),
            qos: try qos(field() + ".qos"), retain: try flag(field() + ".retain"),
            properties: try properties(field() + ".properties", context: .publish),
            expiryDeadlineMillis: try optional(field() + ".expiry") { (reader) throws(RecordDecodeError) in
                try reader.integer(field() + ".expiry", as: UInt64.self)
            },
            originClientIdentifier: try optional(field() + ".origin") { (reader) throws(RecordDecodeError) in
                ExactString(try reader.string(field() + ".origin"))
            })
    }

    mutating func queued(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> OutboundFlow.Queued {
        let message = try applicationMessage(field() + ".message")
        let qos = try qos(field() + ".qos")
        let retain = try flag(field() + ".retain")
        var identifiers: [UInt32] = []
        for _ in 0..<(try count(field() + ".subscriptionIdentifiers", elementSizeMin: 4)) {
            identifiers.append(try integer(field() + ".subscriptionIdentifiers"))
        }
        return OutboundFlow.Queued(message: message, qos: qos, retain: retain, subscriptionIdentifiers: identifiers)
    }
}
