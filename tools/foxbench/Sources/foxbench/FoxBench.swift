import ArgumentParser
import Foundation
import FoxBenchCore
import FoxMQTT

extension TopicMode: ExpressibleByArgument {}
extension TreeFilter: ExpressibleByArgument {}

@main
struct FoxBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "foxbench",
        abstract: "An MQTT load generator: throughput, latency, loss, duplicates and order against any broker.",
        discussion: """
            Modes (default: publish/subscribe):
              publish/subscribe  -P publishers and -S subscribers exchange stamped messages.
              --retained N       publish N retained topics, then time a '#' subscription receiving all.
              --idle-connections N  open N connections that only CONNECT, hold them --hold seconds.

            Examples:
              foxbench --broker 127.0.0.1:1883 -P 50 -S 1 --qos 1 --duration 10
              foxbench -P 1 -S 50 --topic single --qos 0 --rate 1000 --count 20000 --json
              foxbench -P 4 -S 8 --topic tree --tree-filter leaf --tree-width 8
              foxbench --retained 100000 --qos 1 --sub-qos 0
              foxbench --idle-connections 10000 --hold 10 --broker-pid $(pidof mosquitto)
            """)

    @Option(name: .shortAndLong, help: "Broker address HOST:PORT.")
    var broker = "127.0.0.1:1883"

    @Option(
        help:
            "Fairness: a delivery after another publisher's message sent more than this many milliseconds later counts as an inversion."
    )
    var fairnessThresholdMs: Double = 5

    @Option(
        name: .customLong("also-broker"),
        help: "Another node of the same cluster (repeatable): connections go round-robin over --broker and these.")
    var alsoBroker: [String] = []

    @Option(name: [.customLong("mqtt")], help: "MQTT protocol version: 3.1.1 or 5.")
    var mqttVersion = "3.1.1"

    @Option(name: .shortAndLong, help: "Username.")
    var username: String?

    @Option(name: .long, help: "Password.")
    var password: String?

    @Option(name: [.customShort("P"), .long], help: "Publisher connections.")
    var publishers = 1

    @Option(name: [.customShort("S"), .long], help: "Subscriber connections.")
    var subscribers = 1

    @Option(name: .shortAndLong, help: "QoS of the publishes (0, 1 or 2).")
    var qos = 0

    @Option(name: .customLong("sub-qos"), help: "QoS of the subscriptions (default: --qos).")
    var subQoS: Int?

    @Option(help: "Payload bytes (at least 24: the stamp).")
    var payload = 64

    @Option(help: "Topic pattern: single (one topic for all), per-publisher (bench/<p>), tree (bench/<p>/<k>).")
    var topic: TopicMode = .single

    @Option(name: .customLong("tree-width"), help: "Tree: leaves per publisher (k in bench/<p>/<k>).")
    var treeWidth = 10

    @Option(
        name: .customLong("tree-filter"),
        help: "Tree: subscriber filter: all (bench/#), publisher (bench/<p>/+), leaf (bench/+/<k>).")
    var treeFilter: TreeFilter = .publisher

    @Option(name: .customLong("topic-prefix"), help: "First topic level.")
    var topicPrefix = "bench"

    @Option(help: "Offered messages per second per publisher (default: as fast as the broker allows).")
    var rate: Double?

    @Option(help: "QoS 1/2 without --rate: unacknowledged messages per publisher.")
    var window = 64

    @Option(
        name: .customLong("outstanding-bytes"),
        help: "QoS 0 without --rate: bytes a publisher may have queued unwritten before it pauses.")
    var outstandingBytes = 65_536

    @Option(
        name: .customLong("e2e-window"),
        help:
            "Without --rate: deliveries outstanding (sent, not yet received by a subscriber) at most, shared equally by the publishers (0: only the QoS 1/2 window and the QoS 0 write buffer bound them)."
    )
    var endToEndWindow = 2000

    @Option(name: .shortAndLong, help: "Messages per publisher (instead of --duration).")
    var count: UInt64?

    @Option(name: .shortAndLong, help: "Seconds of publishing (when no --count).")
    var duration: Double = 10

    @Option(help: "Seconds to wait for acks and deliveries after they stop coming in.")
    var drain: Double = 3

    @Option(
        name: .customLong("connect-rate"),
        help: "New connections per second (default: unlimited, --connect-concurrency at a time).")
    var connectRate: Double?

    @Option(name: .customLong("connect-concurrency"), help: "Handshakes in progress at once.")
    var connectConcurrency = 128

    @Option(help: "Keepalive seconds of the connections (idle connections: 300).")
    var keepalive: Int?

    @Option(
        name: .customLong("retained"),
        help: "Retained storm: publish N retained topics, then subscribe with '#' and time them all arriving.")
    var retainedCount: Int?

    @Option(name: .customLong("idle-connections"), help: "Open N connections that only CONNECT and stay.")
    var idleConnections: Int?

    @Option(help: "Idle connections: seconds to hold them once all are up.")
    var hold: Double = 10

    @Option(
        name: .customLong("broker-pid"),
        help: "PID of the broker process on this machine: report its VmRSS before and after.")
    var brokerPID: Int32?

    @Option(name: .customLong("client-id-prefix"), help: "Client identifiers are PREFIX-<run>-p<i>/s<i>/i<i>.")
    var clientIDPrefix = "foxbench"

    @Flag(help: "Print the report as JSON on stdout.")
    var json = false

    @Flag(help: "No progress lines on stderr.")
    var quiet = false

    func validate() throws {
        guard ["3.1.1", "3", "4", "5", "5.0"].contains(mqttVersion) else {
            throw ValidationError("--mqtt must be 3.1.1 or 5, not '\(mqttVersion)'.")
        }
        _ = try hostPort()
        guard (0...2).contains(qos) else { throw ValidationError("--qos must be 0, 1 or 2.") }
        if let subQoS, !(0...2).contains(subQoS) { throw ValidationError("--sub-qos must be 0, 1 or 2.") }
        guard payload >= 24 && payload <= 256 * 1024 * 1024 else {
            throw ValidationError("--payload must be at least 24 bytes (the timestamp and sequence stamp).")
        }
        guard publishers >= 0, subscribers >= 0 else {
            throw ValidationError("--publishers and --subscribers must not be negative.")
        }
        if retainedCount == nil && idleConnections == nil && publishers < 1 {
            throw ValidationError("--publishers must be at least 1.")
        }
        guard (1...65535).contains(window) else { throw ValidationError("--window must be 1...65535.") }
        guard treeWidth >= 1 else { throw ValidationError("--tree-width must be at least 1.") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive.") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1.") }
        guard duration > 0, drain >= 0, hold >= 0 else {
            throw ValidationError("--duration must be positive; --drain and --hold not negative.")
        }
        if let connectRate, !(connectRate > 0) { throw ValidationError("--connect-rate must be positive.") }
        guard connectConcurrency >= 1 else { throw ValidationError("--connect-concurrency must be at least 1.") }
        guard endToEndWindow >= 0 else { throw ValidationError("--e2e-window must not be negative.") }
        guard outstandingBytes >= 1024 else { throw ValidationError("--outstanding-bytes must be at least 1024.") }
        if let keepalive, !(0...65535).contains(keepalive) { throw ValidationError("--keepalive must be 0...65535.") }
        if retainedCount != nil && idleConnections != nil {
            throw ValidationError("--retained and --idle-connections are separate modes: pick one.")
        }
        if let retainedCount, retainedCount < 1 { throw ValidationError("--retained must be at least 1.") }
        if let idleConnections, idleConnections < 1 { throw ValidationError("--idle-connections must be at least 1.") }
        guard !topicPrefix.isEmpty, !topicPrefix.contains("#"), !topicPrefix.contains("+") else {
            throw ValidationError("--topic-prefix must be a non-empty topic without wildcards.")
        }
    }

    func hostPort(_ broker: String? = nil) throws -> (String, Int) {
        let broker = broker ?? self.broker
        guard let colon = broker.lastIndex(of: ":"), let port = Int(broker[broker.index(after: colon)...]),
            (1...65535).contains(port), colon != broker.startIndex
        else { throw ValidationError("--broker must be HOST:PORT, not '\(broker)'.") }
        var host = String(broker[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    func makeConfig() throws -> BenchConfig {
        var c = BenchConfig()
        (c.host, c.port) = try hostPort()
        c.moreBrokers = try alsoBroker.map { try hostPort($0) }
        c.fairnessThresholdNanos = UInt64(max(0, fairnessThresholdMs) * 1_000_000)
        c.version = mqttVersion.hasPrefix("5") ? .v5 : .v311
        c.username = username
        c.password = password
        c.publishers = publishers
        c.subscribers = subscribers
        c.qos = QoS(rawValue: UInt8(qos))!
        c.subscriberQoS = subQoS.map { QoS(rawValue: UInt8($0))! }
        c.payloadSize = payload
        c.topics = TopicPlan(
            prefix: topicPrefix, mode: topic, publishers: max(1, publishers), treeWidth: treeWidth,
            treeFilter: treeFilter)
        c.ratePerPublisher = rate
        c.window = window
        c.outstandingBytes = outstandingBytes
        c.endToEndWindow = endToEndWindow
        c.count = count
        c.durationSeconds = duration
        c.drainSeconds = drain
        c.connectRate = connectRate
        c.connectConcurrency = connectConcurrency
        c.brokerPID = brokerPID
        c.progress = !quiet
        c.clientIDPrefix = clientIDPrefix
        c.keepAliveSeconds = UInt16(keepalive ?? 60)
        if let retainedCount {
            c.mode = .retained
            c.retainedCount = retainedCount
            c.count = UInt64(retainedCount)
            c.publishers = 1
            c.subscribers = 1
            c.topics = TopicPlan(prefix: topicPrefix, mode: .single, publishers: 1)
            c.drainSeconds = max(drain, 10)
        }
        if let idleConnections {
            c.mode = .idle
            c.idleConnections = idleConnections
            c.holdSeconds = hold
            c.keepAliveSeconds = UInt16(keepalive ?? 300)
        }
        return c
    }

    func run() async throws {
        let config = try makeConfig()
        raiseOpenFileLimit()
        let run = BenchRun(config: config) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        let report: Report
        do {
            report = try await run.run()
        } catch let error as BenchError {
            FileHandle.standardError.write(Data("foxbench: error: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(report)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(report.summary)
        }
    }
}
