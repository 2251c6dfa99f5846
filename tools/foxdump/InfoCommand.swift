import ArgumentParser
import FoxBrokerStore

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Store path, format, map size and use, free pages, readers, entries per table, checkpoint, log range."
    )

    @OptionGroup var store: StoreOptions

    func run() throws {
        let nodeStore = try store.open()
        let summary: StoreSummary
        do {
            summary = try nodeStore.summary()
        } catch {
            throw store.fail(StoreOptions.message(error))
        }
        let environment = summary.environment
        // The last consensus commit whose entries are in the log (0: none, or a single node).
        let appliedCommit: UInt64
        do {
            appliedCommit = try nodeStore.appliedCommitIndex()
        } catch {
            throw store.fail(StoreOptions.message(error))
        }
        var checkpoint: JSON = .null
        if let meta = summary.checkpoint {
            checkpoint = .object(
                [("appliedIndex", .number(meta.appliedIndex))] + Render.time("time", meta.nowMillis)
                    + [("limits", Render.limits(meta.limits))])
        } else if let error = summary.checkpointError {
            checkpoint = .object([("error", .string(error))])
        }
        var base: JSON = .null
        if let logBase = summary.logBase {
            base = .object([
                ("firstIndex", .number(logBase.firstIndex)),
                ("previousChain", .string(Render.hex(logBase.previousChain))),
            ])
        } else if let error = summary.logBaseError {
            base = .object([("error", .string(error))])
        }
        let document = JSON.object([
            ("store", .string(summary.directory)),
            ("dataFile", .string(summary.dataFile)),
            ("formatVersion", .number(summary.formatVersion)),
            ("mapSizeBytes", .number(environment.mapSizeBytes)),
            ("usedBytes", .number(environment.usedBytes)),
            ("pageSizeBytes", .number(environment.pageSizeBytes)),
            ("freePages", JSON.optional(summary.freePages) { .number($0) }),
            ("readersUsed", .number(environment.readersUsed)),
            ("readersMax", .number(environment.readersMax)),
            ("lastTransactionId", .number(environment.lastTransactionID)),
            ("tables", .object(summary.tables.map { ($0.table, .number($0.entries)) })),
            ("checkpoint", checkpoint),
            ("firstLogIndex", JSON.optional(summary.firstLogIndex) { .number($0) }),
            ("lastLogIndex", JSON.optional(summary.lastLogIndex) { .number($0) }),
            ("logBase", base),
            ("incarnation", JSON.optional(summary.incarnation) { .number($0) }),
            ("restored", .bool(summary.restored)),
            ("consensusAppliedCommit", .number(appliedCommit)),
        ])
        if store.json {
            Output.line(document.serialized())
            return
        }
        func size(_ bytes: Int) -> String {
            bytes >= 1 << 20 ? "\(bytes) bytes (\(bytes >> 20) MiB)" : "\(bytes) bytes"
        }
        var lines = [
            "store            \(summary.directory)",
            "data file        \(summary.dataFile)",
            "format version   \(summary.formatVersion)",
            "map size         \(size(environment.mapSizeBytes))",
            "used             \(size(environment.usedBytes)) (\(environment.usedBytes / max(1, environment.pageSizeBytes)) pages)",
            "page size        \(environment.pageSizeBytes) bytes",
            "free pages       \(summary.freePages.map(String.init) ?? "unknown")",
            "readers          \(environment.readersUsed) used (high-water mark) of \(environment.readersMax)",
            "last transaction \(environment.lastTransactionID)",
            "entries          " + summary.tables.map { "\($0.table) \($0.entries)" }.joined(separator: ", "),
        ]
        if let meta = summary.checkpoint {
            lines.append(
                "checkpoint       applied index \(meta.appliedIndex) at \(Render.iso8601(millis: meta.nowMillis)) (\(meta.nowMillis))"
            )
        } else {
            lines.append("checkpoint       " + (summary.checkpointError.map { "damaged: \($0)" } ?? "none yet"))
        }
        if let first = summary.firstLogIndex, let last = summary.lastLogIndex {
            lines.append("log              indices \(first)...\(last)")
        } else {
            lines.append("log              empty")
        }
        if let logBase = summary.logBase {
            lines.append("log base         trimmed below \(logBase.firstIndex)")
        } else if let error = summary.logBaseError {
            lines.append("log base         damaged: \(error)")
        } else {
            lines.append("log base         genesis (never trimmed)")
        }
        lines.append("incarnation      \(summary.incarnation.map(String.init) ?? "none yet")")
        lines.append("restored         \(summary.restored ? "yes (made by snapshot restore)" : "no")")
        lines.append("consensus        applied commit \(appliedCommit)")
        Output.line(lines.joined(separator: "\n"))
    }
}
