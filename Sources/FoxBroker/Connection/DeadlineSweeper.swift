import NIOCore

/// One timer per event loop for the deadlines of all its connections (CONNECT timeout, keep
/// alive). A scheduled task per connection costs each idle connection about a kilobyte; a sweep
/// every quarter second over the loop's connections costs a comparison each.
///
/// Loop-bound: every method runs on `eventLoop`.
final class DeadlineSweeper {
    static let interval = TimeAmount.milliseconds(250)

    let eventLoop: any EventLoop
    private var handlers: [MQTTConnectionHandler] = []
    private var task: RepeatedTask?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func add(_ handler: MQTTConnectionHandler) {
        eventLoop.preconditionInEventLoop()
        precondition(handler.sweepIndex == nil, "handler swept twice")
        handler.sweepIndex = handlers.count
        handlers.append(handler)
        if task == nil {
            let loopBoundSelf = NIOLoopBound(self, eventLoop: eventLoop)
            task = eventLoop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { _ in
                loopBoundSelf.value.sweep()
            }
        }
    }

    func remove(_ handler: MQTTConnectionHandler) {
        eventLoop.preconditionInEventLoop()
        guard let index = handler.sweepIndex else { return }
        precondition(handlers[index] === handler, "sweep index out of date")
        let last = handlers.removeLast()
        if index < handlers.count {
            handlers[index] = last
            last.sweepIndex = index
        }
        handler.sweepIndex = nil
        if handlers.isEmpty {
            task?.cancel()
            task = nil
        }
    }

    private func sweep() {
        let now = eventLoop.now
        var index = 0
        while index < handlers.count {
            let handler = handlers[index]
            handler.checkDeadlines(now: now)
            // A handler that closed removed itself; another took its place at `index`.
            if index < handlers.count && handlers[index] === handler { index += 1 }
        }
    }
}
