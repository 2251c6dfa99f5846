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
///
/// A value type with copy-on-write storage: most packets carry none, and a PUBLISH is copied
/// several times on its way to each subscriber, so an empty block is one nil pointer and a full
/// one is one reference, not some thirty inline fields. Setting an absent value on an empty block
/// allocates nothing.
public struct Properties: Hashable, Sendable {
    private final class Storage: Hashable, @unchecked Sendable {
        // Mutated only while uniquely referenced (see `mutate`), so sharing is safe.
        var payloadFormatIndicator: UInt8? = nil  // 0x01
        var messageExpiryIntervalSeconds: UInt32? = nil  // 0x02
        var contentType: String? = nil  // 0x03
        var responseTopic: String? = nil  // 0x08
        var correlationData: [UInt8]? = nil  // 0x09
        var subscriptionIdentifiers: [UInt32] = []
        var sessionExpiryIntervalSeconds: UInt32? = nil  // 0x11
        var assignedClientIdentifier: String? = nil  // 0x12
        var serverKeepAliveSeconds: UInt16? = nil  // 0x13
        var authenticationMethod: String? = nil  // 0x15
        var authenticationData: [UInt8]? = nil  // 0x16
        var requestProblemInformation: UInt8? = nil  // 0x17
        var willDelayIntervalSeconds: UInt32? = nil  // 0x18
        var requestResponseInformation: UInt8? = nil  // 0x19
        var responseInformation: String? = nil  // 0x1A
        var serverReference: String? = nil  // 0x1C
        var reasonString: String? = nil  // 0x1F
        var receiveMaximum: UInt16? = nil  // 0x21
        var topicAliasMaximum: UInt16? = nil  // 0x22
        var topicAlias: UInt16? = nil  // 0x23
        var maximumQoS: UInt8? = nil  // 0x24
        var retainAvailable: UInt8? = nil  // 0x25
        var userProperties: [UserProperty] = []  // 0x26
        var maximumPacketSize: UInt32? = nil  // 0x27
        var wildcardSubscriptionAvailable: UInt8? = nil  // 0x28
        var subscriptionIdentifierAvailable: UInt8? = nil  // 0x29
        var sharedSubscriptionAvailable: UInt8? = nil  // 0x2A

        init() {}

        init(copying other: Storage) {
            payloadFormatIndicator = other.payloadFormatIndicator
            messageExpiryIntervalSeconds = other.messageExpiryIntervalSeconds
            contentType = other.contentType
            responseTopic = other.responseTopic
            correlationData = other.correlationData
            subscriptionIdentifiers = other.subscriptionIdentifiers
            sessionExpiryIntervalSeconds = other.sessionExpiryIntervalSeconds
            assignedClientIdentifier = other.assignedClientIdentifier
            serverKeepAliveSeconds = other.serverKeepAliveSeconds
            authenticationMethod = other.authenticationMethod
            authenticationData = other.authenticationData
            requestProblemInformation = other.requestProblemInformation
            willDelayIntervalSeconds = other.willDelayIntervalSeconds
            requestResponseInformation = other.requestResponseInformation
            responseInformation = other.responseInformation
            serverReference = other.serverReference
            reasonString = other.reasonString
            receiveMaximum = other.receiveMaximum
            topicAliasMaximum = other.topicAliasMaximum
            topicAlias = other.topicAlias
            maximumQoS = other.maximumQoS
            retainAvailable = other.retainAvailable
            userProperties = other.userProperties
            maximumPacketSize = other.maximumPacketSize
            wildcardSubscriptionAvailable = other.wildcardSubscriptionAvailable
            subscriptionIdentifierAvailable = other.subscriptionIdentifierAvailable
            sharedSubscriptionAvailable = other.sharedSubscriptionAvailable
        }

