/// toml++ 3.4 (inside TOMLKit 0.6) stops the process on an assertion (SIGABRT, in debug and
/// release builds alike) on three kinds of invalid text, found by `scripts/fuzz users-toml` and
/// `scripts/fuzz address-book`:
///
/// - a table header whose key starts with anything but a bare key character or a quote:
///   `[^a]`, `[é]`, `[[#]]`, a `[` alone on a line;
/// - a `}` where an array value is expected: `a=[}`, `a=[1,}`, `a={b=[}`;
/// - a line separator that TOML does not know (U+0085, U+2028, U+2029) where an array value is
///   expected.
///
/// The readers of users.toml and address-book.toml look for these first and refuse the file with
/// an error instead. The guard is a scan that tracks strings, comments, and the arrays and inline
/// tables of values, so it refuses only what no valid document contains:
///
/// - A header is a `[` that starts a line (after spaces and tabs) outside strings, comments and
///   values: in a valid document that is exactly where toml++ reads one.
/// - Outside strings and comments, a `}` only ever closes an inline table, which is then the
///   innermost open value: a `}` whose innermost open value is an array is never valid.
/// - TOML's only line break is LF (or CRLF) and its only blanks are space and tab, so the other
///   Unicode line separators are valid only inside strings and comments.
public enum TOMLAbortGuard {
    /// The first text that would abort toml++, with its line and column (1-based; the column in
    /// UTF-8 bytes) and what is wrong, or nil.
    public static func firstProblem(in text: String) -> (message: String, line: Int, column: Int)? {
        let bytes = Array(text.utf8)
        let quote = UInt8(ascii: "\"")
        let apostrophe = UInt8(ascii: "'")
        let newline = UInt8(ascii: "\n")
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var lineStart = 0
        /// The arrays (`[`) and inline tables (`{`) of values open at `index`, innermost last.
        var openValues: [UInt8] = []
        var atLineStart = true

        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        func skipBlanks() { while index < bytes.count && isBlank(bytes[index]) { index += 1 } }
        func startsKey(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-") || byte == quote || byte == apostrophe
        }
        /// The name of the Unicode line separator that starts at `index` (U+0085 is C2 85,
        /// U+2028 and U+2029 are E2 80 A8 and E2 80 A9), or nil.
        func lineSeparator() -> String? {
            if bytes[index] == 0xC2 && index + 1 < bytes.count && bytes[index + 1] == 0x85 { return "U+0085" }
            if bytes[index] == 0xE2 && index + 2 < bytes.count && bytes[index + 1] == 0x80 {
                if bytes[index + 2] == 0xA8 { return "U+2028" }
                if bytes[index + 2] == 0xA9 { return "U+2029" }
            }
            return nil
        }
        /// Skips the string that starts at `index` (one of the four kinds), counting its lines.
        func skipString(_ delimiter: UInt8) {
            let basic = delimiter == quote
            let multiline =
                index + 2 < bytes.count && bytes[index + 1] == delimiter && bytes[index + 2] == delimiter
            index += multiline ? 3 : 1
            while index < bytes.count {
                let byte = bytes[index]
                if basic && byte == UInt8(ascii: "\\") {
                    if index + 1 < bytes.count && bytes[index + 1] == newline {
                        line += 1
                        lineStart = index + 2
                    }
                    index += 2
                    continue
                }
                if byte == newline {
                    // A one-line string ends at the line's end (unterminated: toml++ refuses it).
                    if !multiline { return }
                    line += 1
                    lineStart = index + 1
                } else if byte == delimiter {
                    if !multiline {
                        index += 1
                        return
                    }
                    if index + 2 < bytes.count && bytes[index + 1] == delimiter && bytes[index + 2] == delimiter {
                        index += 3
                        // Up to two more delimiters belong to the string (TOML 1.0).
                        var extra = 0
                        while extra < 2 && index < bytes.count && bytes[index] == delimiter {
                            index += 1
                            extra += 1
                        }
                        return
                    }
                }
                index += 1
            }
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case newline:
                index += 1
                line += 1
                lineStart = index
                atLineStart = true
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "#"):
                while index < bytes.count && bytes[index] != newline { index += 1 }
            case quote, apostrophe:
                atLineStart = false
                skipString(byte)
            case UInt8(ascii: "[") where openValues.isEmpty && atLineStart:
                // A table header: `[`, blanks, maybe a second `[` and blanks, then the key.
                atLineStart = false
                index += 1
                let afterBracket = index
                skipBlanks()
                if index < bytes.count && bytes[index] == UInt8(ascii: "[") {
                    // `[ [`: toml++ refuses it without reading a key.
                    if index > afterBracket { break }
                    index += 1
                    skipBlanks()
                }
                if index < bytes.count && bytes[index] != UInt8(ascii: "]") && !startsKey(bytes[index]) {
                    return ("a table header must start with a key", line, index - lineStart + 1)
                }
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                openValues.append(byte)
                atLineStart = false
                index += 1
            case UInt8(ascii: "}") where openValues.last == UInt8(ascii: "["):
                return ("expected a value or ']' in the array, saw '}'", line, index - lineStart + 1)
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                // Outside values this is a header's `]` (or an error toml++ reports itself).
                if !openValues.isEmpty { openValues.removeLast() }
                atLineStart = false
                index += 1
            default:
                if let separator = lineSeparator() {
                    return ("\(separator) is not a TOML line break or blank", line, index - lineStart + 1)
                }
                atLineStart = false
                index += 1
            }
        }
        return nil
    }
}
