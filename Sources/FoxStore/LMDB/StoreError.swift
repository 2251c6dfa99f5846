/// A problem with the node's store, as start-up, the log writer and `foxdump` see it.
///
/// Every `description` names the file concerned (usually `…/data.mdb`) and the problem, so it
/// can be printed as is, e.g. `/var/lib/foxmq/store/data.mdb: MDB_INVALID: File is not an LMDB
/// file`. LMDB's own error codes are kept by name in the text (`MDB_CORRUPTED`, …) because that
/// is what people search for.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The store cannot take more data: the map reached `LMDBOptions.mapSizeMaxBytes`, the disk
    /// has no room left to grow it, or a write failed with `ENOSPC`/`EDQUOT`. The transaction
    /// that hit it wrote nothing; reads, and deletes that free space, still work. The text names
    /// the file and the limit.
    case full(String)
    /// A system call or an LMDB call failed for a reason other than the ones below. `code` is the
    /// `errno` or the LMDB error code, `message` its text (`mdb_strerror`).
    case io(operation: String, path: String, code: Int32, message: String)
    /// The file is an LMDB file, but a page or a table in it is damaged (`MDB_CORRUPTED`,
    /// `MDB_PAGE_NOTFOUND`). `table` is empty when the damage is not tied to one table.
    case corrupt(path: String, table: String, detail: String)
    /// The path holds no store: the directory or its `data.mdb` is missing (read-only open), or
    /// `data.mdb` is not an LMDB file of this format (`MDB_INVALID`, `MDB_VERSION_MISMATCH`,
    /// which is also what damaged meta pages look like).
    case notAStore(path: String, detail: String)
    /// The environment is already open in this process. LMDB forbids opening one twice: closing
    /// the second file descriptor would drop the first one's `fcntl` locks.
    case inUse(path: String)
    /// The store was written by a newer FoxMQ (a format version above the one this build reads).
    case versionTooNew(path: String, found: Int, supported: Int)
    /// A read-only open asked for a table the store does not have.
    case tableMissing(path: String, table: String)
    /// An append (`MDB_APPEND`) whose key is not greater than the table's last key: a bug in the
    /// caller's key order, never a disk problem.
    case appendOutOfOrder(path: String, table: String)

    public var description: String {
        switch self {
        case .full(let detail):
            return detail
        case .io(let operation, let path, let code, let message):
            return "\(path): \(operation) failed: \(message) (code \(code))"
        case .corrupt(let path, let table, let detail):
            if table.isEmpty { return "\(path): store is corrupt: \(detail)" }
            return "\(path): table '\(table)' is corrupt: \(detail)"
        case .notAStore(let path, let detail):
            return "\(path): not a FoxMQ store: \(detail)"
        case .inUse(let path):
            return "\(path): the store is already open in this process"
        case .versionTooNew(let path, let found, let supported):
            return "\(path): store format version \(found) is newer than this build reads (up to \(supported))"
        case .tableMissing(let path, let table):
            return "\(path): the store has no table '\(table)'"
        case .appendOutOfOrder(let path, let table):
            return "\(path): table '\(table)': append with a key not greater than the last key"
        }
    }
}
