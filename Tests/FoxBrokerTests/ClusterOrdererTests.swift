import Crypto
import Foundation
import FoxBrokerStore
import FoxConsensus
import FoxMQTT
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import FoxBroker
@testable import FoxBrokerCore
@testable import FoxStore

/// Carries consensus messages between orderers in one process; a node can be cut off.
final class MemoryHub: @unchecked Sendable {
    private let lock = NIOLock()
    private var nodes: [UInt16: ConsensusOrderer] = [:]
    private var cut: Set<UInt16> = []

    func attach(_ node: UInt16, _ orderer: ConsensusOrderer?) { lock.withLock { nodes[node] = orderer } }
    func setCut(_ node: UInt16, _ isCut: Bool) {
        lock.withLock {
            if isCut { cut.insert(node) } else { cut.remove(node) }
        }
    }

    func deliver(from: UInt16, to: UInt16, _ bytes: [UInt8]) {
        let target = lock.withLock { cut.contains(from) || cut.contains(to) ? nil : nodes[to] }
        target?.receive(from: from, bytes)
    }

    func link(for node: UInt16, n: Int) -> MemoryLink { MemoryLink(me: node, n: n, hub: self) }
}

struct MemoryLink: ClusterLink {
    let me: UInt16
    let n: Int
    let hub: MemoryHub
    func send(to peer: UInt16, _ bytes: [UInt8]) { hub.deliver(from: me, to: peer, bytes) }
    func broadcast(_ bytes: [UInt8]) {
        for peer in 0..<UInt16(n) where peer != me { hub.deliver(from: me, to: peer, bytes) }
    }
}

/// Collects the actions for one node's connections, in release order.
final class NodeSink: ActionSink, @unchecked Sendable {
    let node: UInt32
    private let actions = NIOLockedValueBox<[BrokerAction]>([])
    init(node: UInt32) { self.node = node }
    var released: [BrokerAction] { actions.withLockedValue { $0 } }
    func dispatch(_ batch: [BrokerAction], wakeups: inout PendingWakeups) {
        let mine = batch.filter { $0.connection.node == node }
        actions.withLockedValue { $0.append(contentsOf: mine) }
    }
}

struct WallClock: BrokerClock {
    func nowMillis() -> UInt64 { SystemClock().nowMillis() }
}

/// A cluster of consensus orderers in one process over real LMDB stores and P-256 keys: the
/// orderer, its store layout and its output commit, without sockets.
final class TestCluster: @unchecked Sendable {
    let n: Int
    let keys: [P256.Signing.PrivateKey]
    let committee: Committee
    let hub = MemoryHub()
    let directories: [String]
    var orderers: [ConsensusOrderer?]
    var stores: [NodeStore?]
    var sinks: [NodeSink]

    init(n: Int, gcDepth: UInt64 = 5000) throws {
        self.n = n
        let generated = (0..<n).map { _ in P256.Signing.PrivateKey() }
        let params = OrderingParameters(gcDepth: gcDepth, checkpointInterval: 10)
        committee = Committee(epoch: 0, keys: generated.map { Array($0.publicKey.derRepresentation) }, params: params)
        // Key of author i = the key at committee position i.
        keys = committee.publicKeys.map { der in
            generated.first { Array($0.publicKey.derRepresentation) == der }!
        }
        directories = (0..<n).map { _ in
            FileManager.default.temporaryDirectory.appendingPathComponent("foxmq-cluster-\(UUID())").path
        }
        orderers = Array(repeating: nil, count: n)
        stores = Array(repeating: nil, count: n)
        sinks = (0..<n).map { NodeSink(node: UInt32($0)) }
        for i in 0..<n { try startNode(i) }
    }

    var configuration = ConsensusOrderer.Configuration()

    func startNode(_ i: Int, incarnation: UInt32 = 1) throws {
        let store = try NodeStore(directory: directories[i], options: LMDBOptions(sync: false))
        let recovered = try store.recover(defaultLimits: BrokerLimits()) { _ in }
        var local = LocalParameters()
        local.leaderTimeoutBase = 20_000_000
        local.appSnapshots = true
        let core = ConsensusCore(
            config: CoreConfig(committee: committee, me: UInt16(i), local: local),
            signer: P256BlockSigner(key: keys[i]), verifier: try P256SignatureVerifier(committee: committee),
            image: try store.loadConsensusImage(committee: committee))
        sinks[i] = NodeSink(node: UInt32(i))
        let orderer = try ConsensusOrderer(
            me: UInt16(i), incarnation: incarnation, core: core, recovered: recovered, store: store,
            link: hub.link(for: UInt16(i), n: n), clock: WallClock(), sink: sinks[i], configuration: configuration,
            logger: Logger(label: "node\(i)"), onFatal: { reason in Issue.record("node \(i) fatal: \(reason)") })
        stores[i] = store
        orderers[i] = orderer
        hub.attach(UInt16(i), orderer)
        orderer.start()
    }

