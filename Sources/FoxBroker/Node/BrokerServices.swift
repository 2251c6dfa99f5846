import FoxBrokerCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What every connection of a node shares: the orderer, the registry, the credential check,
/// the limits, a thread pool for blocking work, and a logger.
final class BrokerServices: Sendable {
    /// One reference shared by every connection's state machine.
    let sharedLimits: Immutable<ConnectionLimits>
    var limits: ConnectionLimits { sharedLimits.value }
    let orderer: any Orderer
    let registry: ConnectionRegistry
    let authenticator: any Authenticator
    /// The access rules, when the authenticator is the admin database's directory.
    let access: AdminDirectory?
    let threadPool: NIOThreadPool
    let logger: Logger
    let metrics: BrokerMetrics
    private let identifierCounter = NIOLockedValueBox<UInt64>(0)
    private let identifierPrefix: String
    private let sweepers = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<DeadlineSweeper>]>([:])

    init(
        limits: ConnectionLimits, orderer: any Orderer, registry: ConnectionRegistry,
        authenticator: any Authenticator, threadPool: NIOThreadPool, logger: Logger,
        metrics: BrokerMetrics = BrokerMetrics()
    ) {
        self.metrics = metrics
        self.sharedLimits = Immutable(limits)
        self.orderer = orderer
        self.registry = registry
        self.authenticator = authenticator
        self.access = authenticator as? AdminDirectory
        self.threadPool = threadPool
        self.logger = logger
        // Random per process so identifiers assigned after a restart do not collide with
        // sessions that outlived the previous run.
        let random = UInt64.random(in: 0...UInt64.max)
        identifierPrefix = "foxmq-\(registry.node)-" + String(random, radix: 36) + "-"
    }

    /// A client identifier for a CONNECT that brought an empty one (MQTT 5.0 §3.1.3.1).
    @Sendable func makeClientIdentifier() -> String {
        let number = identifierCounter.withLockedValue { value in
            value += 1
            return value
        }
        return identifierPrefix + String(number)
    }

    /// The deadline sweeper of an event loop, made on first use. Call on that loop.
    func deadlineSweeper(for eventLoop: any EventLoop) -> DeadlineSweeper {
        sweepers.withLockedValue { sweepers in
            let key = ObjectIdentifier(eventLoop)
            if let sweeper = sweepers[key] { return sweeper.value }
            let sweeper = DeadlineSweeper(eventLoop: eventLoop)
            sweepers[key] = NIOLoopBound(sweeper, eventLoop: eventLoop)
            return sweeper
        }
    }
}
