#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a node listens for its peers: `HOST:PORT` as the address book writes it, with an
/// IPv4 address, an IPv6 address in brackets (`[::1]:19793`) or a host name.
///
/// Parsing accepts any spelling of an IP address that the C library reads (IPv6) or the
/// plain dotted quad (IPv4, no leading zeros), and `description` is the one canonical
/// spelling (RFC 5952 for IPv6, lower case for names), the way the original's Rust
/// `SocketAddr` prints: books compare, and duplicates are found, on that spelling.
public struct ClusterAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Host: Hashable, Sendable {
        case ipv4([UInt8])
        case ipv6([UInt8])
        /// A DNS name (RFC 1123 labels), in lower case.
        case name(String)
    }

    public var host: Host
    public var port: UInt16

    /// Parses `HOST:PORT`.
    public init(parsing text: String) throws(ClusterAddressError) {
        let hostText: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ClusterAddressError(text: text, reason: "the [ of an IPv6 address has no ]")
            }
            hostText = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ClusterAddressError(text: text, reason: "expected [IPv6]:PORT")
            }
            portText = rest.dropFirst()
            guard Self.parseIPv6(hostText) != nil else {
                throw ClusterAddressError(text: text, reason: "\(hostText) is not an IPv6 address")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ClusterAddressError(text: text, reason: "expected HOST:PORT (e.g. 127.0.0.1:19793)")
            }
            hostText = text[..<colon]
            portText = text[text.index(after: colon)...]
            if hostText.contains(":") {
                throw ClusterAddressError(
                    text: text, reason: "an IPv6 address goes in brackets: [\(hostText)]:\(portText)")
            }
        }
        let port = try Self.parsePort(portText, in: text)
        try self.init(host: String(hostText), port: port, in: text)
    }

    /// `host` (an IPv4 address, an IPv6 address with or without brackets, or a host name) and
    /// `port` (1...65535).
    public init(host: String, port: Int) throws(ClusterAddressError) {
        guard (1...65535).contains(port) else {
            throw ClusterAddressError(text: "\(host) port \(port)", reason: "the port must be 1...65535")
        }
        var bare = Substring(host)
        if bare.hasPrefix("[") && bare.hasSuffix("]") { bare = bare.dropFirst().dropLast() }
        try self.init(host: String(bare), port: UInt16(port), in: host)
    }

    private init(host: String, port: UInt16, in text: String) throws(ClusterAddressError) {
        self.port = port
        if host.isEmpty {
            throw ClusterAddressError(text: text, reason: "the host is empty")
        } else if let bytes = Self.parseIPv4(host) {
            self.host = .ipv4(bytes)
        } else if host.contains(":") {
            guard let bytes = Self.parseIPv6(Substring(host)) else {
                throw ClusterAddressError(text: text, reason: "\(host) is not an IPv6 address")
            }
            self.host = .ipv6(bytes)
        } else if let reason = Self.hostNameProblem(host) {
            throw ClusterAddressError(text: text, reason: reason)
        } else {
            self.host = .name(host.lowercased())
        }
    }

    /// The host without brackets (an IPv6 address as RFC 5952 writes it).
    public var hostText: String {
        switch host {
        case .ipv4(let bytes): return bytes.map(String.init).joined(separator: ".")
        case .ipv6(let bytes): return Self.formatIPv6(bytes)
        case .name(let name): return name
        }
    }

    /// `HOST:PORT`, IPv6 in brackets.
    public var description: String {
        if case .ipv6 = host { return "[\(hostText)]:\(port)" }
        return "\(hostText):\(port)"
    }

    private static func parsePort(_ text: Substring, in whole: String) throws(ClusterAddressError) -> UInt16 {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(text),
            (1...65535).contains(port)
        else {
            throw ClusterAddressError(text: whole, reason: "the port must be a number in 1...65535")
        }
        return UInt16(port)
    }

    /// The four bytes of a dotted quad (decimal, no leading zeros), else nil.
    private static func parseIPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func parseIPv6(_ text: Substring) -> [UInt8]? {
        // Zone identifiers (`fe80::1%eth0`) name an interface of one machine: not for a book
        // shared by all nodes.
        guard !text.contains("%") else { return nil }
        var address = in6_addr()
        let parsed = String(text).withCString { inet_pton(AF_INET6, $0, &address) }
        guard parsed == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    private static func formatIPv6(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 16)
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let formatted = inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
        precondition(formatted != nil, "inet_ntop of 16 bytes")
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
    }

    /// Why `name` is not a host name (RFC 1123: dot-separated labels of letters, digits and
    /// inner hyphens, 63 bytes each, 253 in all; the last label not all digits, so that a
    /// mistyped IPv4 address is not taken for a name), or nil.
    private static func hostNameProblem(_ name: String) -> String? {
        let looksNumeric = name.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "." }
        if looksNumeric { return "\(name) is not an IPv4 address (four numbers 0...255, no leading zeros)" }
        guard name.utf8.count <= 253 else { return "the host name is longer than 253 bytes" }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard !label.isEmpty else { return "\(name) is not a host name (an empty label)" }
            guard label.utf8.count <= 63 else { return "\(name) is not a host name (a label longer than 63 bytes)" }
            let allowed = label.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-")
            }
            guard allowed, !label.hasPrefix("-"), !label.hasSuffix("-") else {
                return "\(name) is not an IP address or a host name (letters, digits, inner hyphens and dots)"
            }
        }
        if let last = labels.last, last.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return "\(name) is not a host name (its last label is all digits)"
        }
        return nil
    }
}

/// An address that is not `HOST:PORT` of a cluster node.
public struct ClusterAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text given.
    public let text: String
    public let reason: String

    public var description: String { "invalid address '\(text)': \(reason)" }
}
