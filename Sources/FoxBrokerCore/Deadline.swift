extension UInt64 {
    /// This time (milliseconds) plus `seconds`, at most `UInt64.max`. Times come back from rows
    /// on disk and from peers' state transfers, which are checked for form but cannot be
    /// checked for sense: a deadline past the end of time is "never", not a trap. (Found by
    /// `scripts/fuzz records`: a session row disconnected 252 ms before 2^64 with an expiry interval.)
    func millisAdding(seconds: UInt32) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(UInt64(seconds) * 1000)
        return overflow ? .max : sum
    }
}
