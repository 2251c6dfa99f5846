import ArgumentParser
import FoxBroker
import FoxBrokerCore
import FoxBrokerStore
import FoxCluster
import FoxConsensus
import FoxStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// The cluster transport as the node drives it and as the consensus orderer sends through it.
extension ClusterTransport: ClusterService, ClusterLink {}

/// Hands transport callbacks to the orderer once it exists (the transport is made first).
final class OrdererMailbox: @unchecked Sendable {
    private let lock = NIOLock()
    private var orderer: ConsensusOrderer?

    func set(_ orderer: ConsensusOrderer) { lock.withLock { self.orderer = orderer } }
    /// The orderer once the node made it (after `BrokerNode.start`); nil for a single node.
    var current: ConsensusOrderer? { lock.withLock { orderer } }
    func receive(from peer: UInt16, _ bytes: [UInt8]) { lock.withLock { orderer }?.receive(from: peer, bytes) }
    func peerState(_ peer: UInt16, connected: Bool) { lock.withLock { orderer }?.peerState(peer, connected: connected) }
}

/// The ordering parameters every node of a cluster uses: they are bound into the committee
/// digest, so nodes with other values refuse each other.
enum ClusterParameters {
    static let ordering = OrderingParameters(checkpointInterval: 1000)
}

