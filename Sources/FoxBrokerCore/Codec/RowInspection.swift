import FoxMQTT
import NIOCore

// Read-only views of the stored rows, for foxdump and store verification: every value decoded
// by the same strict codec recovery uses, handed out as plain public values. Nothing here
// builds or changes a `BrokerState`.

/// A session row, decoded.
public struct SessionSummary: Sendable {
    public struct Subscription: Sendable {
        /// The filter as the client sent it (`$share/...` included).
        public var filter: String
        public var options: SubscriptionOptions
        public var subscriptionIdentifier: UInt32?
    }

    public struct Inflight: Sendable {
        public enum State: String, Sendable {
            /// QoS 1 waiting for PUBACK, or QoS 2 waiting for PUBREC.
            case awaitingAcknowledgement
            /// QoS 2 after PUBREC, waiting for PUBCOMP.
            case awaitingComplete
        }

        public var packetIdentifier: UInt16
        public var state: State
        /// The message (nil once PUBREC came: only the identifier is kept).
        public var message: ApplicationMessage?
        /// The QoS of the delivery (nil after PUBREC, where it is 2).
        public var qos: QoS?
        /// Not yet resent on the current connection.
        public var resendPending: Bool
    }

    public struct PendingWillSummary: Sendable {
        public var will: Will
        public var deadlineMillis: UInt64
    }

    public var clientIdentifier: String
    /// The connection attached now; nil while the client is away.
    public var connection: ConnectionID?
    public var protocolVersion: ProtocolVersion
    public var expiryIntervalSeconds: UInt32
    /// When the session ends while the client is away; nil for never or while attached.
    public var expiryDeadlineMillis: UInt64?
    public var disconnectedAtMillis: UInt64?
    public var will: Will?
    public var pendingWill: PendingWillSummary?
    /// Sorted by filter bytes.
    public var subscriptions: [Subscription]
    /// In identifier allocation order (the order of redelivery).
    public var inflight: [Inflight]
    /// The queue behind the in-flight window, in order.
    public var queued: [ApplicationMessage]
    public var nextPacketIdentifier: UInt16
    public var windowSize: Int
    public var inflightCountMax: Int
    public var droppedCount: UInt64
    public var maximumPacketSize: UInt32?
    /// Inbound QoS 2 identifiers received but not yet released, sorted.
    public var inboundQoS2Unreleased: [UInt16]

    public var isConnected: Bool { connection != nil }

    /// Decodes a session row (key: the client identifier's bytes). Fails like recovery would,
    /// naming the field.
    public static func decode(key: some Collection<UInt8>, value: ByteBuffer) throws(RecordDecodeError)
        -> SessionSummary
    {
        let session = try Session.decodeRow(value, key: Array(key))
        let clientIdentifier = session.clientIdentifier
        let subscriptions = session.subscriptions.sorted { $0.key < $1.key }.map {
            Subscription(
                filter: $0.key.value, options: $0.value.options, subscriptionIdentifier: $0.value.subscriptionIdentifier
            )
        }
        let resend = Set(session.outbound.resendPending)
        let inflight = session.outbound.inflight.map { packetIdentifier, state in
            switch state {
            case .awaitingAcknowledgement(let queued):
                return Inflight(
                    packetIdentifier: packetIdentifier, state: .awaitingAcknowledgement, message: queued.message,
                    qos: queued.qos, resendPending: resend.contains(packetIdentifier))
            case .awaitingComplete:
                return Inflight(
                    packetIdentifier: packetIdentifier, state: .awaitingComplete, message: nil, qos: nil,
                    resendPending: resend.contains(packetIdentifier))
            }
        }
        return SessionSummary(
            clientIdentifier: clientIdentifier, connection: session.connection,
            protocolVersion: session.protocolVersion, expiryIntervalSeconds: session.expiryIntervalSeconds,
            expiryDeadlineMillis: session.expiryDeadlineMillis, disconnectedAtMillis: session.disconnectedAtMillis,
            will: session.will,
            pendingWill: session.pendingWill.map {
                PendingWillSummary(will: $0.will, deadlineMillis: $0.deadlineMillis)
            },
            subscriptions: subscriptions, inflight: inflight, queued: session.outbound.queue.map(\.message),
            nextPacketIdentifier: session.outbound.nextPacketIdentifier, windowSize: session.outbound.windowSize,
            inflightCountMax: session.outbound.inflightCountMax, droppedCount: session.outbound.droppedCount,
            maximumPacketSize: session.maximumPacketSize, inboundQoS2Unreleased: session.inboundQoS2Unreleased.sorted())
    }
}

/// A retained row, decoded.
public enum RetainedRow {
    /// Decodes a retained row (key: the topic name's bytes), checking that the message's topic
    /// is the key.
    public static func decode(key: some Collection<UInt8>, value: ByteBuffer) throws(RecordDecodeError)
        -> ApplicationMessage
    {
        var reader = try StateRowFormat.open(value, "retained")
        let message = try reader.applicationMessage("retained.message")
        try reader.expectEnd("retained")
        try RowKey.check(message.topicName.utf8, against: key, "retained.topicName")
        return message
    }
}

/// A shared subscription group's round-robin cursor, decoded from its row.
public struct CursorSummary: Sendable, Equatable {
    public var shareName: String
    public var filter: String
    public var cursor: UInt32

    /// Decodes a cursor row (key: share name, 0x00, filter).
    public static func decode(key: some Collection<UInt8>, value: ByteBuffer) throws(RecordDecodeError)
        -> CursorSummary
    {
        let row = try CursorRow.decode(key: key, value: value)
        return CursorSummary(shareName: row.shareName, filter: row.filter, cursor: row.cursor)
    }
}

/// The MQTT topic filter rule (§4.7) as the broker applies it, for tools that filter what they
/// print: `+` one level, a trailing `#` the parent and everything below, `$` topics not matched
/// by a leading wildcard; a `$share/NAME/` prefix is ignored.
public func topicFilter(_ filter: String, matches topicName: String) -> Bool {
    let plain = Topic.parseShared(filter)?.filter ?? filter
    return topicMatches(filter: plain, topicName: topicName)
}

extension BrokerState {
    /// `stateDigest(appliedIndex:)` as lowercase hex, for tools that print or compare it.
    public func stateDigestHex(appliedIndex: UInt64) -> String {
        stateDigest(appliedIndex: appliedIndex).map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined()
    }
}
