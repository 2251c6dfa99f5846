import Dispatch

/// Sleeps for `nanoseconds` whatever happens to the task. The stop paths poll (a drain, the
/// sessions' ends) and may run in a cancelled task, where `Task.sleep` returns at once: they
/// would spin a core until their deadline.
func pause(nanoseconds: UInt64) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanoseconds))) {
            continuation.resume()
        }
    }
}
