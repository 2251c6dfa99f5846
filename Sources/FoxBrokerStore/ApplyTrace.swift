import FoxFiles

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// The log index being applied right now, for the one message a dying process can still
/// print: a failed invariant (a Swift trap) on the apply path names the record that caused it.
/// Written by the single thread that applies (under the orderer's lock, or recovery), read by
/// the crash handler; a torn read there costs a wrong number in a last message, nothing else.
public enum ApplyTrace {
    nonisolated(unsafe) public static var index: UInt64 = 0
    /// True while recovery replays the log (the record is on disk), false for live events (the
    /// record was never written).
    nonisolated(unsafe) public static var replaying = false
}

/// The marker of a replay in progress: a start that dies while replaying leaves it behind, and
/// the next start refuses to replay the same records again (a crash loop) until the operator
/// looked (`foxdump log --from N`) and asked for it.
public struct ReplayMarker {
    public let path: String

    public init(dataDirectory: String) { path = dataDirectory + "/replay-in-progress" }

    /// The range a previous start was replaying when it died, if any.
    public func pending() -> String? {
        let content: [UInt8]?
        do {
            content = try Files.readIfExists(path, maxBytes: 4096)
        } catch {
            return "unknown"  // there, but unreadable: still a replay that died
        }
        guard let content else { return nil }
        let line = content.prefix { $0 != 10 }
        return line.isEmpty ? "unknown" : String(decoding: line, as: UTF8.self)
    }

    func set(_ range: String) {
        try? Files.writeAtomically(Array((range + "\n").utf8), to: path, newFileMode: 0o644)
    }

    public func clear() { unlink(path) }
}
