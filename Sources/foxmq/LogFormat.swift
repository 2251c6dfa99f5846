import ArgumentParser
import Logging

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// `--log json|full|compact`, as the original.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case json, full, compact
}

/// Writes log records to standard error in one of the three formats. `json` gives one object
/// per line for log shippers.
struct FoxLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let line: String
        switch format {
        case .json:
            var fields = [
                "\"timestamp\":\(jsonString(Self.timestamp()))",
                "\"level\":\(jsonString(event.level.rawValue))",
                "\"target\":\(jsonString(label))",
                "\"message\":\(jsonString("\(event.message)"))",
            ]
            for (key, value) in all.sorted(by: { $0.key < $1.key }) {
                fields.append("\(jsonString(key)):\(jsonString("\(value)"))")
            }
            line = "{" + fields.joined(separator: ",") + "}"
        case .full:
            let rendered = all.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line =
                "\(Self.timestamp()) \(event.level.rawValue.uppercased()) \(label): \(event.message)"
                + (rendered.isEmpty ? "" : " \(rendered)") + " (\(event.source) \(event.file):\(event.line))"
        case .compact:
            let rendered = all.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line =
                "\(Self.timestamp()) \(event.level.rawValue.uppercased()) \(event.message)"
                + (rendered.isEmpty ? "" : " \(rendered)")
        }
        writeStandardError(line + "\n")
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(time.tv_nsec / 1_000_000), 3))Z"
    }

    /// The level from FOXMQ_LOG, else RUST_LOG (kept as an alias for the original's users): the
    /// last bare level word, e.g. "debug" or "foxmq=debug,warn" gives debug... the last wins.
    static func level(from environment: [String: String]) -> Logger.Level {
        guard let spec = environment["FOXMQ_LOG"] ?? environment["RUST_LOG"] else { return .info }
        var level = Logger.Level.info
        for directive in spec.split(separator: ",") {
            let word = directive.split(separator: "=").last.map { $0.lowercased() } ?? ""
            switch word {
            case "trace": level = .trace
            case "debug": level = .debug
            case "info": level = .info
            case "warn", "warning": level = .warning
            case "error": level = .error
            case "off": level = .critical
            default: continue
            }
        }
        return level
    }
}

private func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case let c where c.value < 0x20:
            let hex = String(c.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