    func stopNode(_ i: Int) async {
        hub.attach(UInt16(i), nil)
        await orderers[i]?.stop()
        orderers[i] = nil
        stores[i]?.close()
        stores[i] = nil
    }

    func stopAll() async {
        for i in 0..<n { await stopNode(i) }
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
    }

    func waitUntilStarted(_ nodes: [Int]) async {
        for i in nodes { _ = await orderers[i]!.waitUntilStarted() }
    }

    static func connection(_ node: Int, _ local: UInt64, incarnation: UInt32 = 1) -> ConnectionID {
        ConnectionID(node: UInt32(node), incarnation: incarnation, local: local)
    }

    func connect(node: Int, conn: UInt64, client: String, cleanStart: Bool = true, expiry: UInt32 = 0) {
        orderers[node]!.submit(
            .sessionOpen(
                SessionOpen(
                    connection: Self.connection(node, conn), clientIdentifier: client, protocolVersion: .v5,
                    cleanStart: cleanStart, sessionExpiryIntervalSeconds: expiry, will: nil, receiveMaximum: 1000,
                    maximumPacketSize: nil)))
    }

    func subscribe(node: Int, conn: UInt64, filter: String) {
        orderers[node]!.submit(
            .subscribe(
                Self.connection(node, conn),
                Subscribe(
                    packetIdentifier: 1,
                    subscriptions: [
                        TopicSubscription(topicFilter: filter, options: SubscriptionOptions(qos: .atLeastOnce))
                    ])
            ))
    }

    func publish(node: Int, conn: UInt64, topic: String, payload: String, packetIdentifier: UInt16) {
        orderers[node]!.submit(
            .publish(
                Self.connection(node, conn),
                Publish(
                    topicName: topic, payload: ByteBuffer(string: payload), qos: .atLeastOnce,
                    packetIdentifier: packetIdentifier)))
    }

    /// Payloads delivered to a connection of a node, in order.
    func payloads(node: Int, conn: UInt64) -> [String] {
        sinks[node].released.compactMap { action in
            guard case .send(let connection, .publish(let publish)) = action, connection == Self.connection(node, conn)
            else { return nil }
            return String(buffer: publish.payload)
        }
    }

    func packets(node: Int, conn: UInt64) -> [Packet] {
        sinks[node].released.compactMap { action in
            guard case .send(let connection, let packet) = action, connection == Self.connection(node, conn) else {
                return nil
            }
            return packet
        }
    }

    func hasSubAck(node: Int, conn: UInt64) -> Bool {
        packets(node: node, conn: conn).contains { if case .subAck = $0 { true } else { false } }
    }

    /// Polls until `condition` holds or the deadline passes.
    static func eventually(seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return condition()
    }

    /// Waits until the given nodes have applied the same commit and stay there, and returns
    /// their digests.
    func settledDigests(_ nodes: [Int]) async -> [(commitIndex: UInt64, logIndex: UInt64, digest: [UInt8])] {
        var last: [(commitIndex: UInt64, logIndex: UInt64, digest: [UInt8])] = []
        _ = await Self.eventually(seconds: 30) {
            let digests = nodes.map { orderers[$0]!.stateDigest() }
            defer { last = digests }
            return Set(digests.map(\.commitIndex)).count == 1
                && last.map(\.commitIndex) == digests.map(\.commitIndex)
        }
        return last
    }
}

