import Dispatch
import FoxFiles
import Logging

#if canImport(Glibc)
    import CMalloc
#endif

/// Gives the memory the C allocator holds free back to the kernel (glibc's `malloc_trim`).
///
/// glibc returns freed memory to the kernel only from the top of each arena, and raises its
/// thresholds after large frees: after a flood of connections or messages has gone, the broker's
/// resident memory stays at the flood's peak though almost all of it is free (measured: 568 MiB
/// of anonymous memory after 400 clients left, 187 MiB after a trim). `malloc_trim(0)` releases
/// every free page of every arena, which takes some 30 ms for a heap of 600 MiB (measured) and
/// holds each arena's lock while it walks it: it runs periodically, off the event loops, and
/// only when the arenas hold at least `freeBytesMin` free (`mallinfo2`), so a node whose heap
/// is in use pays nothing.
enum MemoryTrim {
    static let freeBytesMin = 32 << 20

    static func run(logger: Logger) {
        #if canImport(Glibc)
            // mallinfo2: glibc 2.33 or later (Debian 12, Ubuntu 22.04).
            guard mallinfo2().fordblks >= freeBytesMin else { return }
            let before = residentAnonymousBytes()
            let started = DispatchTime.now().uptimeNanoseconds
            _ = malloc_trim(0)
            let elapsedMillis = Double(DispatchTime.now().uptimeNanoseconds &- started) / 1e6
            guard let before, let after = residentAnonymousBytes() else { return }
            let released = before > after ? before - after : 0
            let level: Logger.Level = released >= 16 << 20 ? .info : .debug
            logger.log(
                level: level, "returned free heap memory to the kernel (malloc_trim)",
                metadata: [
                    "released_mib": "\(released >> 20)", "resident_anonymous_mib": "\(after >> 20)",
                    "milliseconds": "\((elapsedMillis * 10).rounded() / 10)",
                ])
        #endif
    }

    /// `RssAnon` of /proc/self/status, in bytes (Linux); nil elsewhere.
    static func residentAnonymousBytes() -> Int? {
        guard let status = try? Files.readIfExists("/proc/self/status", maxBytes: 1 << 16) else { return nil }
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("RssAnon:") {
            let kilobytes = line.dropFirst("RssAnon:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
                .flatMap { Int($0) }
            return kilobytes.map { $0 * 1024 }
        }
        return nil
    }
}
