import NIOCore

/// The property identifiers of MQTT 5.0 (§2.2.2.2).
enum PropertyIdentifier {
    static let payloadFormatIndicator: UInt8 = 0x01
    static let messageExpiryInterval: UInt8 = 0x02
    static let contentType: UInt8 = 0x03
    static let responseTopic: UInt8 = 0x08
    static let correlationData: UInt8 = 0x09
    static let subscriptionIdentifier: UInt8 = 0x0B
    static let sessionExpiryInterval: UInt8 = 0x11
    static let assignedClientIdentifier: UInt8 = 0x12
    static let serverKeepAlive: UInt8 = 0x13
    static let authenticationMethod: UInt8 = 0x15
    static let authenticationData: UInt8 = 0x16
    static let requestProblemInformation: UInt8 = 0x17
    static let willDelayInterval: UInt8 = 0x18
    static let requestResponseInformation: UInt8 = 0x19
    static let responseInformation: UInt8 = 0x1A
    static let serverReference: UInt8 = 0x1C
    static let reasonString: UInt8 = 0x1F
    static let receiveMaximum: UInt8 = 0x21
    static let topicAliasMaximum: UInt8 = 0x22
    static let topicAlias: UInt8 = 0x23
    static let maximumQoS: UInt8 = 0x24
    static let retainAvailable: UInt8 = 0x25
    static let userProperty: UInt8 = 0x26
    static let maximumPacketSize: UInt8 = 0x27
    static let wildcardSubscriptionAvailable: UInt8 = 0x28
    static let subscriptionIdentifierAvailable: UInt8 = 0x29
    static let sharedSubscriptionAvailable: UInt8 = 0x2A
}

extension PropertyContext {
    /// The identifiers allowed in this context as a bit set (bit n = identifier n), from the
    /// table of MQTT 5.0 §2.2.2.2. User Property (0x26) is allowed everywhere.
    var allowedIdentifiers: UInt64 {
        func bits(_ ids: UInt8...) -> UInt64 { ids.reduce(1 << 0x26) { $0 | (1 << UInt64($1)) } }
        switch self {
        case .connect: return bits(0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x27)
        case .will: return bits(0x01, 0x02, 0x03, 0x08, 0x09, 0x18)
        case .connAck:
            return bits(
                0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x27, 0x28, 0x29,
                0x2A)
        case .publish: return bits(0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23)
        case .pubAck, .pubRec, .pubRel, .pubComp, .subAck, .unsubAck: return bits(0x1F)
        case .subscribe: return bits(0x0B)
        case .unsubscribe: return bits()
        case .disconnect: return bits(0x11, 0x1C, 0x1F)
        case .auth: return bits(0x15, 0x16, 0x1F)
        }
    }

    func allows(_ identifier: UInt8) -> Bool {
        identifier < 64 && allowedIdentifiers & (1 << UInt64(identifier)) != 0
    }

    var name: String {
        switch self {
        case .connect: "CONNECT"
        case .will: "CONNECT.will"
        case .connAck: "CONNACK"
        case .publish: "PUBLISH"
        case .pubAck: "PUBACK"
        case .pubRec: "PUBREC"
        case .pubRel: "PUBREL"
        case .pubComp: "PUBCOMP"
        case .subscribe: "SUBSCRIBE"
        case .subAck: "SUBACK"
        case .unsubscribe: "UNSUBSCRIBE"
        case .unsubAck: "UNSUBACK"
        case .disconnect: "DISCONNECT"
        case .auth: "AUTH"
        }
    }
}

extension Properties {
    /// Reads a property block (MQTT 5.0 §2.2.2): the property length, then identifier/value
    /// pairs. Rejects identifiers the context does not allow (Malformed Packet), repeated
    /// properties (Protocol Error; User Property and, in PUBLISH, Subscription Identifier may
    /// repeat) and values the specification forbids.
    static func read(from buffer: inout ByteBuffer, context: PropertyContext) throws(MQTTDecodeError) -> Properties {
        let length = Int(try buffer.readMQTTVariableByteInteger("\(context.name).propertyLength"))
        guard var block = buffer.readSlice(length: length) else {
            throw .malformed("\(context.name).propertyLength", "properties run past the end of the packet")
        }
        var properties = Properties()
        if length == 0 { return properties }
        var seen: UInt64 = 0
        while block.readableBytes > 0 {
            let rawIdentifier = try block.readMQTTVariableByteInteger("\(context.name).properties.identifier")
            guard rawIdentifier < 64, context.allows(UInt8(rawIdentifier)) else {
                throw .malformed(
                    fieldName(UInt8(truncatingIfNeeded: min(rawIdentifier, 0xFF))),
                    "property 0x\(String(rawIdentifier, radix: 16)) is not allowed in \(context.name)")
            }
            let identifier = UInt8(rawIdentifier)
            let bit: UInt64 = 1 << UInt64(identifier)
            let mayRepeat =
                identifier == PropertyIdentifier.userProperty
                || (identifier == PropertyIdentifier.subscriptionIdentifier && context == .publish)
            if seen & bit != 0 && !mayRepeat {
                throw .protocolError(fieldName(identifier), "property appears more than once")
            }
            seen |= bit
            try properties.readValue(identifier, from: &block)
        }
        return properties
    }