@Suite(.serialized) struct ClusterOrdererTests {
    @Test(.timeLimit(.minutes(2)))
    func fourNodesDeliverTheSameSequenceEverywhere() async throws {
        let cluster = try TestCluster(n: 4)
        await cluster.waitUntilStarted([0, 1, 2, 3])
        cluster.connect(node: 0, conn: 1, client: "sub-a")
        cluster.subscribe(node: 0, conn: 1, filter: "t/#")
        cluster.connect(node: 1, conn: 1, client: "sub-b")
        cluster.subscribe(node: 1, conn: 1, filter: "t/#")
        #expect(
            await TestCluster.eventually { cluster.hasSubAck(node: 0, conn: 1) && cluster.hasSubAck(node: 1, conn: 1) })
        cluster.connect(node: 2, conn: 1, client: "pub-c")
        cluster.connect(node: 3, conn: 1, client: "pub-d")
        for k in 1...40 {
            cluster.publish(node: 2, conn: 1, topic: "t/c", payload: "c\(k)", packetIdentifier: UInt16(k))
            cluster.publish(node: 3, conn: 1, topic: "t/d", payload: "d\(k)", packetIdentifier: UInt16(k))
        }
        #expect(
            await TestCluster.eventually {
                cluster.payloads(node: 0, conn: 1).count == 80 && cluster.payloads(node: 1, conn: 1).count == 80
            })
        let a = cluster.payloads(node: 0, conn: 1)
        let b = cluster.payloads(node: 1, conn: 1)
        #expect(a == b)
        // Per publisher, the order it published in.
        #expect(a.filter { $0.hasPrefix("c") } == (1...40).map { "c\($0)" })
        #expect(a.filter { $0.hasPrefix("d") } == (1...40).map { "d\($0)" })
        // Each publisher got its 40 PUBACKs, in order, and only on its own node (each node
        // releases them after its own write, so they may come after the deliveries elsewhere).
        let pubAcks = { cluster.packets(node: 2, conn: 1).filter { if case .pubAck = $0 { true } else { false } } }
        #expect(await TestCluster.eventually { pubAcks().count == 40 })
        let acks = cluster.packets(node: 2, conn: 1).compactMap {
            if case .pubAck(let ack) = $0 { ack.packetIdentifier } else { nil }
        }
        #expect(acks == (1...40).map { UInt16($0) })
        #expect(cluster.packets(node: 0, conn: 1).allSatisfy { if case .pubAck = $0 { false } else { true } })

        let digests = await cluster.settledDigests([0, 1, 2, 3])
        #expect(Set(digests.map(\.digest)).count == 1, "every node holds the same state")
        #expect(Set(digests.map(\.logIndex)).count == 1, "every node logged the same records")
        await cluster.stopAll()
    }

    @Test(.timeLimit(.minutes(2)))
    func anEntryNamingAnotherNodesConnectionIsANoOp() async throws {
        let cluster = try TestCluster(n: 4)
        await cluster.waitUntilStarted([0, 1, 2, 3])
        cluster.connect(node: 0, conn: 1, client: "victim")
        cluster.subscribe(node: 0, conn: 1, filter: "x")
        #expect(await TestCluster.eventually { cluster.hasSubAck(node: 0, conn: 1) })
        // Node 1 orders a close of node 0's connection: forged, so nothing happens.
        cluster.orderers[1]!.submit(
            .sessionClose(TestCluster.connection(0, 1), SessionClose(cause: .normalDisconnect)))
        cluster.connect(node: 1, conn: 1, client: "pub")
        cluster.publish(node: 1, conn: 1, topic: "x", payload: "after", packetIdentifier: 1)
        #expect(await TestCluster.eventually { cluster.payloads(node: 0, conn: 1) == ["after"] })
        #expect(cluster.orderers[0]!.forgedEntries == 1)
        // An admin change claiming to come from node 0, ordered by node 1: forged too.
        cluster.orderers[1]!.submit(
            .admin(AdminEntry(node: 0, sequence: 1, change: .setUser(name: "mallory", passwordHash: "$argon2id$x"))))
        cluster.publish(node: 1, conn: 1, topic: "x", payload: "later", packetIdentifier: 2)
        #expect(await TestCluster.eventually { cluster.payloads(node: 0, conn: 1) == ["after", "later"] })
        #expect(cluster.orderers[0]!.forgedEntries == 2)
        #expect(cluster.orderers[0]!.withState { $0.admin.users.isEmpty })
        await cluster.stopAll()
    }

    // Goal: a subscriber's acknowledgements submitted together travel as one entry of several
    // (batched), and every node applies each of them: the session's in-flight window empties
    // on every node, and the states stay equal.
    @Test(.timeLimit(.minutes(2)))
    func acknowledgementsAreBatchedAndAppliedEverywhere() async throws {
        let cluster = try TestCluster(n: 4)
        await cluster.waitUntilStarted([0, 1, 2, 3])
        cluster.connect(node: 0, conn: 1, client: "sub", cleanStart: false, expiry: 3600)
        cluster.subscribe(node: 0, conn: 1, filter: "b/#")
        #expect(await TestCluster.eventually { cluster.hasSubAck(node: 0, conn: 1) })
        cluster.connect(node: 1, conn: 1, client: "pub")
        for k in 1...200 {
            cluster.publish(node: 1, conn: 1, topic: "b/1", payload: "m\(k)", packetIdentifier: UInt16(k))
        }
        #expect(await TestCluster.eventually { cluster.payloads(node: 0, conn: 1).count == 200 })
        let identifiers = cluster.packets(node: 0, conn: 1).compactMap { packet -> UInt16? in
            if case .publish(let publish) = packet { publish.packetIdentifier } else { nil }
        }
        #expect(identifiers.count == 200)
        func inflight(_ node: Int) -> Int {
            cluster.orderers[node]!.withState { $0.sessions[ExactString("sub")]?.outbound.inflight.count ?? -1 }
        }
        #expect(inflight(0) > 0)
        for identifier in identifiers {
            cluster.orderers[0]!.submit(.pubAck(TestCluster.connection(0, 1), packetIdentifier: identifier))
        }
        #expect(await TestCluster.eventually { (0..<4).allSatisfy { inflight($0) == 0 } })
        #expect(cluster.orderers[0]!.acknowledgementBatches >= 1)
        let digests = await cluster.settledDigests([0, 1, 2, 3])
        #expect(Set(digests.map(\.digest)).count == 1)
        await cluster.stopAll()
    }

    @Test(.timeLimit(.minutes(3)))
    func aRestartedNodeCatchesUpToTheSameState() async throws {
        let cluster = try TestCluster(n: 4)
        await cluster.waitUntilStarted([0, 1, 2, 3])
        cluster.connect(node: 0, conn: 1, client: "sub", cleanStart: false, expiry: 3600)
        cluster.subscribe(node: 0, conn: 1, filter: "r/#")
        // Entries of different nodes have no order until committed: publish after the SUBACK.
        #expect(await TestCluster.eventually { cluster.hasSubAck(node: 0, conn: 1) })
        cluster.connect(node: 1, conn: 1, client: "pub")
        for k in 1...20 {
            cluster.publish(node: 1, conn: 1, topic: "r/1", payload: "a\(k)", packetIdentifier: UInt16(k))
        }
        #expect(await TestCluster.eventually { cluster.payloads(node: 0, conn: 1).count == 20 })

        // Node 3 goes down; the other three keep committing (quorum 3 of 4).
        await cluster.stopNode(3)
        for k in 21...60 {
            cluster.publish(node: 1, conn: 1, topic: "r/1", payload: "a\(k)", packetIdentifier: UInt16(k))
        }
        #expect(await TestCluster.eventually { cluster.payloads(node: 0, conn: 1).count == 60 })

        // Back from its own disk, with a new incarnation: it replays, then catches up by block sync.
        try cluster.startNode(3, incarnation: 2)
        #expect(await cluster.orderers[3]!.waitUntilStarted())
        let digests = await cluster.settledDigests([0, 1, 2, 3])
        #expect(Set(digests.map(\.digest)).count == 1, "the restarted node reached the same state")
        #expect(cluster.payloads(node: 3, conn: 1).isEmpty)
        await cluster.stopAll()
    }

    @Test(.timeLimit(.minutes(3)))
    func aNodeBeyondTheRetainedBlocksFetchesTheBrokerState() async throws {
        // A short window: a few hundred commits take a stopped node past what its peers keep.
        let cluster = try TestCluster(n: 4, gcDepth: 20)
        await cluster.waitUntilStarted([0, 1, 2, 3])
        cluster.connect(node: 0, conn: 1, client: "sub", cleanStart: false, expiry: 3600)
        cluster.subscribe(node: 0, conn: 1, filter: "s/#")
        #expect(await TestCluster.eventually { cluster.hasSubAck(node: 0, conn: 1) })
        await cluster.stopNode(3)
        // A user is added while node 3 is away: it must come with the transferred state.
        cluster.orderers[2]!.submit(
            .admin(AdminEntry(node: 2, sequence: 1, change: .setUser(name: "alice", passwordHash: "$argon2id$a"))))
        cluster.connect(node: 1, conn: 1, client: "pub")
        // One at a time: each publish its own commits, so rounds move far past the window.
        for k in 1...120 {
            cluster.publish(node: 1, conn: 1, topic: "s/\(k % 5)", payload: "v\(k)", packetIdentifier: UInt16(k))
            _ = await TestCluster.eventually(seconds: 5) { cluster.payloads(node: 0, conn: 1).count == k }
        }
        #expect(cluster.payloads(node: 0, conn: 1).count == 120)
        try cluster.startNode(3, incarnation: 2)
        #expect(await cluster.orderers[3]!.waitUntilStarted())
        let digests = await cluster.settledDigests([0, 1, 2, 3])
        #expect(Set(digests.map(\.digest)).count == 1, "the node that fetched the state holds the same state")
        #expect(cluster.orderers[3]!.stateTransfers == 1)
        #expect(cluster.orderers[3]!.withState { $0.admin.users } == ["alice": "$argon2id$a"])
        await cluster.stopAll()
    }

    @Test(.timeLimit(.minutes(2)))
    func onlyANodeThatReachesAQuorumOrdersThePeersLoss() async throws {
        let cluster = try TestCluster(n: 4)
        await cluster.waitUntilStarted([0, 1, 2, 3])
        cluster.connect(node: 3, conn: 1, client: "on-three", expiry: 0)
        cluster.connect(node: 0, conn: 1, client: "on-zero", expiry: 0)
        #expect(await TestCluster.eventually { cluster.orderers[0]!.withState { $0.sessionCount } == 2 })
        let peers: [UInt16] = [1, 2, 3]
        // Node 0 believes itself cut off from everyone: it must not order anyone's loss.
        for peer in peers { cluster.orderers[0]!.peerState(peer, connected: false) }
        try await Task.sleep(nanoseconds: 300_000_000)
        cluster.orderers[0]!.tickIfDueAfter(failoverMillis: 100)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(cluster.orderers[0]!.withState { $0.attachedIncarnation(of: 3) } == 1)
        // Node 1 reaches nodes 0 and 2 (with itself a quorum of 3) and not node 3: node 3 is lost.
        cluster.orderers[1]!.peerState(0, connected: true)
        cluster.orderers[1]!.peerState(2, connected: true)
        cluster.orderers[1]!.peerState(3, connected: false)
        try await Task.sleep(nanoseconds: 300_000_000)
        cluster.orderers[1]!.tickIfDueAfter(failoverMillis: 100)
        #expect(
            await TestCluster.eventually {
                cluster.orderers[0]!.withState { $0.attachedIncarnation(of: 3) } == nil
            })
        #expect(cluster.orderers[0]!.withState { $0.attachedIncarnation(of: 0) } == 1, "node 0's clients stay")
        await cluster.stopAll()
    }

    /// A node back from isolation reaches a quorum again before its last link returns: the
    /// straggler was unreachable from it for the whole partition, but only the time since it
    /// regained a majority counts, so the straggler is not lost unless it stays away that long.
    @Test func aNodeBackFromIsolationCountsOnlyTheTimeInTheMajority() async throws {
        let cluster = try TestCluster(n: 4)
        await cluster.waitUntilStarted([0, 1, 2, 3])
        cluster.connect(node: 3, conn: 1, client: "on-three", expiry: 0)
        #expect(await TestCluster.eventually { cluster.orderers[0]!.withState { $0.sessionCount } == 1 })
        for peer: UInt16 in [1, 2, 3] { cluster.orderers[0]!.peerState(peer, connected: false) }
        try await Task.sleep(nanoseconds: 400_000_000)
        // Back: nodes 1 and 2 first (a quorum with itself), node 3 not yet.
        cluster.orderers[0]!.peerState(1, connected: true)
        cluster.orderers[0]!.peerState(2, connected: true)
        cluster.orderers[0]!.tickIfDueAfter(failoverMillis: 300)
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(cluster.orderers[0]!.withState { $0.attachedIncarnation(of: 3) } == 1, "node 3 lost for the partition")
        // Node 3 stays away for the failover time from now on: now it is lost.
        try await Task.sleep(nanoseconds: 200_000_000)
        cluster.orderers[0]!.tickIfDueAfter(failoverMillis: 300)
        #expect(
            await TestCluster.eventually {
                cluster.orderers[0]!.withState { $0.attachedIncarnation(of: 3) } == nil
            })
        await cluster.stopAll()
    }
}
