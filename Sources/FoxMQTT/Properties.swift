import NIOCore

/// A user property (MQTT 5.0 §3.1.2.11.8): a UTF-8 string pair that may repeat, in order.
public struct UserProperty: Hashable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The properties of an MQTT 5.0 packet (§2.2.2). Each is optional; which may appear depends on
/// the packet (see `PropertyContext`). In 3.1.1 properties are neither read nor written.
public struct Properties: Hashable, Sendable {
    public var payloadFormatIndicator: UInt8?  // 0x01
    public var messageExpiryIntervalSeconds: UInt32?  // 0x02
    public var contentType: String?  // 0x03
    public var responseTopic: String?  // 0x08
    public var correlationData: [UInt8]?  // 0x09
    /// 0x0B. One in SUBSCRIBE; a PUBLISH to a subscriber may carry several.
    public var subscriptionIdentifiers: [UInt32] = []
    public var sessionExpiryIntervalSeconds: UInt32?  // 0x11
    public var assignedClientIdentifier: String?  // 0x12
    public var serverKeepAliveSeconds: UInt16?  // 0x13
    public var authenticationMethod: String?  // 0x15
    public var authenticationData: [UInt8]?  // 0x16
    public var requestProblemInformation: UInt8?  // 0x17
    public var willDelayIntervalSeconds: UInt32?  // 0x18
    public var requestResponseInformation: UInt8?  // 0x19
    public var responseInformation: String?  // 0x1A
    public var serverReference: String?  // 0x1C
    public var reasonString: String?  // 0x1F
    public var receiveMaximum: UInt16?  // 0x21
    public var topicAliasMaximum: UInt16?  // 0x22
    public var topicAlias: UInt16?  // 0x23
    public var maximumQoS: UInt8?  // 0x24
    public var retainAvailable: UInt8?  // 0x25
    public var userProperties: [UserProperty] = []  // 0x26
    public var maximumPacketSize: UInt32?  // 0x27
    public var wildcardSubscriptionAvailable: UInt8?  // 0x28
    public var subscriptionIdentifierAvailable: UInt8?  // 0x29
    public var sharedSubscriptionAvailable: UInt8?  // 0x2A

    public init() {}

    public var isEmpty: Bool { self == Properties() }
}

/// Where a property block appears; each context allows a different set (MQTT 5.0 §2.2.2.2).
public enum PropertyContext: Sendable, Hashable {
    case connect, will, connAck, publish, pubAck, pubRec, pubRel, pubComp
    case subscribe, subAck, unsubscribe, unsubAck, disconnect, auth
}
