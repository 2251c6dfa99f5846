import TOMLKit

/// Reading one of our TOML files (users.toml, address-book.toml): the bytes, UTF-8, then the
/// document, with the guards toml++ needs. Each file's reader turns a `Problem` into its own
/// error, which names the file.
public enum TOMLFile {
    public enum Problem: Error, Sendable, Equatable {
        /// The file exists but could not be read (`errno` and its message).
        case unreadable(errno: Int32, message: String)
        /// The file is not valid UTF-8.
        case notUTF8
        /// The text is not valid TOML (the position as the parser gives it).
        case invalidTOML(message: String, line: Int?, column: Int?)
    }

    /// The text of `path`, or nil when there is no such file.
    public static func readText(_ path: String) throws(Problem) -> String? {
        let bytes: [UInt8]?
        do {
            bytes = try Files.readIfExists(path)
        } catch {
            throw .unreadable(errno: error.errno, message: error.message)
        }
        guard let bytes else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .notUTF8 }
        return text
    }

    /// The document in `text`.
    public static func parse(_ text: String) throws(Problem) -> TOMLTable {
        // toml++ reads a C string: an embedded NUL would silently cut the document.
        if text.utf8.contains(0) {
            throw .invalidTOML(message: "the file contains a NUL byte", line: nil, column: nil)
        }
        // No control character but tab, line feed and carriage return may appear literally
        // anywhere in TOML (strings escape them): refused here with a position, before toml++.
        if let control = firstControlCharacter(in: text) {
            let hex = String(control.byte, radix: 16, uppercase: true)
            throw .invalidTOML(
                message: "control character U+\(String(repeating: "0", count: 4 - hex.count) + hex) is not allowed",
                line: control.line, column: control.column)
        }
        // Text on which toml++ would abort the process rather than report an error.
        if let problem = TOMLAbortGuard.firstProblem(in: text) {
            throw .invalidTOML(message: problem.message, line: problem.line, column: problem.column)
        }
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .invalidTOML(
                message: error.description, line: error.source.begin.line, column: error.source.begin.column)
        } catch {
            throw .invalidTOML(message: String(describing: error), line: nil, column: nil)
        }
    }

    /// The first control character other than tab, line feed and carriage return, with its line
    /// and column (1-based; the column in UTF-8 bytes).
    static func firstControlCharacter(in text: String) -> (byte: UInt8, line: Int, column: Int)? {
        var line = 1
        var column = 1
        for byte in text.utf8 {
            if byte == 0x0A {
                line += 1
                column = 1
                continue
            }
            if (byte < 0x20 && byte != 0x09 && byte != 0x0D) || byte == 0x7F {
                return (byte, line, column)
            }
            column += 1
        }
        return nil
    }

    /// `line 3, column 1: invalid TOML: MESSAGE`, as the file errors print it.
    public static func describeInvalid(message: String, line: Int?, column: Int?) -> String {
        var position = ""
        if let line {
            position = "line \(line)"
            if let column { position += ", column \(column)" }
            position += ": "
        }
        return "\(position)invalid TOML: \(message)"
    }
}

/// The problems of a file error that reads TOML: its enum's cases of the same names take a
/// `TOMLFile.Problem` as they are (`init(_:)`).
public protocol TOMLFileProblem {
    static func unreadable(errno: Int32, message: String) -> Self
    static var notUTF8: Self { get }
    static func invalidTOML(message: String, line: Int?, column: Int?) -> Self
}

extension TOMLFileProblem {
    public init(_ problem: TOMLFile.Problem) {
        switch problem {
        case .unreadable(let errno, let message): self = .unreadable(errno: errno, message: message)
        case .notUTF8: self = .notUTF8
        case .invalidTOML(let message, let line, let column):
            self = .invalidTOML(message: message, line: line, column: column)
        }
    }
}
