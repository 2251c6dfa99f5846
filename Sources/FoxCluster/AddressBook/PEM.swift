import Foundation

/// PEM (RFC 7468) as the cluster's files use it: `-----BEGIN LABEL-----`, base64 of DER in
/// lines of 64, `-----END LABEL-----`.
///
/// Reading is lenient where OpenSSL is (text around the blocks, any line length, CRLF, several
/// blocks such as `EC PARAMETERS` before `EC PRIVATE KEY`) and strict where it matters: the
/// END label must match, the base64 must decode, and RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`,
/// how OpenSSL marks an encrypted traditional key) are reported instead of being decoded as
/// base64.
enum PEM {
    struct Block: Equatable {
        var label: String
        /// RFC 1421 header lines (`Name: value`) between BEGIN and the base64.
        var headers: [String]
        var der: [UInt8]
    }

    /// Why a text is not PEM.
    struct ParseError: Error, Equatable {
        let reason: String
    }

    /// `der` as a PEM block, ending with a newline.
    static func encode(label: String, der: [UInt8]) -> String {
        let base64 = Array(Data(der).base64EncodedString().utf8)
        var text = "-----BEGIN \(label)-----\n"
        var start = 0
        while start < base64.count {
            let end = min(start + 64, base64.count)
            text += String(decoding: base64[start..<end], as: UTF8.self) + "\n"
            start = end
        }
        text += "-----END \(label)-----\n"
        return text
    }

    /// Every PEM block of `text`, in order.
    static func blocks(in text: String) throws(ParseError) -> [Block] {
        var blocks: [Block] = []
        var current: (label: String, headers: [String], base64: String)?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.trimmingWhitespace()
            if var open = current {
                if let label = line.boundaryLabel(kind: "END") {
                    guard label == open.label else {
                        throw ParseError(reason: "-----BEGIN \(open.label)----- ends with -----END \(label)-----")
                    }
                    guard let der = Data(base64Encoded: open.base64) else {
                        throw ParseError(reason: "the \(open.label) block is not valid base64")
                    }
                    blocks.append(Block(label: open.label, headers: open.headers, der: Array(der)))
                    current = nil
                } else if line.boundaryLabel(kind: "BEGIN") != nil {
                    throw ParseError(reason: "-----BEGIN \(open.label)----- has no -----END \(open.label)-----")
                } else if line.contains(":") && open.base64.isEmpty {
                    open.headers.append(String(line))
                    current = open
                } else {
                    open.base64 += line.filter { !$0.isWhitespace }
                    current = open
                }
            } else if let label = line.boundaryLabel(kind: "BEGIN") {
                current = (label, [], "")
            }
        }
        if let open = current {
            throw ParseError(reason: "-----BEGIN \(open.label)----- has no -----END \(open.label)-----")
        }
        return blocks
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var result = self
        while let first = result.first, first.isWhitespace { result.removeFirst() }
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return result
    }

    /// `LABEL` of `-----BEGIN LABEL-----` (kind "BEGIN") or `-----END LABEL-----`.
    fileprivate func boundaryLabel(kind: String) -> String? {
        let prefix = "-----\(kind) "
        guard hasPrefix(prefix), hasSuffix("-----"), count >= prefix.count + 5 else { return nil }
        return String(dropFirst(prefix.count).dropLast(5))
    }
}