extension RunCommand {
    /// A cluster member's storage: the node's store holds the consensus tables beside the
    /// broker's; the core, the transport and the orderer are made here and started by the node.
    func clusterStorage(
        cluster: ClusterConfiguration, store: NodeStore, recovered: RecoveredState, mailbox: OrdererMailbox,
        logger: Logger
    ) throws -> NodeStorage {
        let committee = Committee(
            epoch: 0, keys: cluster.book.members.map(\.publicKeyDER), params: ClusterParameters.ordering)
        guard committee.publicKeys == cluster.book.members.map(\.publicKeyDER) else {
            throw ArgumentParser.ValidationError("internal: the address book's member order is not the committee's")
        }
        if committee.n <= 3 {
            logger.warning(
                "a cluster of \(committee.n) nodes tolerates no failed node: every node is needed for every commit. Use 4 or 7."
            )
        }
        let applied = try store.appliedCommitIndex()
        if recovered.lastIndex > 0 && applied == 0 {
            throw ArgumentParser.ValidationError(
                "\(store.directory) holds the store of a node that ran alone (\(recovered.lastIndex) log records, no cluster commits); a cluster member starts from an empty data directory (move it away, or pass --data-dir)"
            )
        }
        // A marker beside the key, outside the data directory: this key signed blocks before,
        // so a store without consensus data was wiped and must not sign its rounds again.
        let marker = MemberMarker(directory: directory, key: cluster.me.publicKeyDER)
        let ranBefore = marker.exists
        let image = try store.loadConsensusImage(committee: committee, ranBefore: ranBefore)
        if !image.initialized {
            logger.notice(
                "this node's store is new, wiped or restored: it asks its peers for its last round before signing anything (amnesia rule)"
            )
        }
        try marker.write()
        // Connection identifiers of this run must differ from every earlier run's, also after a
        // wiped store: the clock's seconds are a floor for the counter.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let incarnation = try store.nextIncarnation(atLeast: UInt32(clamping: now.tv_sec))

        let address = try HostPort(clusterAddr, option: "--cluster-addr")
        var transportConfiguration = ClusterTransport.Configuration(
            me: cluster.me, members: cluster.book.members, key: cluster.key, bookDigest: cluster.book.digest,
            listenHost: address.host, listenPort: address.port)
        if let clusterCert {
            do {
                transportConfiguration.tls = try ClusterTLS.load(
                    certificatePath: clusterCert, rootCertificatePath: clusterRootCert,
                    acceptedPeerCertificatePaths: clusterAcceptPeerWithCert, key: cluster.key,
                    members: cluster.book.members, nowSeconds: Int64(now.tv_sec))
            } catch {
                throw ArgumentParser.ValidationError(error.description)
            }
        } else if cluster.book.members.contains(where: { !HostPort.isLoopback($0.address) }) {
            logger.warning(
                "cluster traffic is not encrypted (no --cluster-cert): peers authenticate each other with their address-book keys, but anyone on the network can read the messages"
            )
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let transport = ClusterTransport(
            configuration: transportConfiguration, group: group, logger: logger,
            onMessage: { peer, bytes in mailbox.receive(from: peer, bytes) },
            onPeerState: { peer, connected in mailbox.peerState(peer, connected: connected) })
        if FaultFile.isEnabled() {
            let faults = FaultFile(path: directory + "/" + FaultFile.fileName, transport: transport, logger: logger)
            faults.start()
            logger.warning("test fault injection on: \(faults.path) can cut this node off from peers")
        }
        var local = LocalParameters()
        local.appSnapshots = true
        local.leaderTimeoutBase = leaderTimeoutMillis * 1_000_000
        let me = cluster.me.index
        let signer = P256BlockSigner(key: cluster.key)
        let verifier = try P256SignatureVerifier(committee: committee)
        let core = ConsensusCore(
            config: CoreConfig(committee: committee, me: me, local: local), signer: signer, verifier: verifier,
            image: image)
        let coreBox = CoreBox(core)
        let recoveredBox = RecoveredStateBox(recovered)
        var ordererConfiguration = ConsensusOrderer.Configuration()
        ordererConfiguration.logRetentionRecords = logRetentionRecords
        ordererConfiguration.willFailoverMillis = willFailoverSeconds * 1000
        if maxPendingBytes > 0 { ordererConfiguration.pendingBytesMax = maxPendingBytes }
        if ProcessEnvironment.all()["FOXMQ_TEST_BYZANTINE"] == "equivocate" {
            logger.warning("test Byzantine mode: this node signs two blocks for each of its rounds")
            ordererConfiguration.equivocationSigner = { digest in signer.sign(digest) }
        }
        let configuration = ordererConfiguration
        logger.info(
            "cluster member",
            metadata: [
                "node": "\(me)", "nodes": "\(committee.n)", "tolerates": "\(committee.f)",
                "clusterAddr": "\(clusterAddr)", "incarnation": "\(incarnation)",
                "appliedCommit": "\(applied)", "book": "\(cluster.book.path)",
                "clusterTLS": "\(transportConfiguration.tls == nil ? "off" : "on")",
            ])
        let role = ClusterRole(
            me: me, incarnation: incarnation, transport: ClusterTransportService(transport: transport, group: group)
        ) { sink, onFatal in
            let orderer = try ConsensusOrderer(
                me: me, incarnation: incarnation, core: coreBox.take(), recovered: recoveredBox.value, store: store,
                link: transport, clock: SystemClock(), sink: sink, configuration: configuration, logger: logger,
                onFatal: onFatal)
            if ProcessEnvironment.all()["FOXMQ_TEST_BYZANTINE"] == "forge" {
                logger.warning("test Byzantine mode: this node forges entries for other nodes' connections")
                orderer.byzantineForgery = true
            }
            mailbox.set(orderer)
            return orderer
        }
        return .cluster(role)
    }
}

/// The transport with its own event loop, stopped with it.
struct ClusterTransportService: ClusterService {
    let transport: ClusterTransport
    let group: MultiThreadedEventLoopGroup

    func start() async throws { try await transport.start() }
    func stop() async {
        await transport.stop()
        try? await group.shutdownGracefully()
    }
}

/// Carries the core (a value with non-Sendable parts) into the orderer's factory once.
final class CoreBox: @unchecked Sendable {
    private var core: ConsensusCore?
    init(_ core: ConsensusCore) { self.core = core }
    func take() -> ConsensusCore {
        guard let core else { preconditionFailure("the core is taken once") }
        self.core = nil
        return core
    }
}

/// `DIR/.member-KEYHASH`: this node's key has signed blocks in this cluster. Kept in the config
/// directory, beside the key, so that wiping the data directory does not wipe it.
struct MemberMarker {
    let path: String

    init(directory: String, key: [UInt8]) {
        let digest = Digest.sha256(key)
        path = directory + "/.member-" + String(digest.description.prefix(16))
    }

    var exists: Bool { access(path, F_OK) == 0 }

    func write() throws {
        guard !exists else { return }
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard file >= 0 else {
            throw ArgumentParser.ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let text = Array("this node's key has signed blocks: a store without consensus data is a wiped one\n".utf8)
        _ = text.withUnsafeBytes { Glibc.write(file, $0.baseAddress, $0.count) }
        fsync(file)
        close(file)
    }
}