    /// "properties.0x23" for identifier 0x23: the field of a failing property.
    static func fieldName(_ identifier: UInt8) -> String {
        let hex = String(identifier, radix: 16, uppercase: true)
        return "properties.0x" + (hex.count < 2 ? "0" + hex : hex)
    }

    private mutating func readValue(_ identifier: UInt8, from buffer: inout ByteBuffer) throws(MQTTDecodeError) {
        // Built only when a read fails: this runs for every property of every PUBLISH.
        var field: String { Properties.fieldName(identifier) }
        func booleanByte() throws(MQTTDecodeError) -> UInt8 {
            let value = try buffer.readMQTTByte(field)
            guard value <= 1 else { throw .protocolError(field, "value \(value) is neither 0 nor 1") }
            return value
        }
        typealias ID = PropertyIdentifier
        switch identifier {
        case ID.payloadFormatIndicator: payloadFormatIndicator = try booleanByte()
        case ID.messageExpiryInterval: messageExpiryIntervalSeconds = try buffer.readMQTTUInt32(field)
        case ID.contentType: contentType = try buffer.readMQTTString(field)
        case ID.responseTopic:
            let (topic, hasWildcard) = try buffer.readMQTTTopicString(field)
            // §3.3.2.3.5: the Response Topic is a Topic Name, so no wildcards [MQTT-3.3.2-14].
            guard !topic.isEmpty, !hasWildcard else {
                throw .protocolError(field, "response topic is not a valid topic name")
            }
            responseTopic = topic
        case ID.correlationData: correlationData = try buffer.readMQTTBinary(field)
        case ID.subscriptionIdentifier:
            let value = try buffer.readMQTTVariableByteInteger(field)
            guard value != 0 else { throw .protocolError(field, "subscription identifier 0") }
            appendSubscriptionIdentifier(value)
        case ID.sessionExpiryInterval: sessionExpiryIntervalSeconds = try buffer.readMQTTUInt32(field)
        case ID.assignedClientIdentifier: assignedClientIdentifier = try buffer.readMQTTString(field)
        case ID.serverKeepAlive: serverKeepAliveSeconds = try buffer.readMQTTUInt16(field)
        case ID.authenticationMethod: authenticationMethod = try buffer.readMQTTString(field)
        case ID.authenticationData: authenticationData = try buffer.readMQTTBinary(field)
        case ID.requestProblemInformation: requestProblemInformation = try booleanByte()
        case ID.willDelayInterval: willDelayIntervalSeconds = try buffer.readMQTTUInt32(field)
        case ID.requestResponseInformation: requestResponseInformation = try booleanByte()
        case ID.responseInformation: responseInformation = try buffer.readMQTTString(field)
        case ID.serverReference: serverReference = try buffer.readMQTTString(field)
        case ID.reasonString: reasonString = try buffer.readMQTTString(field)
        case ID.receiveMaximum:
            let value = try buffer.readMQTTUInt16(field)
            guard value != 0 else { throw .protocolError(field, "receive maximum 0") }
            receiveMaximum = value
        case ID.topicAliasMaximum: topicAliasMaximum = try buffer.readMQTTUInt16(field)
        case ID.topicAlias:
            let value = try buffer.readMQTTUInt16(field)
            guard value != 0 else { throw MQTTDecodeError(.topicAliasInvalid, field: field, "topic alias 0") }
            topicAlias = value
        case ID.maximumQoS: maximumQoS = try booleanByte()
        case ID.retainAvailable: retainAvailable = try booleanByte()
        case ID.userProperty:
            let name = try buffer.readMQTTString(field + ".name")
            let value = try buffer.readMQTTString(field + ".value")
            appendUserProperty(UserProperty(name, value))
        case ID.maximumPacketSize:
            let value = try buffer.readMQTTUInt32(field)
            guard value != 0 else { throw .protocolError(field, "maximum packet size 0") }
            maximumPacketSize = value
        case ID.wildcardSubscriptionAvailable: wildcardSubscriptionAvailable = try booleanByte()
        case ID.subscriptionIdentifierAvailable: subscriptionIdentifierAvailable = try booleanByte()
        case ID.sharedSubscriptionAvailable: sharedSubscriptionAvailable = try booleanByte()
        default:
            // PropertyContext.allows admits only the identifiers handled above.
            preconditionFailure("unhandled property identifier \(identifier)")
        }
    }

