import FoxBrokerCore

/// Topic aliases of one connection in both directions (MQTT 5.0 §3.3.2.3.4).
/// Inbound: the client defines them, up to our Topic Alias Maximum. Outbound: we define them,
/// up to the client's, first come first served (aliases are never reassigned, which keeps the
/// mapping trivially consistent for the client).
struct TopicAliases {
    enum InboundError: Error, Equatable {
        /// Alias 0 or above our maximum: DISCONNECT 0x94.
        case aliasInvalid
        /// Empty topic with an alias never defined: DISCONNECT 0x82.
        case aliasUnknown
    }

    let inboundMaximum: UInt16
    private var inbound: [UInt16: String] = [:]
    var outboundMaximum: UInt16 = 0
    /// Keyed by the topic's bytes: `String` equality is canonical equivalence, under which two
    /// byte-different topics (a precomposed and a decomposed "é") would share an alias.
    private var outbound: [ExactString: UInt16] = [:]

    init(inboundMaximum: UInt16) {
        self.inboundMaximum = inboundMaximum
    }

    /// The full topic name of an inbound PUBLISH; records a new alias when it defines one.
    mutating func resolveInbound(topicName: String, alias: UInt16?) throws(InboundError) -> String {
        guard let alias else { return topicName }
        guard alias >= 1, alias <= inboundMaximum else { throw .aliasInvalid }
        if topicName.isEmpty {
            guard let known = inbound[alias] else { throw .aliasUnknown }
            return known
        }
        inbound[alias] = topicName
        return topicName
    }

    /// The topic name and alias to send: the alias alone once it is known to the client.
    /// `fits(topicName, alias)` says whether the PUBLISH with that topic and alias stays within
    /// the client's Maximum Packet Size: an alias that would push it over is not used (nor
    /// defined), and the PUBLISH goes as it came.
    mutating func applyOutbound(topicName: String, fits: (String, UInt16) -> Bool = { _, _ in true }) -> (
        topicName: String, alias: UInt16?
    ) {
        guard outboundMaximum > 0 else { return (topicName, nil) }
        let key = ExactString(topicName)
        if let alias = outbound[key] {
            return fits("", alias) ? ("", alias) : (topicName, nil)
        }
        guard outbound.count < Int(outboundMaximum) else { return (topicName, nil) }
        let alias = UInt16(outbound.count + 1)
        guard fits(topicName, alias) else { return (topicName, nil) }
        outbound[key] = alias
        return (topicName, alias)
    }
}
