import CLMDB

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension StoreError {
    /// Maps an LMDB return code (an LMDB error or an `errno`) to the error callers can act on.
    ///
    /// Damage to the meta pages reads as `MDB_INVALID` or `MDB_VERSION_MISMATCH` (LMDB cannot
    /// tell garbage from another format), so those are `notAStore`; damage further in is
    /// `corrupt`. `MDB_MAP_FULL` normally never gets here: `LMDBEnvironment.write` grows the map.
    init(lmdbCode code: Int32, operation: String, path: String, table: String = "") {
        let text = "\(LMDBCodeName.of(code)): \(String(cString: mdb_strerror(code)))"
        switch code {
        case MDB_INVALID, MDB_VERSION_MISMATCH:
            self = .notAStore(path: path, detail: text)
        case MDB_CORRUPTED, MDB_PAGE_NOTFOUND:
            self = .corrupt(path: path, table: table, detail: "\(operation): \(text)")
        case MDB_MAP_FULL, ENOSPC, EDQUOT:
            self = .full("\(path): \(operation): \(text); nothing of the transaction was written")
        case MDB_READERS_FULL:
            self = .io(
                operation: operation, path: path, code: code,
                message: "\(text) (raise LMDBOptions.readersMax, or end leaked read transactions)")
        case MDB_DBS_FULL:
            self = .io(operation: operation, path: path, code: code, message: "\(text) (raise LMDBOptions.tablesMax)")
        case MDB_PANIC:
            self = .io(
                operation: operation, path: path, code: code,
                message: "\(text) (a write to the file failed; reopen the store)")
        default:
            self = .io(operation: operation, path: path, code: code, message: text)
        }
    }
}

/// The names of LMDB's error codes, for messages people can search for.
enum LMDBCodeName {
    static func of(_ code: Int32) -> String {
        switch code {
        case MDB_KEYEXIST: return "MDB_KEYEXIST"
        case MDB_NOTFOUND: return "MDB_NOTFOUND"
        case MDB_PAGE_NOTFOUND: return "MDB_PAGE_NOTFOUND"
        case MDB_CORRUPTED: return "MDB_CORRUPTED"
        case MDB_PANIC: return "MDB_PANIC"
        case MDB_VERSION_MISMATCH: return "MDB_VERSION_MISMATCH"
        case MDB_INVALID: return "MDB_INVALID"
        case MDB_MAP_FULL: return "MDB_MAP_FULL"
        case MDB_DBS_FULL: return "MDB_DBS_FULL"
        case MDB_READERS_FULL: return "MDB_READERS_FULL"
        case MDB_TLS_FULL: return "MDB_TLS_FULL"
        case MDB_TXN_FULL: return "MDB_TXN_FULL"
        case MDB_CURSOR_FULL: return "MDB_CURSOR_FULL"
        case MDB_PAGE_FULL: return "MDB_PAGE_FULL"
        case MDB_MAP_RESIZED: return "MDB_MAP_RESIZED"
        case MDB_INCOMPATIBLE: return "MDB_INCOMPATIBLE"
        case MDB_BAD_RSLOT: return "MDB_BAD_RSLOT"
        case MDB_BAD_TXN: return "MDB_BAD_TXN"
        case MDB_BAD_VALSIZE: return "MDB_BAD_VALSIZE"
        case MDB_BAD_DBI: return "MDB_BAD_DBI"
        default: return "errno \(code)"
        }
    }
}
