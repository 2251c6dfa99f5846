import ArgumentParser
import FoxBrokerStore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every record and row, the hash chain, the checkpoint and recovery; exit 1 on any problem.",
        discussion: """
            Checks: every log record decodes (CRC-32C, format, event) with contiguous indices and an \
            unbroken hash chain from the log base; every session, retained, cursor and meta row \
            decodes and re-encodes to the bytes stored; the checkpoint's applied index lies in the \
            log or at its base; the records after the checkpoint replay on the rows (recovery), and \
            while the log still starts at index 1, replaying it up to the checkpoint gives the rows' \
            state digest. Read in short transactions: safe while the node runs.
            """)

    @OptionGroup var store: StoreOptions

    @Flag(help: "No progress lines on standard error.")
    var quiet = false

    func run() throws {
        let nodeStore = try store.open()
        let report = nodeStore.verify { line in
            if !quiet { Output.error("foxdump: \(line)") }
        }
        if store.json {
            Output.line(Self.document(report).serialized())
        } else {
            Output.line(Self.human(report))
        }
        if !report.isOK { throw ExitCode(ExitStatus.problems) }
    }

    static func rowsCheck(_ check: VerifyReport.RowsCheck) -> (status: String, detail: String) {
        switch check {
        case .matchesLog(let digest): ("match", digest)
        case .skipped(let reason): ("skipped", reason)
        }
    }

    static func document(_ report: VerifyReport) -> JSON {
        let check = rowsCheck(report.rowsCheck)
        return .object([
            ("ok", .bool(report.isOK)),
            ("dataFile", .string(report.dataFile)),
            (
                "log",
                .object([
                    ("records", .number(report.logRecordCount)),
                    ("firstIndex", JSON.optional(report.firstLogIndex) { .number($0) }),
                    ("lastIndex", JSON.optional(report.lastLogIndex) { .number($0) }),
                    ("baseIndex", JSON.optional(report.logBase) { .number($0.firstIndex) }),
                ])
            ),
            (
                "rows",
                .object([
                    ("sessions", .number(report.sessionRowCount)), ("retained", .number(report.retainedRowCount)),
                    ("cursors", .number(report.cursorRowCount)), ("meta", .number(report.metaRowCount)),
                ])
            ),
            ("checkpointIndex", .number(report.checkpointIndex)),
            ("rowsMatchLog", .object([("status", .string(check.status)), ("detail", .string(check.detail))])),
            (
                "recovery",
                .object([
                    ("ok", .bool(report.recoveredDigest != nil)),
                    ("replayed", .number(report.replayedCount)),
                    ("index", JSON.optional(report.recoveredIndex) { .number($0) }),
                    ("stateDigest", JSON.optional(report.recoveredDigest) { .string($0) }),
                ])
            ),
            (
                "problems",
                .array(
                    report.problems.map {
                        .object([
                            ("table", .string($0.table)), ("keys", .string($0.keys)), ("detail", .string($0.detail)),
                        ])
                    })
            ),
            ("problemsNotListed", .number(report.problemsNotListed)),
            ("notes", .array(report.notes.map { .string($0) })),
        ])
    }

    static func human(_ report: VerifyReport) -> String {
        var lines = ["store       \(report.dataFile)"]
        var log = "log         \(report.logRecordCount) records"
        if let first = report.firstLogIndex, let last = report.lastLogIndex { log += ", indices \(first)...\(last)" }
        log += report.logBase.map { ", trimmed below \($0.firstIndex)" } ?? ", from genesis"
        lines.append(log)
        lines.append(
            "rows        \(report.sessionRowCount) sessions, \(report.retainedRowCount) retained, "
                + "\(report.cursorRowCount) cursors, \(report.metaRowCount) meta; checkpoint at index \(report.checkpointIndex)"
        )
        switch report.rowsCheck {
        case .matchesLog(let digest): lines.append("rows = log  yes (state digest \(digest))")
        case .skipped(let reason): lines.append("rows = log  not compared: \(reason)")
        }
        if let digest = report.recoveredDigest, let index = report.recoveredIndex {
            lines.append(
                "recovery    replays \(report.replayedCount) records after the checkpoint to index \(index) (state digest \(digest))"
            )
        } else {
            lines.append("recovery    would fail")
        }
        for note in report.notes { lines.append("note        \(note)") }
        if report.isOK {
            lines.append("OK")
        } else {
            for problem in report.problems { lines.append("PROBLEM     \(problem)") }
            if report.problemsNotListed > 0 { lines.append("PROBLEM     ... and \(report.problemsNotListed) more") }
            let total = report.problems.count + report.problemsNotListed
            lines.append("\(total) problem\(total == 1 ? "" : "s") found")
        }
        return lines.joined(separator: "\n")
    }
}
