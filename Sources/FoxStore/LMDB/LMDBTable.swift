/// A named table (an LMDB named database) of one environment, from `LMDBEnvironment.openTable`.
///
/// Keys are ordered bytewise (`memcmp`, shorter first on a tie), so big-endian integer keys sort
/// numerically. The handle stays valid while the environment is open.
public struct LMDBTable: Sendable, Hashable {
    public let name: String
    /// LMDB's database handle (`MDB_dbi`).
    public let handle: UInt32
    /// Which environment opened it: handles are per environment, and a table used with another
    /// environment would silently address the wrong table.
    let environmentSerial: UInt64
}
