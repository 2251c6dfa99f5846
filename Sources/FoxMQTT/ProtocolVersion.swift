/// The protocol level byte of CONNECT (MQTT 5.0 §3.1.2.2, MQTT 3.1.1 §3.1.2.2).
public enum ProtocolVersion: UInt8, Sendable, Hashable, CustomStringConvertible {
    case v311 = 4
    case v5 = 5

    public var description: String { self == .v5 ? "5.0" : "3.1.1" }
}

/// Quality of service of a PUBLISH or a subscription (MQTT 5.0 §4.3).
public enum QoS: UInt8, Sendable, Hashable, Comparable, CustomStringConvertible {
    case atMostOnce = 0
    case atLeastOnce = 1
    case exactlyOnce = 2

    public static func < (lhs: QoS, rhs: QoS) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "QoS \(rawValue)" }
}
