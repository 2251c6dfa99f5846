/// toml++ 3.4 (inside TOMLKit 0.6) stops the process on an assertion (SIGABRT, in debug and
/// release builds alike) when the key of a table header starts with anything but a bare key
/// character or a quote: `[^a]`, `[é]`, `[[#]]`, a `[` alone on a line. The readers of
/// users.toml and address-book.toml look for such a header first and refuse the file with an
/// error instead. (Found by `scripts/fuzz users-toml`.)
///
/// A header is a `[` that starts a line (after spaces and tabs) outside strings, comments and
/// the arrays and inline tables of values: in a valid document that is exactly where toml++
/// reads one, so no valid file is refused.
public enum TOMLTableHeaderCheck {
    /// The line and column (1-based; the column in UTF-8 bytes) of the first table header whose
    /// key does not start as toml++ requires, or nil.
    public static func firstUnreadableHeader(in text: String) -> (line: Int, column: Int)? {
        let bytes = Array(text.utf8)
        let quote = UInt8(ascii: "\"")
        let apostrophe = UInt8(ascii: "'")
        let newline = UInt8(ascii: "\n")
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var lineStart = 0
        var depth = 0
        var atLineStart = true

        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        func skipBlanks() { while index < bytes.count && isBlank(bytes[index]) { index += 1 } }
        func startsKey(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-") || byte == quote || byte == apostrophe
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
            case UInt8(ascii: "[") where depth == 0 && atLineStart:
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
                    return (line, index - lineStart + 1)
                }
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                atLineStart = false
                index += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth = max(0, depth - 1)
                atLineStart = false
                index += 1
            default:
                atLineStart = false
                index += 1
            }
        }
        return nil
    }
}
