import NIOCore

/// CONNECT (MQTT 5.0 §3.1, 3.1.1 §3.1).
public struct Connect: Hashable, Sendable {
    public var protocolVersion: ProtocolVersion
    /// Clean Start in 5.0, Clean Session in 3.1.1.
    public var cleanStart: Bool
    public var keepAliveSeconds: UInt16
    public var clientIdentifier: String
    public var will: Will?
    public var username: String?
    public var password: [UInt8]?
    public var properties: Properties

    public init(
        protocolVersion: ProtocolVersion, cleanStart: Bool, keepAliveSeconds: UInt16,
        clientIdentifier: String, will: Will? = nil, username: String? = nil,
        password: [UInt8]? = nil, properties: Properties = Properties()
    ) {
        self.protocolVersion = protocolVersion
        self.cleanStart = cleanStart
        self.keepAliveSeconds = keepAliveSeconds
        self.clientIdentifier = clientIdentifier
        self.will = will
        self.username = username
        self.password = password
        self.properties = properties
    }
}

/// The will message carried by CONNECT (MQTT 5.0 §3.1.2.5, §3.1.3.2).
public struct Will: Hashable, Sendable {
    public var topicName: String
    public var payload: ByteBuffer
    public var qos: QoS
    public var retain: Bool
    /// Will properties (context `.will`): will delay interval, message expiry, content type, ...
    public var properties: Properties

    public init(
        topicName: String, payload: ByteBuffer, qos: QoS, retain: Bool,
        properties: Properties = Properties()
    ) {
        self.topicName = topicName
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
    }
}