        static func == (lhs: Storage, rhs: Storage) -> Bool {
            lhs === rhs
                || (lhs.payloadFormatIndicator == rhs.payloadFormatIndicator
                    && lhs.messageExpiryIntervalSeconds == rhs.messageExpiryIntervalSeconds
                    && lhs.contentType == rhs.contentType
                    && lhs.responseTopic == rhs.responseTopic
                    && lhs.correlationData == rhs.correlationData
                    && lhs.subscriptionIdentifiers == rhs.subscriptionIdentifiers
                    && lhs.sessionExpiryIntervalSeconds == rhs.sessionExpiryIntervalSeconds
                    && lhs.assignedClientIdentifier == rhs.assignedClientIdentifier
                    && lhs.serverKeepAliveSeconds == rhs.serverKeepAliveSeconds
                    && lhs.authenticationMethod == rhs.authenticationMethod
                    && lhs.authenticationData == rhs.authenticationData
                    && lhs.requestProblemInformation == rhs.requestProblemInformation
                    && lhs.willDelayIntervalSeconds == rhs.willDelayIntervalSeconds
                    && lhs.requestResponseInformation == rhs.requestResponseInformation
                    && lhs.responseInformation == rhs.responseInformation
                    && lhs.serverReference == rhs.serverReference
                    && lhs.reasonString == rhs.reasonString
                    && lhs.receiveMaximum == rhs.receiveMaximum
                    && lhs.topicAliasMaximum == rhs.topicAliasMaximum
                    && lhs.topicAlias == rhs.topicAlias
                    && lhs.maximumQoS == rhs.maximumQoS
                    && lhs.retainAvailable == rhs.retainAvailable
                    && lhs.userProperties == rhs.userProperties
                    && lhs.maximumPacketSize == rhs.maximumPacketSize
                    && lhs.wildcardSubscriptionAvailable == rhs.wildcardSubscriptionAvailable
                    && lhs.subscriptionIdentifierAvailable == rhs.subscriptionIdentifierAvailable
                    && lhs.sharedSubscriptionAvailable == rhs.sharedSubscriptionAvailable)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(payloadFormatIndicator)
            hasher.combine(messageExpiryIntervalSeconds)
            hasher.combine(contentType)
            hasher.combine(responseTopic)
            hasher.combine(correlationData)
            hasher.combine(subscriptionIdentifiers)
            hasher.combine(sessionExpiryIntervalSeconds)
            hasher.combine(assignedClientIdentifier)
            hasher.combine(serverKeepAliveSeconds)
            hasher.combine(authenticationMethod)
            hasher.combine(authenticationData)
            hasher.combine(requestProblemInformation)
            hasher.combine(willDelayIntervalSeconds)
            hasher.combine(requestResponseInformation)
            hasher.combine(responseInformation)
            hasher.combine(serverReference)
            hasher.combine(reasonString)
            hasher.combine(receiveMaximum)
            hasher.combine(topicAliasMaximum)
            hasher.combine(topicAlias)
            hasher.combine(maximumQoS)
            hasher.combine(retainAvailable)
            hasher.combine(userProperties)
            hasher.combine(maximumPacketSize)
            hasher.combine(wildcardSubscriptionAvailable)
            hasher.combine(subscriptionIdentifierAvailable)
            hasher.combine(sharedSubscriptionAvailable)
        }

        var isEmpty: Bool {
            payloadFormatIndicator == nil
                && messageExpiryIntervalSeconds == nil
                && contentType == nil
                && responseTopic == nil
                && correlationData == nil
                && subscriptionIdentifiers.isEmpty
                && sessionExpiryIntervalSeconds == nil
                && assignedClientIdentifier == nil
                && serverKeepAliveSeconds == nil
                && authenticationMethod == nil
                && authenticationData == nil
                && requestProblemInformation == nil
                && willDelayIntervalSeconds == nil
                && requestResponseInformation == nil
                && responseInformation == nil
                && serverReference == nil
                && reasonString == nil
                && receiveMaximum == nil
                && topicAliasMaximum == nil
                && topicAlias == nil
                && maximumQoS == nil
                && retainAvailable == nil
                && userProperties.isEmpty
                && maximumPacketSize == nil
                && wildcardSubscriptionAvailable == nil
                && subscriptionIdentifierAvailable == nil
                && sharedSubscriptionAvailable == nil
        }
    }

    private var storage: Storage?

    public init() {}