    /// The bytes of the properties themselves, without the property length in front.
    var contentLength: Int {
        if isEmpty { return 0 }
        var length = 0
        if payloadFormatIndicator != nil { length += 2 }
        if messageExpiryIntervalSeconds != nil { length += 5 }
        if let contentType { length += 1 + mqttStringLength(contentType) }
        if let responseTopic { length += 1 + mqttStringLength(responseTopic) }
        if let correlationData { length += 3 + correlationData.count }
        for identifier in subscriptionIdentifiers { length += 1 + variableByteIntegerLength(Int(identifier)) }
        if sessionExpiryIntervalSeconds != nil { length += 5 }
        if let assignedClientIdentifier { length += 1 + mqttStringLength(assignedClientIdentifier) }
        if serverKeepAliveSeconds != nil { length += 3 }
        if let authenticationMethod { length += 1 + mqttStringLength(authenticationMethod) }
        if let authenticationData { length += 3 + authenticationData.count }
        if requestProblemInformation != nil { length += 2 }
        if willDelayIntervalSeconds != nil { length += 5 }
        if requestResponseInformation != nil { length += 2 }
        if let responseInformation { length += 1 + mqttStringLength(responseInformation) }
        if let serverReference { length += 1 + mqttStringLength(serverReference) }
        if let reasonString { length += 1 + mqttStringLength(reasonString) }
        if receiveMaximum != nil { length += 3 }
        if topicAliasMaximum != nil { length += 3 }
        if topicAlias != nil { length += 3 }
        if maximumQoS != nil { length += 2 }
        if retainAvailable != nil { length += 2 }
        for property in userProperties {
            length += 1 + mqttStringLength(property.name) + mqttStringLength(property.value)
        }
        if maximumPacketSize != nil { length += 5 }
        if wildcardSubscriptionAvailable != nil { length += 2 }
        if subscriptionIdentifierAvailable != nil { length += 2 }
        if sharedSubscriptionAvailable != nil { length += 2 }
        return length
    }

    /// The property block as written: property length plus the properties.
    var encodedLength: Int {
        let content = contentLength
        return variableByteIntegerLength(content) + content
    }

    /// Writes the property length and every property that is set, in identifier order.
    func write(to buffer: inout ByteBuffer, contentLength: Int) {
        buffer.writeMQTTVariableByteInteger(contentLength)
        if contentLength == 0 { return }
        typealias ID = PropertyIdentifier
        func byte(_ id: UInt8, _ value: UInt8?) {
            if let value { buffer.writeInteger(id); buffer.writeInteger(value) }
        }
        func uint16(_ id: UInt8, _ value: UInt16?) {
            if let value { buffer.writeInteger(id); buffer.writeInteger(value, endianness: .big) }
        }
        func uint32(_ id: UInt8, _ value: UInt32?) {
            if let value { buffer.writeInteger(id); buffer.writeInteger(value, endianness: .big) }
        }
        func string(_ id: UInt8, _ value: String?) {
            if let value { buffer.writeInteger(id); buffer.writeMQTTString(value) }
        }
        func binary(_ id: UInt8, _ value: [UInt8]?) {
            if let value { buffer.writeInteger(id); buffer.writeMQTTBinary(value) }
        }
        byte(ID.payloadFormatIndicator, payloadFormatIndicator)
        uint32(ID.messageExpiryInterval, messageExpiryIntervalSeconds)
        string(ID.contentType, contentType)
        string(ID.responseTopic, responseTopic)
        binary(ID.correlationData, correlationData)
        for identifier in subscriptionIdentifiers {
            buffer.writeInteger(ID.subscriptionIdentifier)
            buffer.writeMQTTVariableByteInteger(Int(identifier))
        }
        uint32(ID.sessionExpiryInterval, sessionExpiryIntervalSeconds)
        string(ID.assignedClientIdentifier, assignedClientIdentifier)
        uint16(ID.serverKeepAlive, serverKeepAliveSeconds)
        string(ID.authenticationMethod, authenticationMethod)
        binary(ID.authenticationData, authenticationData)
        byte(ID.requestProblemInformation, requestProblemInformation)
        uint32(ID.willDelayInterval, willDelayIntervalSeconds)
        byte(ID.requestResponseInformation, requestResponseInformation)
        string(ID.responseInformation, responseInformation)
        string(ID.serverReference, serverReference)
        string(ID.reasonString, reasonString)
        uint16(ID.receiveMaximum, receiveMaximum)
        uint16(ID.topicAliasMaximum, topicAliasMaximum)
        uint16(ID.topicAlias, topicAlias)
        byte(ID.maximumQoS, maximumQoS)
        byte(ID.retainAvailable, retainAvailable)
        for property in userProperties {
            buffer.writeInteger(ID.userProperty)
            buffer.writeMQTTString(property.name)
            buffer.writeMQTTString(property.value)
        }
        uint32(ID.maximumPacketSize, maximumPacketSize)
        byte(ID.wildcardSubscriptionAvailable, wildcardSubscriptionAvailable)
        byte(ID.subscriptionIdentifierAvailable, subscriptionIdentifierAvailable)
        byte(ID.sharedSubscriptionAvailable, sharedSubscriptionAvailable)
    }
}

extension Properties {
    /// Writes the property block as MQTT 5.0 does (property length, then the properties in
    /// identifier order): the stored form of properties in the broker's records and rows.
    public func writeBlock(to buffer: inout ByteBuffer) {
        write(to: &buffer, contentLength: contentLength)
    }

    /// Reads a property block written by `writeBlock`, with the rules of `context`.
    public static func readBlock(
        from buffer: inout ByteBuffer, context: PropertyContext
    ) throws(MQTTDecodeError) -> Properties {
        try read(from: &buffer, context: context)
    }
}
