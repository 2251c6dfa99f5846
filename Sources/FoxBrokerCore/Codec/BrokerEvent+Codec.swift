import FoxMQTT
import NIOCore

/// The canonical encoding of ordered events, as they are kept in the log: a tag byte, then the
/// event's fields. Packets are stored field by field, not as wire packets: a record must decode
/// in every later version, even if the wire decoder grows stricter about what clients send.
extension BrokerEvent {
    enum Tag: UInt8 {
        case sessionOpen = 1
        case publish = 2
        case pubRel = 3
        case pubAck = 4
        case pubRec = 5
        case pubComp = 6
        case subscribe = 7
        case unsubscribe = 8
        case sessionClose = 9
        case tick = 10
        case nodeStarted = 11
        case configure = 12
        case publishDenied = 13
        case nodeLost = 14
        case admin = 15
        case systemPublish = 16
    }

    /// The tag that starts the event's encoding.
    var tag: Tag {
        switch self {
        case .sessionOpen: .sessionOpen
        case .publish: .publish
        case .pubRel: .pubRel
        case .pubAck: .pubAck
        case .pubRec: .pubRec
        case .pubComp: .pubComp
        case .subscribe: .subscribe
        case .unsubscribe: .unsubscribe
        case .sessionClose: .sessionClose
        case .tick: .tick
        case .nodeStarted: .nodeStarted
        case .configure: .configure
        case .publishDenied: .publishDenied
        case .nodeLost: .nodeLost
        case .admin: .admin
        case .systemPublish: .systemPublish
        }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(tag.rawValue)
        switch self {
        case .sessionOpen(let open):
            buffer.writeConnectionID(open.connection)
            buffer.writeLengthPrefixed(open.clientIdentifier)
            buffer.writeInteger(open.protocolVersion.rawValue)
            buffer.writeFlag(open.cleanStart)
            buffer.writeInteger(open.sessionExpiryIntervalSeconds)
            buffer.writeOptional(open.will) { $0.writeWill($1) }
            buffer.writeInteger(open.receiveMaximum)
            buffer.writeOptional(open.maximumPacketSize) { $0.writeInteger($1) }
        case .publish(let connection, let publish):
            buffer.writeConnectionID(connection)
            buffer.writeLengthPrefixed(publish.topicName)
            buffer.writeLengthPrefixed(publish.payload)
            buffer.writeInteger(publish.qos.rawValue)
            buffer.writeFlag(publish.retain)
            buffer.writeFlag(publish.dup)
            buffer.writeOptional(publish.packetIdentifier) { $0.writeInteger($1) }
            buffer.writeProperties(publish.properties)
        case .pubRel(let connection, let packetIdentifier), .pubAck(let connection, let packetIdentifier),
            .pubComp(let connection, let packetIdentifier):
            buffer.writeConnectionID(connection)
            buffer.writeInteger(packetIdentifier)
        case .pubRec(let connection, let packetIdentifier, let reasonCode):
            buffer.writeConnectionID(connection)
            buffer.writeInteger(packetIdentifier)
            buffer.writeInteger(reasonCode.rawValue)
        case .subscribe(let connection, let subscribe, let denied):
            buffer.writeConnectionID(connection)
            buffer.writeInteger(subscribe.packetIdentifier)
            buffer.writeInteger(UInt32(subscribe.subscriptions.count))
            for subscription in subscribe.subscriptions {
                buffer.writeLengthPrefixed(subscription.topicFilter)
                buffer.writeSubscriptionOptions(subscription.options)
            }
            buffer.writeProperties(subscribe.properties)
            buffer.writeInteger(UInt32(denied.count))
            for index in denied { buffer.writeInteger(UInt32(index)) }
        case .publishDenied(let connection, let packetIdentifier, let qos):
            buffer.writeConnectionID(connection)
            buffer.writeInteger(packetIdentifier)
            buffer.writeInteger(qos.rawValue)
        case .unsubscribe(let connection, let unsubscribe):
            buffer.writeConnectionID(connection)
            buffer.writeInteger(unsubscribe.packetIdentifier)
            buffer.writeInteger(UInt32(unsubscribe.topicFilters.count))
            for filter in unsubscribe.topicFilters { buffer.writeLengthPrefixed(filter) }
            buffer.writeProperties(unsubscribe.properties)
        case .sessionClose(let connection, let close):
            buffer.writeConnectionID(connection)
            let cause: UInt8 =
                switch close.cause {
                case .normalDisconnect: 0
                case .disconnectWithWill: 1
                case .abnormal: 2
                case .willRefused: 3
                }
            buffer.writeInteger(cause)
            buffer.writeOptional(close.sessionExpiryIntervalSeconds) { $0.writeInteger($1) }
        case .tick:
            break  // the tag is all
        case .nodeStarted(let node, let incarnation), .nodeLost(let node, let incarnation):
            buffer.writeInteger(node)
            buffer.writeInteger(incarnation)
        case .configure(let limits):
            buffer.writeLimits(limits)
        case .admin(let entry):
            buffer.writeAdminEntry(entry)
        case .systemPublish(let node, let topicName, let payload):
            buffer.writeInteger(node)
            buffer.writeLengthPrefixed(topicName)
            buffer.writeLengthPrefixed(payload)
        }
    }

    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    /// Decodes exactly one event from the whole buffer.
    public static func decode(_ buffer: ByteBuffer) throws(RecordDecodeError) -> BrokerEvent {
        var reader = CanonicalReader(buffer)
        let event = try read(from: &reader)
        try reader.expectEnd("event")
        return event
    }

