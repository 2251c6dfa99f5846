import ArgumentParser
import FoxBrokerCore
import FoxBrokerStore
import FoxStore

/// Compares two cluster nodes' logs: every node applies the same committed entries in the same
/// order, so their logs hold the same records under the same indices, with the same hash chain.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two nodes' logs: the same records under the same indices, the same hash chain.",
        discussion: """
            Compares the records both logs still hold (each node trims its own log). Exit status \
            0 when they agree, 1 at the first record that differs (both are shown).
            """)

    @Argument(help: "The first node's configuration directory.")
    var first: String

    @Argument(help: "The second node's configuration directory.")
    var second: String

    @Option(name: .customLong("data-dir-1"), help: ArgumentHelp("The first node's store.", valueName: "PATH"))
    var firstDataDir: String?

    @Option(name: .customLong("data-dir-2"), help: ArgumentHelp("The second node's store.", valueName: "PATH"))
    var secondDataDir: String?

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func run() throws {
        let a = try open(first, firstDataDir)
        let b = try open(second, secondDataDir)
        let (summaryA, summaryB): (StoreSummary, StoreSummary)
        do {
            summaryA = try a.store.summary()
            summaryB = try b.store.summary()
        } catch {
            throw a.options.fail(StoreOptions.message(error))
        }
        guard let firstA = summaryA.firstLogIndex, let lastA = summaryA.lastLogIndex,
            let firstB = summaryB.firstLogIndex, let lastB = summaryB.lastLogIndex
        else {
            throw a.options.fail("one of the logs is empty: nothing to compare")
        }
        let from = max(firstA, firstB)
        let through = min(lastA, lastB)
        guard from <= through else {
            throw a.options.fail("the logs do not overlap (\(firstA)-\(lastA) and \(firstB)-\(lastB))")
        }
        var next = from
        var compared: UInt64 = 0
        var lastChain: [UInt8] = []
        while next <= through {
            let limit = Int(min(1024, through - next + 1))
            let recordsA: [LogRecord]
            let recordsB: [LogRecord]
            do {
                recordsA = try a.store.logRecords(from: next, limit: limit)
                recordsB = try b.store.logRecords(from: next, limit: limit)
            } catch {
                throw a.options.fail(StoreOptions.message(error))
            }
            for (recordA, recordB) in zip(recordsA, recordsB) {
                guard recordA.index == recordB.index, recordA.timeMillis == recordB.timeMillis,
                    recordA.event == recordB.event, recordA.chain == recordB.chain
                else {
                    report(
                        equal: false, from: from, through: through, compared: compared,
                        ranges: (firstA, lastA, firstB, lastB),
                        difference: (recordA, recordB))
                    throw ExitCode(ExitStatus.problems)
                }
                compared += 1
                lastChain = recordA.chain
            }
            guard recordsA.count == limit, recordsB.count == limit else {
                throw a.options.fail("a log has a gap between \(next) and \(next + UInt64(limit) - 1)")
            }
            next += UInt64(limit)
        }
        report(
            equal: true, from: from, through: through, compared: compared, ranges: (firstA, lastA, firstB, lastB),
            chain: lastChain)
    }

    private func open(_ directory: String, _ dataDir: String?) throws -> (options: StoreOptions, store: NodeStore) {
        var options = StoreOptions()
        options.directory = directory
        options.dataDir = dataDir
        options.json = json
        return (options, try options.open())
    }

    private func report(
        equal: Bool, from: UInt64, through: UInt64, compared: UInt64,
        ranges: (UInt64, UInt64, UInt64, UInt64), chain: [UInt8] = [],
        difference: (LogRecord, LogRecord)? = nil
    ) {
        if json {
            var fields: [(String, JSON)] = [
                ("equal", .bool(equal)), ("first", .object([("from", .number(ranges.0)), ("to", .number(ranges.1))])),
                ("second", .object([("from", .number(ranges.2)), ("to", .number(ranges.3))])),
                ("comparedFrom", .number(from)), ("comparedThrough", .number(through)),
                ("compared", .number(compared)),
            ]
            if equal { fields.append(("chain", .string(Render.hex(chain)))) }
            if let (recordA, recordB) = difference {
                fields.append(("differsAt", .number(recordA.index)))
                fields.append(("firstRecord", describe(recordA)))
                fields.append(("secondRecord", describe(recordB)))
            }
            Output.line(JSON.object(fields).serialized())
            return
        }
        Output.line("first log: \(ranges.0)-\(ranges.1), second log: \(ranges.2)-\(ranges.3)")
        if let (recordA, recordB) = difference {
            Output.line("DIFFER at index \(recordA.index) (after \(compared) equal records):")
            Output.line("  first:  \(describe(recordA).serialized(indent: nil))")
            Output.line("  second: \(describe(recordB).serialized(indent: nil))")
        } else {
            Output.line("equal: \(compared) records \(from)-\(through), chain \(Render.hex(chain))")
        }
    }

    private func describe(_ record: LogRecord) -> JSON {
        var fields: [(String, JSON)] = [("index", .number(record.index)), ("time", .number(record.timeMillis))]
        if let event = try? BrokerEvent.decode(record.event) {
            let (kind, eventFields) = Render.event(event)
            fields.append(("kind", .string(kind)))
            fields.append(contentsOf: eventFields)
        } else {
            fields.append(("kind", .string("undecodable")))
        }
        fields.append(("chain", .string(Render.hex(record.chain))))
        return .object(fields)
    }
}
