import DequeModule
import FoxMQTT
import OrderedCollections

/// The server side of an MQTT session (MQTT 5.0 §4.1): what outlives a network connection.
/// Changed only by `BrokerState.apply`, so it is the same on every node.
struct Session {
    let clientIdentifier: String
    /// The connection attached now; nil while the client is away.
    var connection: ConnectionID?
    var protocolVersion: ProtocolVersion
    var expiryIntervalSeconds: UInt32
    /// The will of the attached connection (§3.1.2.5), cleared by a normal DISCONNECT.
    var will: Will? {
        get { willBox?.value }
        set { willBox = newValue.map(Immutable.init) }
    }
    /// A will waiting for its delay after the connection ended.
    var pendingWill: PendingWill? {
        get { pendingWillBox?.value }
        set { pendingWillBox = newValue.map(Immutable.init) }
    }
    // Most sessions have no will: stored inline, the two would make every session (and every
    // slot of the session table) 130 bytes larger. The boxes are immutable, so `Session` keeps
    // value semantics.
    private var willBox: Immutable<Will>?
    private var pendingWillBox: Immutable<PendingWill>?
    /// When the client went away, on the ordered clock.
    var disconnectedAtMillis: UInt64?
    /// Filters as the client sent them (with `$share/...`), for UNSUBSCRIBE and expiry.
    var subscriptions: [ExactString: SubscriptionEntry] = [:]
    var outbound: OutboundFlow
    /// The client's Maximum Packet Size: larger messages are discarded, not sent.
    var maximumPacketSize: UInt32?
    /// Packet identifiers of inbound QoS 2 PUBLISHes delivered but not yet released (§4.3.3):
    /// a resent PUBLISH with one of them is acknowledged again, never delivered twice.
    var inboundQoS2Unreleased: Set<UInt16> = []

    init(open: SessionOpen, inflightCountMax: Int) {
        clientIdentifier = open.clientIdentifier
        protocolVersion = open.protocolVersion
        expiryIntervalSeconds = open.sessionExpiryIntervalSeconds
        outbound = OutboundFlow(inflightCountMax: inflightCountMax)
    }

    /// A session as a row restores it; the caller sets the rest.
    init(
        clientIdentifier: String, protocolVersion: ProtocolVersion, expiryIntervalSeconds: UInt32, inflightCountMax: Int
    ) {
        self.clientIdentifier = clientIdentifier
        self.protocolVersion = protocolVersion
        self.expiryIntervalSeconds = expiryIntervalSeconds
        outbound = OutboundFlow(inflightCountMax: inflightCountMax)
    }

    var isConnected: Bool { connection != nil }

    /// The deadline at which the session ends while the client is away; nil for never.
    var expiryDeadlineMillis: UInt64? {
        guard let since = disconnectedAtMillis, expiryIntervalSeconds != UInt32.max else {
            return nil
        }
        return since.millisAdding(seconds: expiryIntervalSeconds)
    }
}

/// A value stored out of line, never changed in place (a set replaces the box).
public final class Immutable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

struct PendingWill {
    var will: Will
    var protocolVersion: ProtocolVersion
    var deadlineMillis: UInt64
}

/// Outbound QoS 1/2 delivery state of one session (§4.3.2, §4.3.3, §4.9): the in-flight window
/// bounded by the client's Receive Maximum, and the queue behind it.
struct OutboundFlow {
    enum InflightState {
        /// QoS 1 waiting for PUBACK, or QoS 2 waiting for PUBREC: resent as PUBLISH with DUP.
        case awaitingAcknowledgement(Queued)
        /// QoS 2 after PUBREC, waiting for PUBCOMP: resent as PUBREL.
        case awaitingComplete
    }

    struct Queued {
        var message: ApplicationMessage
        var qos: QoS
        var retain: Bool
        var subscriptionIdentifiers: [UInt32]
    }

    /// In packet identifier allocation order, which is the order of redelivery (§4.6).
    var inflight: OrderedDictionary<UInt16, InflightState> = [:]
    var queue: Deque<Queued> = []
    /// In-flight PUBLISHes not yet resent on this connection, in order: a resumed session may
    /// hold more than the client's new Receive Maximum allows out at once (§4.9).
    var resendPending: Deque<UInt16> = []
    var nextPacketIdentifier: UInt16 = 1
    /// Messages dropped because they expired before they went out (§3.3.2.3.3), for metrics:
    /// not in the rows, so a restart starts again at 0. 32 bits, beside the packet identifier,
    /// fit the padding (`MemoryLayoutTests`).
    var expiredCount: UInt32 = 0
    /// The window: min(client's Receive Maximum, the broker's in-flight maximum).
    var windowSize: Int
    let inflightCountMax: Int
    /// Messages dropped because the queue was full, for metrics and logs.
    var droppedCount: UInt64 = 0

    init(inflightCountMax: Int) {
        self.inflightCountMax = inflightCountMax
        windowSize = inflightCountMax
    }

    mutating func setReceiveMaximum(_ receiveMaximum: UInt16) {
        windowSize = min(Int(receiveMaximum), inflightCountMax)
    }

    var hasWindow: Bool { inflight.count < windowSize }

    /// Whether one more in-flight message may go out on this connection: those waiting to be
    /// resent are not out yet. Counting every other in-flight entry (PUBREL-pending ones too)
    /// is at least as strict as the client's send quota (§4.9).
    var hasWindowForResend: Bool { inflight.count - resendPending.count < windowSize }

    /// The exchange of this packet identifier is over (acknowledged or refused).
    mutating func finish(_ packetIdentifier: UInt16) {
        inflight.removeValue(forKey: packetIdentifier)
        dropPendingResend(packetIdentifier)
    }

    /// The client answered a PUBLISH we had not resent yet (it had it from before).
    mutating func dropPendingResend(_ packetIdentifier: UInt16) {
        if let index = resendPending.firstIndex(of: packetIdentifier) { resendPending.remove(at: index) }
    }

    /// A packet identifier not in use by an in-flight message (§2.2.1).
    mutating func allocatePacketIdentifier() -> UInt16 {
        precondition(inflight.count < Int(UInt16.max), "in-flight window larger than the identifier space")
        while true {
            let candidate = nextPacketIdentifier
            nextPacketIdentifier = candidate == UInt16.max ? 1 : candidate + 1
            if inflight[candidate] == nil { return candidate }
        }
    }
}