    /// Whether no property is set.
    public var isEmpty: Bool { storage?.isEmpty ?? true }

    public static func == (lhs: Properties, rhs: Properties) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (nil, nil): true
        case (let storage?, nil), (nil, let storage?): storage.isEmpty
        case (let left?, let right?): left == right
        }
    }

    public func hash(into hasher: inout Hasher) {
        if let storage, !storage.isEmpty { storage.hash(into: &hasher) }
    }

    /// Appends a User Property in amortized constant time. (`userProperties.append` goes
    /// through the getter and setter, which copy the array: a packet of many properties
    /// decoded in quadratic time, a CPU sink before authentication.)
    public mutating func appendUserProperty(_ property: UserProperty) {
        mutate { $0.userProperties.append(property) }
    }

    /// Appends a Subscription Identifier in amortized constant time (see `appendUserProperty`).
    public mutating func appendSubscriptionIdentifier(_ identifier: UInt32) {
        mutate { $0.subscriptionIdentifiers.append(identifier) }
    }

    private mutating func mutate<T>(_ body: (Storage) -> T) -> T {
        if isKnownUniquelyReferenced(&storage), let storage { return body(storage) }
        let copy = storage.map(Storage.init(copying:)) ?? Storage()
        storage = copy
        return body(copy)
    }

    // 0x01
    public var payloadFormatIndicator: UInt8? {
        get { storage?.payloadFormatIndicator }
        set { if storage != nil || newValue != nil { mutate { $0.payloadFormatIndicator = newValue } } }
    }
    // 0x02
    public var messageExpiryIntervalSeconds: UInt32? {
        get { storage?.messageExpiryIntervalSeconds }
        set { if storage != nil || newValue != nil { mutate { $0.messageExpiryIntervalSeconds = newValue } } }
    }
    // 0x03
    public var contentType: String? {
        get { storage?.contentType }
        set { if storage != nil || newValue != nil { mutate { $0.contentType = newValue } } }
    }
    // 0x08
    public var responseTopic: String? {
        get { storage?.responseTopic }
        set { if storage != nil || newValue != nil { mutate { $0.responseTopic = newValue } } }
    }
    // 0x09
    public var correlationData: [UInt8]? {
        get { storage?.correlationData }
        set { if storage != nil || newValue != nil { mutate { $0.correlationData = newValue } } }
    }
    public var subscriptionIdentifiers: [UInt32] {
        get { storage?.subscriptionIdentifiers ?? [] }
        set { if storage != nil || newValue != [] { mutate { $0.subscriptionIdentifiers = newValue } } }
    }
    // 0x11
    public var sessionExpiryIntervalSeconds: UInt32? {
        get { storage?.sessionExpiryIntervalSeconds }
        set { if storage != nil || newValue != nil { mutate { $0.sessionExpiryIntervalSeconds = newValue } } }
    }
    // 0x12
    public var assignedClientIdentifier: String? {
        get { storage?.assignedClientIdentifier }
        set { if storage != nil || newValue != nil { mutate { $0.assignedClientIdentifier = newValue } } }
    }
    // 0x13
    public var serverKeepAliveSeconds: UInt16? {
        get { storage?.serverKeepAliveSeconds }
        set { if storage != nil || newValue != nil { mutate { $0.serverKeepAliveSeconds = newValue } } }
    }
    // 0x15
    public var authenticationMethod: String? {
        get { storage?.authenticationMethod }
        set { if storage != nil || newValue != nil { mutate { $0.authenticationMethod = newValue } } }
    }
    // 0x16
    public var authenticationData: [UInt8]? {
        get { storage?.authenticationData }
        set { if storage != nil || newValue != nil { mutate { $0.authenticationData = newValue } } }
    }
    // 0x17
    public var requestProblemInformation: UInt8? {
        get { storage?.requestProblemInformation }
        set { if storage != nil || newValue != nil { mutate { $0.requestProblemInformation = newValue } } }
    }
    // 0x18
    public var willDelayIntervalSeconds: UInt32? {
        get { storage?.willDelayIntervalSeconds }
        set { if storage != nil || newValue != nil { mutate { $0.willDelayIntervalSeconds = newValue } } }
    }
    // 0x19
    public var requestResponseInformation: UInt8? {
        get { storage?.requestResponseInformation }
        set { if storage != nil || newValue != nil { mutate { $0.requestResponseInformation = newValue } } }
    }
    // 0x1A
    public var responseInformation: String? {
        get { storage?.responseInformation }
        set { if storage != nil || newValue != nil { mutate { $0.responseInformation = newValue } } }
    }
    // 0x1C
    public var serverReference: String? {
        get { storage?.serverReference }
        set { if storage != nil || newValue != nil { mutate { $0.serverReference = newValue } } }
    }
    // 0x1F
    public var reasonString: String? {
        get { storage?.reasonString }
        set { if storage != nil || newValue != nil { mutate { $0.reasonString = newValue } } }
    }
    // 0x21
    public var receiveMaximum: UInt16? {
        get { storage?.receiveMaximum }
        set { if storage != nil || newValue != nil { mutate { $0.receiveMaximum = newValue } } }
    }
    // 0x22
    public var topicAliasMaximum: UInt16? {
        get { storage?.topicAliasMaximum }
        set { if storage != nil || newValue != nil { mutate { $0.topicAliasMaximum = newValue } } }
    }
    // 0x23
    public var topicAlias: UInt16? {
        get { storage?.topicAlias }
        set { if storage != nil || newValue != nil { mutate { $0.topicAlias = newValue } } }
    }
    // 0x24
    public var maximumQoS: UInt8? {
        get { storage?.maximumQoS }
        set { if storage != nil || newValue != nil { mutate { $0.maximumQoS = newValue } } }
    }
    // 0x25
    public var retainAvailable: UInt8? {
        get { storage?.retainAvailable }
        set { if storage != nil || newValue != nil { mutate { $0.retainAvailable = newValue } } }
    }
    // 0x26
    public var userProperties: [UserProperty] {
        get { storage?.userProperties ?? [] }
        set { if storage != nil || newValue != [] { mutate { $0.userProperties = newValue } } }
    }
    // 0x27
    public var maximumPacketSize: UInt32? {
        get { storage?.maximumPacketSize }
        set { if storage != nil || newValue != nil { mutate { $0.maximumPacketSize = newValue } } }
    }
    // 0x28
    public var wildcardSubscriptionAvailable: UInt8? {
        get { storage?.wildcardSubscriptionAvailable }
        set { if storage != nil || newValue != nil { mutate { $0.wildcardSubscriptionAvailable = newValue } } }
    }
    // 0x29
    public var subscriptionIdentifierAvailable: UInt8? {
        get { storage?.subscriptionIdentifierAvailable }
        set { if storage != nil || newValue != nil { mutate { $0.subscriptionIdentifierAvailable = newValue } } }
    }
    // 0x2A
    public var sharedSubscriptionAvailable: UInt8? {
        get { storage?.sharedSubscriptionAvailable }
        set { if storage != nil || newValue != nil { mutate { $0.sharedSubscriptionAvailable = newValue } } }
    }
}

/// Where a property block appears; each context allows a different set (MQTT 5.0 §2.2.2.2).
public enum PropertyContext: Sendable, Hashable {
    case connect, will, connAck, publish, pubAck, pubRec, pubRel, pubComp
    case subscribe, subAck, unsubscribe, unsubAck, disconnect, auth
}

extension Properties: CustomStringConvertible {
    /// The properties that are set, e.g. `[topicAlias: 1, userProperties: [...]]`.
    public var description: String {
        guard let storage, !storage.isEmpty else { return "[]" }
        let set = Mirror(reflecting: storage).children.compactMap { child -> String? in
            guard let label = child.label else { return nil }
            let value = child.value
            if let array = value as? [Any], array.isEmpty { return nil }
            if case Optional<Any>.none = value as Any? { return nil }
            let rendered = String(describing: value)
            if rendered == "nil" { return nil }
            return "\(label): \(rendered.hasPrefix("Optional(") ? String(rendered.dropFirst(9).dropLast()) : rendered)"
        }
        return "[" + set.joined(separator: ", ") + "]"
    }
}
