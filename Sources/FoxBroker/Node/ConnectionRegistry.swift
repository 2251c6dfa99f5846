import FoxBrokerCore
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// How the broker reaches one connection from any thread: its loop, its handler, and its inbox
/// of broker actions.
///
/// Actions are appended to the inbox under the orderer's lock, so each connection's inbox is in
/// apply order whichever thread applied them. The loop is woken only when the inbox was empty,
/// and only after that lock is released (`PendingWakeups`): no system call under the lock, and
/// one task per burst instead of one per message. The drain takes everything queued and
/// flushes once.
final class ConnectionHandle: Sendable {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<MQTTConnectionHandler>
    /// Inline in the handle (a `Mutex`, not a boxed lock): one allocation less per connection.
    private let inbox = Mutex<[BrokerAction]>([])

    init(eventLoop: any EventLoop, handler: NIOLoopBound<MQTTConnectionHandler>) {
        self.eventLoop = eventLoop
        self.handler = handler
    }

    /// Queues actions; true when the inbox was empty, so a drain must be scheduled.
    func post<Actions: Collection<BrokerAction>>(_ actions: Actions) -> Bool {
        inbox.withLock { inbox in
            let wasEmpty = inbox.isEmpty
            inbox.append(contentsOf: actions)
            return wasEmpty
        }
    }

    /// Everything queued, in order; the inbox is empty after.
    func takeAll() -> [BrokerAction] {
        inbox.withLock { inbox in
            defer { inbox = [] }
            return inbox
        }
    }

    func scheduleDrain() {
        let handler = handler
        eventLoop.execute { handler.value.drainInbox() }
    }
}

/// Connections whose loops must be woken once the orderer's lock is released.
public struct PendingWakeups: Sendable {
    // Inline for the usual one or two (an acknowledgement, one subscriber), no array for them.
    private var first: ConnectionHandle?
    private var second: ConnectionHandle?
    private var more: [ConnectionHandle] = []

    public init() {}

    mutating func add(_ handle: ConnectionHandle) {
        if first == nil {
            first = handle
        } else if second == nil {
            second = handle
        } else {
            more.append(handle)
        }
    }

    /// Schedules the drains; call without holding the orderer's lock.
    public func wake() {
        first?.scheduleDrain()
        second?.scheduleDrain()
        for handle in more { handle.scheduleDrain() }
    }
}

/// The connections of this node by id, and the `ActionSink` that routes applied actions to them.
final class ConnectionRegistry: ActionSink, @unchecked Sendable {
    private let lock = NIOLock()
    // Guarded by `lock`.
    private var handles: [ConnectionID: ConnectionHandle] = [:]
    let node: UInt32

    init(node: UInt32) {
        self.node = node
    }

    /// Registers a new connection, unless `countMax` are open already.
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

    func dispatch(_ actions: [BrokerAction], wakeups: inout PendingWakeups) {
        // Most batches concern one connection (an acknowledgement, a delivery to one subscriber,
        // retained messages for a new subscription): posted whole, without splitting.
        if let first = actions.first, actions.allSatisfy({ $0.connection == first.connection }) {
            post(actions, to: first.connection, wakeups: &wakeups)
            return
        }
        // Split by connection, keeping each connection's actions in order; connections in order
        // of first appearance (no dictionary order reaches anything).
        var batches: [ConnectionID: [BrokerAction]] = [:]
        var order: [ConnectionID] = []
        for action in actions where action.connection.node == node {
            if batches[action.connection]?.append(action) == nil {
                batches[action.connection] = [action]
                order.append(action.connection)
            }
        }
        for connection in order {
            if let batch = batches[connection] { post(batch, to: connection, wakeups: &wakeups) }
        }
    }

    private func post(_ batch: [BrokerAction], to connection: ConnectionID, wakeups: inout PendingWakeups) {
        guard connection.node == node, let handle = lock.withLock({ handles[connection] }) else { return }
        if handle.post(batch) { wakeups.add(handle) }
    }
}
