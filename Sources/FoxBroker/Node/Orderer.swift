import FoxBrokerCore
import FoxMQTT
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// The "order, then apply" seam. Connections submit events; the orderer puts them in the one
/// order all nodes agree on, applies them to the broker state at the time of that order, and
/// hands the resulting actions to the connections they concern. A single node orders locally
/// and at once (`LocalOrderer`); a cluster puts consensus here, and nothing else changes.
public protocol Orderer: Sendable {
    /// Puts the event in the order, or refuses it. Session ends and a subscriber's
    /// acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP) are never refused: they free what the
    /// broker holds.
    @discardableResult
    func submit(_ event: BrokerEvent) -> SubmitResult

    /// Orders a tick when the state's earliest deadline has come.
    func tickIfDue()
}

/// An orderer's answer to `submit`.
public enum SubmitResult: Sendable, Equatable {
    case accepted
    /// Too much is waiting to be made durable: try again later (the connection stops reading
    /// until it is woken).
    case busy
    /// The event is larger than a log record may be.
    case tooLarge
    /// Nothing that grows the state is taken now; the reason code says why (0x97 when the disk
    /// or the map is full, 0x88 when the store failed).
    case unavailable(ReasonCode)
}

extension BrokerEvent {
    /// Events that free state or finish an exchange, never refused by an orderer.
    public var isNeverRefused: Bool {
        switch self {
        case .sessionClose, .pubAck, .pubRec, .pubRel, .pubComp, .tick, .nodeStarted, .nodeLost, .configure: true
        case .sessionOpen, .publish, .publishDenied, .subscribe, .unsubscribe, .admin, .systemPublish: false
        }
    }
}

/// Milliseconds since the Unix epoch, injected so tests and the simulator control time.
public protocol BrokerClock: Sendable {
    func nowMillis() -> UInt64
}

public struct SystemClock: BrokerClock {
    public init() {}
    public func nowMillis() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) * 1000 + UInt64(time.tv_nsec) / 1_000_000
    }
}

/// Where applied actions go: the connections of this node.
public protocol ActionSink: Sendable {
    /// Called in apply order, under the orderer's lock: queues the actions, cheaply and without
    /// system calls, and adds the connections to wake to `wakeups`, which the orderer wakes
    /// after releasing the lock. Must not call back into the orderer.
    func dispatch(_ actions: [BrokerAction], wakeups: inout PendingWakeups)
}

/// Orders events of one node by arrival: a lock around apply. Actions are queued to their
/// connections under the same lock, so every connection receives its packets in apply order;
/// the loops are woken after it is released.
public final class LocalOrderer: Orderer, @unchecked Sendable {
    // Guarded by `lock`: the state, the reusable action buffer.
    private let lock = NIOLock()
    private let state: BrokerState
    private var actions: [BrokerAction] = []
    private let clock: any BrokerClock
    private let sink: any ActionSink

    public init(state: BrokerState, clock: any BrokerClock, sink: any ActionSink) {
        self.state = state
        self.clock = clock
        self.sink = sink
    }

    @discardableResult
    public func submit(_ event: BrokerEvent) -> SubmitResult {
        var wakeups = PendingWakeups()
        lock.withLockVoid {
            actions.removeAll(keepingCapacity: true)
            state.apply(event, atMillis: clock.nowMillis(), into: &actions)
            if !actions.isEmpty { sink.dispatch(actions, wakeups: &wakeups) }
        }
        wakeups.wake()
        return .accepted
    }

    public func tickIfDue() {
        var wakeups = PendingWakeups()
        lock.withLockVoid {
            let now = clock.nowMillis()
            guard let next = state.nextDeadlineMillis, next <= now else { return }
            actions.removeAll(keepingCapacity: true)
            state.apply(.tick, atMillis: now, into: &actions)
            if !actions.isEmpty { sink.dispatch(actions, wakeups: &wakeups) }
        }
        wakeups.wake()
    }

    /// Reads the state under the lock (metrics, tests).
    public func withState<T>(_ body: (BrokerState) -> T) -> T {
        lock.withLock { body(state) }
    }
}
