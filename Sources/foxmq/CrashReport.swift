import FoxBrokerStore

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// On a trap (a failed precondition: SIGILL or SIGTRAP) or a memory fault, writes one line
/// naming the log index being applied, then dies as it would have. Only async-signal-safe
/// calls: the line is built in a stack buffer and written with write(2).
enum CrashReport {
    static func install() {
        for number in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT] {
            signal(number, crashHandler)
        }
    }
}

private func crashHandler(_ number: Int32) {
    let replaying = ApplyTrace.replaying
    let prefix: StaticString =
        replaying
        ? "foxmq: stopped by a failure while replaying log record "
        : "foxmq: stopped by a failure while applying the event that would have been log record "
    let suffix: StaticString =
        replaying
        ? " (it is on disk; the next start refuses to replay it again: inspect it with `foxdump log --from N`)\n"
        : " (it was not written; a restart recovers without it)\n"
    writeStatic(prefix)
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { digits in
        var value = ApplyTrace.index
        var count = 0
        repeat {
            digits[23 - count] = UInt8(48 + value % 10)
            value /= 10
            count += 1
        } while value > 0 && count < 24
        _ = write(2, digits.baseAddress! + 24 - count, count)
    }
    writeStatic(suffix)
    signal(number, SIG_DFL)
    raise(number)
}

private func writeStatic(_ text: StaticString) {
    _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
}