    static func read(from reader: inout CanonicalReader) throws(RecordDecodeError) -> BrokerEvent {
        let raw = try reader.integer("event.tag", as: UInt8.self)
        guard let tag = Tag(rawValue: raw) else { throw RecordDecodeError("event.tag", "unknown event tag \(raw)") }
        switch tag {
        case .sessionOpen:
            let connection = try reader.connectionID("sessionOpen.connection")
            let clientIdentifier = try reader.string("sessionOpen.clientIdentifier")
            let version = try reader.protocolVersion("sessionOpen.protocolVersion")
            let cleanStart = try reader.flag("sessionOpen.cleanStart")
            let expiry = try reader.integer("sessionOpen.sessionExpiryInterval", as: UInt32.self)
            let will = try reader.optional("sessionOpen.will") { (reader) throws(RecordDecodeError) in
                try reader.will("sessionOpen.will")
            }
            let receiveMaximum = try reader.integer("sessionOpen.receiveMaximum", as: UInt16.self)
            let maximumPacketSize = try reader.optional("sessionOpen.maximumPacketSize") {
                (reader) throws(RecordDecodeError) in
                try reader.integer("sessionOpen.maximumPacketSize", as: UInt32.self)
            }
            return .sessionOpen(
                SessionOpen(
                    connection: connection, clientIdentifier: clientIdentifier, protocolVersion: version,
                    cleanStart: cleanStart, sessionExpiryIntervalSeconds: expiry, will: will,
                    receiveMaximum: receiveMaximum, maximumPacketSize: maximumPacketSize))
        case .publish:
            let connection = try reader.connectionID("publish.connection")
            let publish = Publish(
                topicName: try reader.string("publish.topicName"), payload: try reader.bytes("publish.payload"),
                qos: try reader.qos("publish.qos"), retain: try reader.flag("publish.retain"),
                dup: try reader.flag("publish.dup"),
                packetIdentifier: try reader.optional("publish.packetIdentifier") {
                    (reader) throws(RecordDecodeError) in
                    try reader.integer("publish.packetIdentifier", as: UInt16.self)
                },
                properties: try reader.properties("publish.properties", context: .publish))
            return .publish(connection, publish)
        case .pubRel:
            return .pubRel(
                try reader.connectionID("pubRel.connection"),
                packetIdentifier: try reader.integer("pubRel.packetIdentifier"))
        case .pubAck:
            return .pubAck(
                try reader.connectionID("pubAck.connection"),
                packetIdentifier: try reader.integer("pubAck.packetIdentifier"))
        case .pubRec:
            let connection = try reader.connectionID("pubRec.connection")
            let packetIdentifier = try reader.integer("pubRec.packetIdentifier", as: UInt16.self)
            let rawReason = try reader.integer("pubRec.reasonCode", as: UInt8.self)
            return .pubRec(connection, packetIdentifier: packetIdentifier, reasonCode: ReasonCode(rawValue: rawReason))
        case .pubComp:
            return .pubComp(
                try reader.connectionID("pubComp.connection"),
                packetIdentifier: try reader.integer("pubComp.packetIdentifier"))
        case .subscribe:
            let connection = try reader.connectionID("subscribe.connection")
            let packetIdentifier = try reader.integer("subscribe.packetIdentifier", as: UInt16.self)
            var subscriptions: [TopicSubscription] = []
            for _ in 0..<(try reader.count("subscribe.subscriptions", elementSizeMin: 8)) {
                subscriptions.append(
                    TopicSubscription(
                        topicFilter: try reader.string("subscribe.topicFilter"),
                        options: try reader.subscriptionOptions("subscribe.options")))
            }
            let properties = try reader.properties("subscribe.properties", context: .subscribe)
            var denied: [Int] = []
            for _ in 0..<(try reader.count("subscribe.denied", elementSizeMin: 4)) {
                let index = Int(try reader.integer("subscribe.denied", as: UInt32.self))
                guard index < subscriptions.count else {
                    throw RecordDecodeError(
                        "subscribe.denied", "index \(index) beyond \(subscriptions.count) subscriptions")
                }
                denied.append(index)
            }
            return .subscribe(
                connection,
                Subscribe(packetIdentifier: packetIdentifier, subscriptions: subscriptions, properties: properties),
                denied: denied)
        case .publishDenied:
            return .publishDenied(
                try reader.connectionID("publishDenied.connection"),
                packetIdentifier: try reader.integer("publishDenied.packetIdentifier"),
                qos: try reader.qos("publishDenied.qos"))
        case .unsubscribe:
            let connection = try reader.connectionID("unsubscribe.connection")
            let packetIdentifier = try reader.integer("unsubscribe.packetIdentifier", as: UInt16.self)
            var filters: [String] = []
            for _ in 0..<(try reader.count("unsubscribe.topicFilters", elementSizeMin: 4)) {
                filters.append(try reader.string("unsubscribe.topicFilter"))
            }
            let properties = try reader.properties("unsubscribe.properties", context: .unsubscribe)
            return .unsubscribe(
                connection,
                Unsubscribe(packetIdentifier: packetIdentifier, topicFilters: filters, properties: properties))
        case .sessionClose:
            let connection = try reader.connectionID("sessionClose.connection")
            let rawCause = try reader.integer("sessionClose.cause", as: UInt8.self)
            let cause: SessionClose.Cause
            switch rawCause {
            case 0: cause = .normalDisconnect
            case 1: cause = .disconnectWithWill
            case 2: cause = .abnormal
            case 3: cause = .willRefused
            default: throw RecordDecodeError("sessionClose.cause", "unknown cause \(rawCause)")
            }
            let expiry = try reader.optional("sessionClose.sessionExpiryInterval") {
                (reader) throws(RecordDecodeError) in
                try reader.integer("sessionClose.sessionExpiryInterval", as: UInt32.self)
            }
            return .sessionClose(connection, SessionClose(cause: cause, sessionExpiryIntervalSeconds: expiry))
        case .tick:
            return .tick
        case .nodeStarted:
            return .nodeStarted(
                node: try reader.integer("nodeStarted.node"), incarnation: try reader.integer("nodeStarted.incarnation")
            )
        case .nodeLost:
            return .nodeLost(
                node: try reader.integer("nodeLost.node"), incarnation: try reader.integer("nodeLost.incarnation"))
        case .configure:
            return .configure(try reader.limits("configure.limits"))
        case .admin:
            return .admin(try reader.adminEntry("admin"))
        case .systemPublish:
            return .systemPublish(
                node: try reader.integer("systemPublish.node"), topicName: try reader.string("systemPublish.topicName"),
                payload: try reader.bytes("systemPublish.payload"))
        }
    }
}

