import Atomics
import NIOConcurrencyHelpers
import NIOCore

/// A connection as the rest of the node reaches it: its event loop and its handler, which may
/// only be touched on that loop.
final class ConnectionHandle: Sendable {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<MQTTConnectionHandler>
    /// Deliveries handed to the loop and not yet run: the last one to run flushes, so a burst
    /// leaves in one write and a lone message leaves at once.
    let pendingDeliveries: ManagedAtomic<Int>

    init(eventLoop: any EventLoop, handler: NIOLoopBound<MQTTConnectionHandler>, pendingDeliveries: ManagedAtomic<Int>)
    {
        self.eventLoop = eventLoop
        self.handler = handler
        self.pendingDeliveries = pendingDeliveries
    }
}

/// The open connections of this node, and the sink that carries broker actions to them: each
/// batch is split by connection and handed to its event loop in one task, so a connection gets
/// its packets in apply order with one hop and one flush per batch.
final class ConnectionRegistry: ActionSink, @unchecked Sendable {
    private let lock = NIOLock()
    // Guarded by `lock`.
    private var handles: [ConnectionID: ConnectionHandle] = [:]
    let node: UInt32

    init(node: UInt32) {
        self.node = node
    }

    /// Adds a connection unless `countMax` are open.
    func register(_ connection: ConnectionID, _ handle: ConnectionHandle, countMax: Int) -> Bool {
        lock.withLock {
            guard handles.count < countMax else { return false }
            handles[connection] = handle
            return true
        }
    }

    func unregister(_ connection: ConnectionID) {
        lock.withLockVoid { handles[connection] = nil }
    }

    var count: Int { lock.withLock { handles.count } }

    var all: [ConnectionHandle] { lock.withLock { Array(handles.values) } }

    func dispatch(_ actions: [BrokerAction]) {
        // Most batches concern one connection (an acknowledgement, a delivery to one subscriber,
        // retained messages for a new subscription): sent whole, without splitting.
        if let first = actions.first, actions.allSatisfy({ $0.connection == first.connection }) {
            send(actions, to: first.connection)
            return
        }
        // Split by connection, keeping each connection's actions in order.
        var batches: [ConnectionID: [BrokerAction]] = [:]
        var order: [ConnectionID] = []
        for action in actions where action.connection.node == node {
            if batches[action.connection]?.append(action) == nil {
                batches[action.connection] = [action]
                order.append(action.connection)
            }
        }
        for connection in order {
            if let batch = batches[connection] { send(batch, to: connection) }
        }
    }

    private func send(_ batch: [BrokerAction], to connection: ConnectionID) {
        guard connection.node == node, let handle = lock.withLock({ handles[connection] }) else { return }
        handle.pendingDeliveries.wrappingIncrement(ordering: .acquiringAndReleasing)
        handle.eventLoop.execute {
            handle.handler.value.deliver(batch)
        }
    }
}
