import FoxBrokerCore

/// The settings of the admin database that change the broker's limits. A setting wins over the
/// command-line flag of the same name; changed on a running node (`foxmq config set`), it
/// reaches the node within a second and takes effect through an ordered `configure` event, so
/// the log says from which event on the new limit decided.
public enum BrokerSetting: String, CaseIterable, Sendable {
    case maxInflight = "max-inflight"
    case maxQueuedMessages = "max-queued-messages"
    case maxSubscriptionsPerClient = "max-subscriptions-per-client"
    case maxSessions = "max-sessions"
    case maxRetainedMessages = "max-retained-messages"
    case maxRetainedBytes = "max-retained-bytes"

    public var range: ClosedRange<Int> {
        switch self {
        case .maxInflight: 1...65_535
        case .maxQueuedMessages: 0...100_000_000
        case .maxSubscriptionsPerClient: 1...1_000_000
        case .maxSessions: 1...100_000_000
        case .maxRetainedMessages: 0...1_000_000_000
        case .maxRetainedBytes: 0...(1 << 50)
        }
    }

    public var explanation: String {
        switch self {
        case .maxInflight: "outbound QoS 1/2 messages unacknowledged per client (new sessions)"
        case .maxQueuedMessages: "messages queued per session beyond the in-flight window"
        case .maxSubscriptionsPerClient: "subscriptions one session may hold"
        case .maxSessions: "sessions (online and offline) the broker keeps"
        case .maxRetainedMessages: "retained messages kept; a new retained topic beyond it gets 0x97"
        case .maxRetainedBytes: "bytes of retained messages (topics and payloads) kept"
        }
    }

    func apply(_ value: Int, to limits: inout BrokerLimits) {
        switch self {
        case .maxInflight: limits.inflightCountMax = value
        case .maxQueuedMessages: limits.queuedMessageCountMax = value
        case .maxSubscriptionsPerClient: limits.subscriptionCountMax = value
        case .maxSessions: limits.sessionCountMax = value
        case .maxRetainedMessages: limits.retainedMessageCountMax = value
        case .maxRetainedBytes: limits.retainedBytesMax = value
        }
    }

    /// The value a text stands for, or why not.
    public func parse(_ text: String) -> Result<Int, SettingError> {
        guard let value = Int(text) else {
            return .failure(SettingError("\(rawValue): '\(text)' is not a whole number"))
        }
        guard range.contains(value) else {
            return .failure(SettingError("\(rawValue): \(value) is outside \(range.lowerBound)...\(range.upperBound)"))
        }
        return .success(value)
    }

    /// `base` with every known setting applied; unknown keys and bad values are reported and
    /// left out (the base value stays).
    public static func limits(
        _ settings: [String: String], over base: BrokerLimits
    ) -> (limits: BrokerLimits, problems: [String]) {
        var limits = base
        var problems: [String] = []
        for key in settings.keys.sorted() {
            guard let setting = BrokerSetting(rawValue: key) else {
                problems.append("unknown setting \(key) (known: \(allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            switch setting.parse(settings[key] ?? "") {
            case .success(let value): setting.apply(value, to: &limits)
            case .failure(let error): problems.append(error.message)
            }
        }
        return (limits, problems)
    }
}

public struct SettingError: Error, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