extension ByteBuffer {
    mutating func writeConnectionID(_ connection: ConnectionID) {
        writeInteger(connection.node)
        writeInteger(connection.incarnation)
        writeInteger(connection.local)
    }

    mutating func writeWill(_ will: Will) {
        writeLengthPrefixed(will.topicName)
        writeLengthPrefixed(will.payload)
        writeInteger(will.qos.rawValue)
        writeFlag(will.retain)
        writeProperties(will.properties)
    }

    mutating func writeLimits(_ limits: BrokerLimits) {
        for value in [
            limits.inflightCountMax, limits.queuedMessageCountMax, limits.subscriptionCountMax,
            limits.topicLevelCountMax, limits.sessionCountMax, limits.retainedMessageCountMax, limits.retainedBytesMax,
        ] {
            writeInteger(UInt64(value))
        }
    }
}

extension CanonicalReader {
    mutating func connectionID(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> ConnectionID {
        ConnectionID(
            node: try integer(field() + ".node"), incarnation: try integer(field() + ".incarnation"),
            local: try integer(field() + ".local"))
    }

    mutating func will(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> Will {
        Will(
            topicName: try string(field() + ".topicName"), payload: try bytes(field() + ".payload"),
            qos: try qos(field() + ".qos"), retain: try flag(field() + ".retain"),
            properties: try properties(field() + ".properties", context: .will))
    }

    mutating func limits(_ field: @autoclosure () -> String) throws(RecordDecodeError) -> BrokerLimits {
        var values: [Int] = []
        for name in [
            "inflightCountMax", "queuedMessageCountMax", "subscriptionCountMax", "topicLevelCountMax",
            "sessionCountMax", "retainedMessageCountMax", "retainedBytesMax",
        ] {
            let value = try integer(field() + "." + name, as: UInt64.self)
            guard value <= UInt64(Int.max) else {
                throw RecordDecodeError(field() + "." + name, "\(value) is out of range")
            }
            values.append(Int(value))
        }
        var limits = BrokerLimits()
        limits.inflightCountMax = values[0]
        limits.queuedMessageCountMax = values[1]
        limits.subscriptionCountMax = values[2]
        limits.topicLevelCountMax = values[3]
        limits.sessionCountMax = values[4]
        limits.retainedMessageCountMax = values[5]
        limits.retainedBytesMax = values[6]
        guard limits.inflightCountMax >= 1 && limits.inflightCountMax <= Int(UInt16.max),
            limits.subscriptionCountMax >= 1, limits.topicLevelCountMax >= 1
        else { throw RecordDecodeError(field(), "limits outside their valid ranges") }
        return limits
    }
}
