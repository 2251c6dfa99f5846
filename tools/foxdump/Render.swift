import FoxBrokerCore
import FoxMQTT
import NIOCore

/// How foxdump shows values: one place for times, payloads, keys, events and rows, each as an
/// ordered JSON object that the human output prints as `key=value` pairs.
enum Render {
    /// Payloads up to this size that are printable UTF-8 are shown as text.
    static let textBytesMax = 256
    /// Otherwise the first bytes are shown as hex.
    static let hexPrefixBytes = 32

    // MARK: Time

    /// `2026-01-02T03:04:05.678Z` (UTC) for milliseconds since the Unix epoch.
    static func iso8601(millis: UInt64) -> String {
        let seconds = Int64(clamping: millis / 1000)
        let milliseconds = Int(millis % 1000)
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: some BinaryInteger, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(milliseconds, 3))Z"
    }

    /// `{"time": ISO 8601, "millis": n}`-style pair of members under `name`.
    static func time(_ name: String, _ millis: UInt64?) -> [(String, JSON)] {
        guard let millis else { return [] }
        return [(name, .string(iso8601(millis: millis))), (name + "Millis", .number(millis))]
    }

    // MARK: Bytes

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// Printable: valid UTF-8 without control characters other than tab and newline.
    static func printableText(_ bytes: [UInt8]) -> String? {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let printable = text.unicodeScalars.allSatisfy { scalar in
            scalar == "\t" || scalar == "\n" || (scalar.value >= 0x20 && !(0x7F...0x9F).contains(scalar.value))
        }
        return printable ? text : nil
    }

    /// `{"size": n, "text": "..."}` or `{"size": n, "hex": "first bytes", "truncated": true}`.
    static func payload(_ buffer: ByteBuffer) -> JSON {
        let size = buffer.readableBytes
        if size <= textBytesMax, let bytes = buffer.getBytes(at: buffer.readerIndex, length: size),
            let text = printableText(bytes)
        {
            return .object([("size", .number(size)), ("text", .string(text))])
        }
        let shown = min(size, hexPrefixBytes)
        let bytes = buffer.getBytes(at: buffer.readerIndex, length: shown) ?? []
        return .object([("size", .number(size)), ("hex", .string(hex(bytes))), ("truncated", .bool(shown < size))])
    }

    /// A table key as text when it is printable UTF-8, else `0x` and hex.
    static func key(_ key: [UInt8]) -> String {
        printableText(key).map { $0 } ?? "0x" + hex(key)
    }

    // MARK: MQTT values

    static func qos(_ qos: QoS) -> JSON { .number(qos.rawValue) }

    static func connection(_ connection: ConnectionID) -> JSON { .string(connection.description) }

    static func subscriptionOptions(_ options: SubscriptionOptions) -> [(String, JSON)] {
        [
            ("qos", qos(options.qos)), ("noLocal", .bool(options.noLocal)),
            ("retainAsPublished", .bool(options.retainAsPublished)),
            ("retainHandling", .number(options.retainHandling.rawValue)),
        ]
    }

    /// The application properties worth showing (only those present).
    static func properties(_ properties: Properties) -> [(String, JSON)] {
        var members: [(String, JSON)] = []
        if let value = properties.payloadFormatIndicator { members.append(("payloadFormat", .number(value))) }
        if let value = properties.messageExpiryIntervalSeconds {
            members.append(("messageExpiryInterval", .number(value)))
        }
        if let value = properties.contentType { members.append(("contentType", .string(value))) }
        if let value = properties.responseTopic { members.append(("responseTopic", .string(value))) }
        if let value = properties.correlationData { members.append(("correlationData", .string(hex(value)))) }
        if let value = properties.willDelayIntervalSeconds { members.append(("willDelayInterval", .number(value))) }
        let user = properties.userProperties
        if !user.isEmpty {
            members.append(
                (
                    "userProperties",
                    .array(user.map { .object([("name", .string($0.name)), ("value", .string($0.value))]) })
                ))
        }
        return members
    }

    static func will(_ will: Will) -> JSON {
        var members: [(String, JSON)] = [
            ("topic", .string(will.topicName)), ("qos", qos(will.qos)), ("retain", .bool(will.retain)),
            ("payload", payload(will.payload)),
        ]
        members += properties(will.properties)
        return .object(members)
    }

    static func message(_ message: ApplicationMessage, topic: Bool = true) -> [(String, JSON)] {
        var members: [(String, JSON)] = []
        if topic { members.append(("topic", .string(message.topicName))) }
        members += [
            ("qos", qos(message.qos)), ("retain", .bool(message.retain)), ("payload", payload(message.payload)),
        ]
        members += time("expiresAt", message.expiryDeadlineMillis)
        if let origin = message.originClientIdentifier { members.append(("origin", .string(origin.value))) }
        members += properties(message.properties)
        return members
    }

    static func limits(_ limits: BrokerLimits) -> JSON {
        .object([
            ("inflightCountMax", .number(limits.inflightCountMax)),
            ("queuedMessageCountMax", .number(limits.queuedMessageCountMax)),
            ("subscriptionCountMax", .number(limits.subscriptionCountMax)),
            ("topicLevelCountMax", .number(limits.topicLevelCountMax)),
            ("sessionCountMax", .number(limits.sessionCountMax)),
            ("retainedMessageCountMax", .number(limits.retainedMessageCountMax)),
            ("retainedBytesMax", .number(limits.retainedBytesMax)),
        ])
    }

    // MARK: Events

    /// The event's kind and fields.
    static func event(_ event: BrokerEvent) -> (kind: String, fields: [(String, JSON)]) {
        switch event {
        case .sessionOpen(let open):
            var fields: [(String, JSON)] = [
                ("connection", connection(open.connection)), ("clientId", .string(open.clientIdentifier)),
                ("protocol", .string(open.protocolVersion.description)), ("cleanStart", .bool(open.cleanStart)),
                ("sessionExpiryInterval", .number(open.sessionExpiryIntervalSeconds)),
                ("receiveMaximum", .number(open.receiveMaximum)),
            ]
            if let size = open.maximumPacketSize { fields.append(("maximumPacketSize", .number(size))) }
            if let will = open.will { fields.append(("will", Render.will(will))) }
            return ("sessionOpen", fields)
        case .publish(let connection, let publish):
            var fields: [(String, JSON)] = [
                ("connection", Render.connection(connection)), ("topic", .string(publish.topicName)),
                ("qos", qos(publish.qos)), ("retain", .bool(publish.retain)), ("dup", .bool(publish.dup)),
            ]
            if let packetIdentifier = publish.packetIdentifier {
                fields.append(("packetId", .number(packetIdentifier)))
            }
            fields.append(("payload", payload(publish.payload)))
            fields += properties(publish.properties)
            return ("publish", fields)
        case .pubRel(let connection, let packetIdentifier):
            return ("pubRel", [("connection", Render.connection(connection)), ("packetId", .number(packetIdentifier))])
        case .pubAck(let connection, let packetIdentifier):
            return ("pubAck", [("connection", Render.connection(connection)), ("packetId", .number(packetIdentifier))])
        case .pubRec(let connection, let packetIdentifier, let reasonCode):
            return (
                "pubRec",
                [
                    ("connection", Render.connection(connection)), ("packetId", .number(packetIdentifier)),
                    ("reasonCode", .string("0x" + hex([reasonCode.rawValue]))),
                ]
            )
        case .pubComp(let connection, let packetIdentifier):
            return (
                "pubComp", [("connection", Render.connection(connection)), ("packetId", .number(packetIdentifier))]
            )
        case .publishDenied(let connection, let packetIdentifier, let qos):
            return (
                "publishDenied",
                [
                    ("connection", Render.connection(connection)), ("packetId", .number(packetIdentifier)),
                    ("qos", Render.qos(qos)),
                ]
            )
        case .subscribe(let connection, let subscribe, let denied):
            var fields: [(String, JSON)] = [
                ("connection", Render.connection(connection)), ("packetId", .number(subscribe.packetIdentifier)),
                (
                    "subscriptions",
                    .array(
                        subscribe.subscriptions.map {
                            .object([("filter", .string($0.topicFilter))] + subscriptionOptions($0.options))
                        })
                ),
            ]
            if let identifier = subscribe.properties.subscriptionIdentifiers.first {
                fields.append(("subscriptionId", .number(identifier)))
            }
            if !denied.isEmpty { fields.append(("denied", .array(denied.map { .number($0) }))) }
            return ("subscribe", fields)
        case .unsubscribe(let connection, let unsubscribe):
            return (
                "unsubscribe",
                [
                    ("connection", Render.connection(connection)), ("packetId", .number(unsubscribe.packetIdentifier)),
                    ("filters", .array(unsubscribe.topicFilters.map { .string($0) })),
                ]
            )
        case .sessionClose(let connection, let close):
            let cause =
                switch close.cause {
                case .normalDisconnect: "normalDisconnect"
                case .disconnectWithWill: "disconnectWithWill"
                case .abnormal: "abnormal"
                case .willRefused: "willRefused"
                }
            var fields: [(String, JSON)] = [("connection", Render.connection(connection)), ("cause", .string(cause))]
            if let expiry = close.sessionExpiryIntervalSeconds {
                fields.append(("sessionExpiryInterval", .number(expiry)))
            }
            return ("sessionClose", fields)
        case .tick:
            return ("tick", [])
        case .nodeStarted(let node, let incarnation):
            return ("nodeStarted", [("node", .number(node)), ("incarnation", .number(incarnation))])
        case .nodeLost(let node, let incarnation):
            return ("nodeLost", [("node", .number(node)), ("incarnation", .number(incarnation))])
        case .configure(let limits):
            return ("configure", [("limits", Render.limits(limits))])
        case .systemPublish(let node, let topicName, let payload):
            return (
                "systemPublish",
                [("node", .number(node)), ("topic", .string(topicName)), ("payload", Render.payload(payload))]
            )
        case .admin(let entry):
            let origin: [(String, JSON)] = [("node", .number(entry.node)), ("sequence", .number(entry.sequence))]
            switch entry.change {
            case .setUser(let name, let passwordHash):
                // The hash is a secret's stand-in: its kind only.
                let kind = passwordHash.split(separator: "$").first.map(String.init) ?? "?"
                return (
                    "admin.setUser", origin + [("name", .string(name)), ("passwordHash", .string("$\(kind)$..."))]
                )
            case .removeUser(let name):
                return ("admin.removeUser", origin + [("name", .string(name))])
            case .setRules(let rules):
                return ("admin.setRules", origin + [("rules", .array(rules.map { .string(Render.rule($0)) }))])
            }
        }
    }

    /// An ordered access rule as `foxmq acl` states it, e.g. `allow user "alice" to publish a/#`.
    static func rule(_ rule: OrderedAdmin.Rule) -> String {
        let subject =
            switch rule.subject {
            case .user(let name): "user \"\(name)\""
            case .anonymous: "anonymous clients"
            case .allUsers: "all users"
            }
        return
            "\(rule.allow ? "allow" : "deny") \(subject) to \(rule.publish ? "publish" : "subscribe") \(rule.topicFilter)"
    }

    /// The topic a record is about, for `log --topic` (publishes only).
    static func publishTopic(_ event: BrokerEvent) -> String? {
        if case .publish(_, let publish) = event { return publish.topicName }
        return nil
    }

    // MARK: Human output

    /// `key=value key=value`, strings quoted, nested values as compact JSON.
    static func fields(_ members: [(String, JSON)]) -> String {
        members.map { key, value in "\(key)=\(inline(value))" }.joined(separator: " ")
    }

    static func inline(_ value: JSON) -> String {
        switch value {
        case .object(let members) where members.first?.0 == "size" && members.count >= 2:
            // A payload: [size]"text" or [size]hex…
            let size = inline(members[0].1)
            if case .string(let text) = members[1].1 {
                if members[1].0 == "text" { return "[\(size)]" + inline(.string(text)) }
                let truncated = members.count > 2 && inline(members[2].1) == "true"
                return "[\(size)]0x\(text)\(truncated ? "…" : "")"
            }
            return value.serialized(indent: nil)
        default:
            return value.serialized(indent: nil)
        }
    }
}
