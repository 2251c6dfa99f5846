import Crypto
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import FoxCluster

/// A committee of fresh P-256 keys on 127.0.0.1, indexed like the real one (keys sorted by
/// their DER), with a digest over the entries (any 32 bytes both sides share would do).
struct TestCommittee {
    var keys: [P256.Signing.PrivateKey]
    var members: [ClusterMember]

    init(ports: [Int]) {
        self.init(keys: ports.map { _ in P256.Signing.PrivateKey() }, ports: ports)
    }

    /// The given keys, one per port (sorted by DER: pass them sorted to know who is who).
    init(keys: [P256.Signing.PrivateKey], ports: [Int]) {
        let keys = keys.sorted {
            $0.publicKey.derRepresentation.lexicographicallyPrecedes($1.publicKey.derRepresentation)
        }
        self.keys = keys
        members = zip(keys, ports).enumerated().map { position, pair in
            ClusterMember(
                index: UInt16(position), bookPosition: position, address: "127.0.0.1:\(pair.1)",
                publicKeyDER: Array(pair.0.publicKey.derRepresentation))
        }
    }

    var entries: [ClusterBookEntry] {
        members.map { ClusterBookEntry(address: $0.address, publicKeyDER: $0.publicKeyDER) }
    }

    static func digest(_ entries: [ClusterBookEntry]) -> [UInt8] {
        var hash = SHA256()
        for entry in entries {
            hash.update(data: Array(entry.address.utf8) + [0] + entry.publicKeyDER)
        }
        return Array(hash.finalize())
    }

    /// What node `index`'s handshake uses (another key or book to play a misconfigured node).
    func handshakeContext(_ index: Int, key: P256.Signing.PrivateKey? = nil, entries: [ClusterBookEntry]? = nil)
        -> ClusterHandshakeContext
    {
        let entries = entries ?? self.entries
        return ClusterHandshakeContext(
            me: UInt16(index), members: members, publicKeys: keys.map(\.publicKey), key: key ?? keys[index],
            digest: Self.digest(entries), entries: entries)
    }

    /// Fast reconnects and a short handshake timeout, so that the tests wait little.
    func configuration(_ index: Int) -> ClusterTransport.Configuration {
        let port = ClusterTransport.splitAddress(members[index].address)!.port
        var configuration = ClusterTransport.Configuration(
            me: members[index], members: members, key: keys[index], bookDigest: Self.digest(entries),
            listenHost: "127.0.0.1", listenPort: port)
        configuration.reconnectBackoff = .init(initialMillis: 10, maxMillis: 100)
        configuration.handshakeTimeoutMillis = 2000
        configuration.randomUnit = { 0.5 }
        return configuration
    }
}

/// Free ports for transports that must know each other's addresses before they start. They
/// come from below the kernel's ephemeral range (32768 and up on Linux), where no outgoing
/// connection takes its source port: a port released by a test stays free for its transport,
/// and a dial to a port that is not listening can never connect to itself. A process-wide
/// counter keeps concurrent tests apart; a port some other process listens on is skipped.
func reservePorts(_ count: Int, group: any EventLoopGroup) async throws -> [Int] {
    var ports: [Int] = []
    while ports.count < count {
        let port = nextTestPort.withLock { next in
            defer { next = next + 1 < 32_000 ? next + 1 : 20_000 }
            return next
        }
        guard let channel = try? await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: port).get()
        else { continue }
        try await channel.close()
        ports.append(port)
    }
    return ports
}

private let nextTestPort = Mutex(Int.random(in: 20_000..<31_000))

/// What one transport delivered and logged, and the peer states it reported.
final class Recorder: Sendable {
    private let state = Mutex<(messages: [(from: UInt16, bytes: [UInt8])], logs: [String], peers: [(UInt16, Bool)])>(
        ([], [], []))

    func message(_ from: UInt16, _ bytes: [UInt8]) { state.withLock { $0.messages.append((from, bytes)) } }
    func log(_ line: String) { state.withLock { $0.logs.append(line) } }
    func peerState(_ peer: UInt16, _ connected: Bool) { state.withLock { $0.peers.append((peer, connected)) } }

    var messages: [(from: UInt16, bytes: [UInt8])] { state.withLock { $0.messages } }
    var logs: [String] { state.withLock { $0.logs } }
    var peerStates: [(UInt16, Bool)] { state.withLock { $0.peers } }

    func messages(from peer: UInt16) -> [[UInt8]] { messages.filter { $0.from == peer }.map(\.bytes) }

    var logger: Logger {
        var logger = Logger(label: "test") { _ in RecordingLogHandler(recorder: self) }
        logger.logLevel = .debug
        return logger
    }
}

struct RecordingLogHandler: LogHandler {
    let recorder: Recorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        recorder.log("\(event.level): \(event.message)")
    }
}

/// One running transport with what it recorded.
struct TestNode {
    var transport: ClusterTransport
    var recorder: Recorder

    init(_ configuration: ClusterTransport.Configuration, group: any EventLoopGroup) {
        let recorder = Recorder()
        self.recorder = recorder
        transport = ClusterTransport(
            configuration: configuration, group: group, logger: recorder.logger,
            onMessage: { recorder.message($0, $1) }, onPeerState: { recorder.peerState($0, $1) })
    }

    static func start(_ configuration: ClusterTransport.Configuration, group: any EventLoopGroup) async throws
        -> TestNode
    {
        let node = TestNode(configuration, group: group)
        try await node.transport.start()
        return node
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting until \(what)" }
}

/// Polls `condition` until it holds, failing after `seconds`: no fixed sleeps in the tests.
func waitUntil(_ what: String, seconds: Double = 5, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// Runs `body` with an event loop group shut down afterwards.
func withGroup<T>(threads: Int = 2, _ body: (MultiThreadedEventLoopGroup) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    do {
        let result = try await body(group)
        try await group.shutdownGracefully()
        return result
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}

extension Array where Element == UInt8 {
    init(message text: String) { self = Array(text.utf8) }
}
