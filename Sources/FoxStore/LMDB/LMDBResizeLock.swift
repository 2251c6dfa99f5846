#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Guards `mdb_env_set_mapsize`, which LMDB allows only while no transaction of this process is
/// active: every transaction holds the lock shared for its whole life, a map resize holds it
/// exclusive.
///
/// On glibc the lock prefers the exclusive side, so a resize waiting for the running
/// transactions to drain is not starved by a steady stream of new readers (Monero's `do_resize`
/// blocks new transactions the same way). The price: a thread must never start a transaction
/// inside the body of another one, since the inner shared lock would wait behind a pending
/// resize that waits for the outer transaction.
final class LMDBResizeLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        #if canImport(Glibc)
            pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        #endif
        let result = pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
        precondition(result == 0, "pthread_rwlock_init failed: \(result)")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func lockShared() {
        let result = pthread_rwlock_rdlock(lock)
        precondition(result == 0, "pthread_rwlock_rdlock failed: \(result)")
    }

    func lockExclusive() {
        let result = pthread_rwlock_wrlock(lock)
        precondition(result == 0, "pthread_rwlock_wrlock failed: \(result)")
    }

    func unlock() {
        let result = pthread_rwlock_unlock(lock)
        precondition(result == 0, "pthread_rwlock_unlock failed: \(result)")
    }
}
