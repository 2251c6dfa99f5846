import NIOCore

@testable import FoxMQTT

/// `properties`: the MQTT 5.0 property codec alone (`Properties.readBlock`, the reader of every
/// packet's properties and of the properties in the broker's records). The first byte picks the
/// context (which properties are allowed), the rest is the block. A block that decodes is written
/// again (`writeBlock`, as long as `encodedLength` says), and that decodes to the same properties
/// and writes the same bytes.
///
/// On a sample of the inputs that decode, the size-amplifying check: the block's properties
/// repeated k and 4k times (16 and 64 KiB; repeats are refused except for the User and
/// Subscription Identifier properties, the known quadratic shape) must decode in linear time.
let propertiesHarness = Harness(
    name: "properties", summary: "the MQTT 5.0 properties codec in each context, decode-encode-decode, linear time",
    run: fuzzProperties, seeds: propertiesSeeds)

let propertyContexts: [PropertyContext] = [
    .connect, .will, .connAck, .publish, .pubAck, .pubRec, .pubRel, .pubComp, .subscribe, .subAck, .unsubscribe,
    .unsubAck, .disconnect, .auth,
]

@Sendable func fuzzProperties(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let context = propertyContexts[Int(input.byte()) % propertyContexts.count]
    let block = input.rest()
    var buffer = ByteBuffer(bytes: block)
    guard let properties = try? Properties.readBlock(from: &buffer, context: context) else { return }
    let consumed = block.count - buffer.readableBytes

    var encoded = ByteBuffer()
    properties.writeBlock(to: &encoded)
    require(
        encoded.readableBytes == properties.encodedLength,
        "\(context): \(properties) announces \(properties.encodedLength) bytes, writes \(encoded.readableBytes)")
    let written = Array(encoded.readableBytesView)
    guard let again = try? Properties.readBlock(from: &encoded, context: context) else {
        fatalError("\(context): \(properties) was written as bytes that do not decode: \(written)")
    }
    require(encoded.readableBytes == 0, "\(context): the written block of \(properties) has trailing bytes")
    require(again == properties, "\(context): round trip changed \(properties) into \(again)")
    var rewritten = ByteBuffer()
    again.writeBlock(to: &rewritten)
    require(Array(rewritten.readableBytesView) == written, "\(context): \(properties) is not written canonically")

    if sample(bytes, oneIn: 16) {
        Timing.untimed { checkLinearProperties(Array(block[0..<consumed]), context: context) }
    }
}

/// Decodes blocks of the same properties repeated k and 4k times (total at most 256 KiB).
private func checkLinearProperties(_ block: [UInt8], context: PropertyContext) {
    var buffer = ByteBuffer(bytes: block)
    guard let length = try? buffer.readMQTTVariableByteIntegerForFuzzing(), length > 0 else { return }
    let content = Array(buffer.readableBytesView.prefix(length))
    let copies = max(1, (16 << 10) / content.count)
    var blocks: [Int: ByteBuffer] = [:]
    for count in [copies, copies * 4] {
        var repeated = ByteBuffer()
        repeated.writeVariableByteIntegerForFuzzing(content.count * count)
        for _ in 0..<count { repeated.writeBytes(content) }
        blocks[count] = repeated
    }
    Timing.checkLinear("\(context): \(content.count)-byte properties repeated", copies: copies) { count in
        var block = blocks[count]!
        _ = try? Properties.readBlock(from: &block, context: context)
    }
}

extension ByteBuffer {
    /// The variable byte integer of MQTT (§1.5.5), written here so the harness does not rely on
    /// the codec it checks.
    mutating func writeVariableByteIntegerForFuzzing(_ value: Int) {
        var value = value
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value > 0 { byte |= 0x80 }
            writeInteger(byte)
        } while value > 0
    }

    mutating func readMQTTVariableByteIntegerForFuzzing() throws -> Int {
        var value = 0
        for position in 0..<4 {
            guard let byte = readInteger(as: UInt8.self) else { throw FuzzDecodeError() }
            value |= Int(byte & 0x7F) << (7 * position)
            if byte & 0x80 == 0 { return value }
        }
        throw FuzzDecodeError()
    }
}

struct FuzzDecodeError: Error {}

@Sendable func propertiesSeeds() -> [Seed] {
    var seeds: [Seed] = []
    func add(_ name: String, _ context: PropertyContext, _ properties: Properties) {
        var buffer = ByteBuffer()
        properties.writeBlock(to: &buffer)
        let selector = UInt8(propertyContexts.firstIndex(of: context)!)
        seeds.append(Seed(name, [selector] + Array(buffer.readableBytesView)))
    }
    var publish = Properties()
    publish.payloadFormatIndicator = 1
    publish.messageExpiryIntervalSeconds = 3600
    publish.contentType = "application/json"
    publish.responseTopic = "reply/here"
    publish.correlationData = [0xDE, 0xAD]
    publish.appendSubscriptionIdentifier(1)
    publish.appendSubscriptionIdentifier(268_435_455)
    publish.topicAlias = 3
    publish.appendUserProperty(UserProperty("name", "value"))
    publish.appendUserProperty(UserProperty("name", "again"))
    add("publish", .publish, publish)

    var userProperties = Properties()
    for index in 0..<8 { userProperties.appendUserProperty(UserProperty("k\(index)", "")) }
    add("publish-user-properties", .publish, userProperties)
    add("disconnect-user-properties", .disconnect, userProperties)

    var connect = Properties()
    connect.sessionExpiryIntervalSeconds = 0xFFFF_FFFF
    connect.authenticationMethod = "SCRAM-SHA-1"
    connect.authenticationData = [1, 2, 3]
    connect.requestProblemInformation = 0
    connect.requestResponseInformation = 1
    connect.receiveMaximum = 100
    connect.topicAliasMaximum = 10
    connect.maximumPacketSize = 1 << 20
    add("connect", .connect, connect)

    var will = Properties()
    will.willDelayIntervalSeconds = 30
    will.payloadFormatIndicator = 0
    will.contentType = "text/plain"
    add("will", .will, will)

    var connAck = Properties()
    connAck.sessionExpiryIntervalSeconds = 60
    connAck.assignedClientIdentifier = "auto-7"
    connAck.serverKeepAliveSeconds = 20
    connAck.responseInformation = "info"
    connAck.serverReference = "other:1883"
    connAck.reasonString = "ok"
    connAck.maximumQoS = 1
    connAck.retainAvailable = 1
    connAck.wildcardSubscriptionAvailable = 1
    connAck.subscriptionIdentifierAvailable = 0
    connAck.sharedSubscriptionAvailable = 1
    add("connack", .connAck, connAck)

    var subscribe = Properties()
    subscribe.appendSubscriptionIdentifier(77)
    add("subscribe", .subscribe, subscribe)

    var reason = Properties()
    reason.reasonString = "no"
    reason.appendUserProperty(UserProperty("a", "b"))
    for context in [PropertyContext.pubAck, .pubRec, .pubRel, .pubComp, .subAck, .unsubAck, .auth] {
        add("\(context)-reason", context, reason)
    }
    add("unsubscribe-empty", .unsubscribe, Properties())
    return seeds
}
