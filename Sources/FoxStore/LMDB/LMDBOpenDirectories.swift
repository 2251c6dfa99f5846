import Synchronization

/// The environments open in this process, by the real path of their directory.
///
/// LMDB must never open one environment twice in a process: closing the second handle's file
/// descriptor drops the `fcntl` locks of the first (lmdb.h, Caveats). Keying by `realpath` makes
/// `store`, `./store` and a symlink to it the same environment.
enum LMDBOpenDirectories {
    private struct State {
        var realPaths: Set<String> = []
        var serialNext: UInt64 = 1
    }

    private static let state = Mutex(State())

    /// Registers `realPath`; nil if it is already open. Otherwise a serial that tells this
    /// environment's table handles from other environments'.
    static func register(_ realPath: String) -> UInt64? {
        state.withLock { state in
            guard state.realPaths.insert(realPath).inserted else { return nil }
            defer { state.serialNext += 1 }
            return state.serialNext
        }
    }

    static func unregister(_ realPath: String) {
        _ = state.withLock { state in state.realPaths.remove(realPath) }
    }
}
