#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Writes text to standard error without the C `stderr` global (not concurrency-safe in
/// Swift 6): one write call per line keeps concurrent log lines whole.
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
