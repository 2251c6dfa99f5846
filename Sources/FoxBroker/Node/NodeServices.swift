import FoxBrokerStore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The node as ServiceLifecycle services, for a `ServiceGroup` that handles SIGINT and SIGTERM.
///
/// The group starts every service at once and, on a graceful shutdown, stops them one at a
/// time in the reverse of this order:
///
/// 1. `store`: closes the store, last of all (after the node's threads are gone);
/// 2. `metrics`: the operator's endpoint, up while the node drains (`/healthz` answers);
/// 3. `ordering`: the orderer (the store's writer, or the consensus core and the cluster
///    transport); stopping it drains the writer, so the ends of the sessions are durable;
/// 4. `listeners`: start once the ordering has started (the start of this run is ordered and
///    durable before any client is accepted); stopping them stops accepting and ends every
///    session through the log;
/// 5. then the caller's `background` services (reloaders): they too start once the ordering
///    has started, and stop first.
///
/// Gates keep the same order when the group is cancelled instead (a service failed, or the
/// graceful shutdown took too long): the ordering stops only after the listeners have, and the
/// store closes only after both.
public enum NodeServices {
    public static func make(
        node: BrokerNode, store: NodeStore?, metrics: MetricsService?,
        background: [ServiceGroupConfiguration.ServiceConfiguration] = [], logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let orderingStarted = Gate()
        let listenersStopped = Gate()
        let orderingStopped = Gate()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(
                service: StoreService(node: node, store: store, after: orderingStopped, logger: logger),
                serviceName: "store")
        ]
        if let metrics { services.append(.init(service: metrics, serviceName: "metrics")) }
        services.append(
            .init(
                service: OrderingService(
                    node: node, started: orderingStarted, after: listenersStopped, stopped: orderingStopped),
                serviceName: "ordering"))
        services.append(
            .init(
                service: ListenerService(node: node, after: orderingStarted, stopped: listenersStopped),
                serviceName: "listeners"))
        for configuration in background {
            var configuration = configuration
            configuration.service = AfterOrderingStarted(service: configuration.service, after: orderingStarted)
            services.append(configuration)
        }
        return services
    }
}

/// Orders the start of this run, then waits for the shutdown and drains the orderer.
struct OrderingService: Service {
    let node: BrokerNode
    let started: Gate
    let after: Gate
    let stopped: Gate

    func run() async throws {
        defer { stopped.open(true) }
        do {
            // A stop asked for while the start waits (for a quorum, say) gives the start up.
            try await withTaskCancellationHandler {
                try await withGracefulShutdownHandler {
                    try await node.startOrdering()
                } onGracefulShutdown: {
                    node.abandonStart()
                }
            } onCancel: {
                node.abandonStart()
            }
        } catch {
            // The listeners never open: stop at once and fail the group with this error, unless
            // the node was asked to stop.
            started.open(false)
            await node.stopOrdering()
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            throw error
        }
        started.open(true)
        // Cancellation ends the wait too; the drain below runs either way.
        try? await gracefulShutdown()
        _ = await after.wait()
        await node.stopOrdering()
    }
}

/// Opens the listeners once the ordering has started; on shutdown stops accepting and ends the
/// sessions through the log.
struct ListenerService: Service {
    let node: BrokerNode
    let after: Gate
    let stopped: Gate

    func run() async throws {
        defer { stopped.open(true) }
        // The ordering failed to start (the group is cancelled with its error), or the node is
        // stopping already: nothing to open. Returning now would end the group as "finished
        // unexpectedly", so wait for the shutdown or the cancellation.
        guard await waitForStart(after), !Task.isCancelled, !Task.isShuttingDownGracefully else {
            try? await gracefulShutdown()
            return
        }
        do {
            try await node.startListeners()
        } catch {
            await node.stopListeners()
            throw error
        }
        try? await gracefulShutdown()
        await node.stopListeners()
    }
}

/// A service that starts once the ordering has started (the state it reads is this run's),
/// and not at all when the ordering fails to start.
struct AfterOrderingStarted: Service {
    let service: any Service
    let after: Gate

    func run() async throws {
        guard await waitForStart(after), !Task.isCancelled else {
            try? await gracefulShutdown()
            return
        }
        try await service.run()
    }
}

/// Holds the store until everything that uses it has stopped, then closes it.
struct StoreService: Service {
    let node: BrokerNode
    let store: NodeStore?
    let after: Gate
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        _ = await after.wait()
        await node.releaseThreads()
        if let store {
            store.close()
            logger.info("store closed", metadata: ["store": "\(store.directory)"])
        }
    }
}

/// The metrics endpoint (`--metrics-addr`) as a service: bound at start (a failure to bind
/// stops the start), closed at shutdown.
public struct MetricsService: Service {
    let endpoint: MetricsEndpoint
    let host: String
    let port: Int
    let logger: Logger

    public init(endpoint: MetricsEndpoint, host: String, port: Int, logger: Logger) {
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self.logger = logger
    }

    public func run() async throws {
        let bound: String
        do {
            bound = try await endpoint.start(host: host, port: port).map { "\($0)" } ?? "?"
        } catch {
            await endpoint.stop()
            throw MetricsEndpointError(message: "--metrics-addr \(host):\(port): \(error)")
        }
        logger.info("metrics endpoint started", metadata: ["address": "\(bound)"])
        try? await gracefulShutdown()
        await endpoint.stop()
    }
}

public struct MetricsEndpointError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Waits for the ordering's start; a stop of this service before it (its graceful shutdown or
/// its cancellation) opens the gate with false: the group is stopping, nothing else is to
/// start either.
private func waitForStart(_ gate: Gate) async -> Bool {
    await withTaskCancellationHandler {
        await withGracefulShutdownHandler {
            await gate.wait()
        } onGracefulShutdown: {
            gate.open(false)
        }
    } onCancel: {
        gate.open(false)
    }
}

/// Opened once, with a verdict; waiters get the verdict. Not cancellable: a stopping service
/// waits for the ones before it in the shutdown order, whatever happens to its task.
final class Gate: Sendable {
    private struct State {
        var verdict: Bool?
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }
    private let state = NIOLockedValueBox(State())

    func open(_ verdict: Bool) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Bool, Never>] in
            guard state.verdict == nil else { return [] }
            state.verdict = verdict
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: verdict) }
    }

    func wait() async -> Bool {
        await withCheckedContinuation { continuation in
            let verdict = state.withLockedValue { state -> Bool? in
                if let verdict = state.verdict { return verdict }
                state.waiters.append(continuation)
                return nil
            }
            if let verdict { continuation.resume(returning: verdict) }
        }
    }
}
