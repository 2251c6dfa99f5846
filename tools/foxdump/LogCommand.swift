import ArgumentParser
import FoxBrokerCore
import FoxBrokerStore

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Log records in index order: index, time, event kind and fields.",
        discussion: """
            Records are read in chunks, each in its own short read transaction. A record that does \
            not decode is shown with its error (and the exit status is 1); `verify` also checks the \
            hash chain.
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "The first index to show (default: the first record).")
    var from: UInt64?

    @Option(help: "The last index to show.")
    var to: UInt64?

    @Option(help: "Show at most this many records.")
    var limit: Int?

    @Option(help: "Show only publishes whose topic matches this MQTT topic filter (+ and # wildcards).")
    var topic: String?

    mutating func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more.") }
        if let from, let to, to < from { throw ValidationError("--to must not be below --from.") }
    }

    func run() throws {
        let nodeStore = try store.open()
        var next = from ?? 0
        var shown = 0
        var damaged = 0
        let chunk = 1024
        if store.json { Output.line("{\"records\": [") }
        scan: while limit.map({ shown < $0 }) ?? true {
            let entries: [LogEntry]
            do {
                entries = try nodeStore.logEntries(from: next, limit: chunk)
            } catch {
                let message = StoreOptions.message(error)
                if store.json {
                    var text = ""
                    JSON.writeString(message, to: &text)
                    Output.line("], \"count\": \(shown), \"damaged\": \(damaged), \"error\": \(text)}")
                }
                Output.error("foxdump: \(message)")
                throw ExitCode(ExitStatus.problems)
            }
            guard let lastIndexed = entries.last(where: { $0.index != nil })?.index else { break }
            for entry in entries {
                if let to, let index = entry.index, index > to { break scan }
                if let limit, shown >= limit { break scan }
                let document: JSON
                switch entry.record {
                case .success(let record):
                    let fields: [(String, JSON)]
                    let kind: String
                    do {
                        let event = try record.decodeEvent()
                        if let topic {
                            guard let name = Render.publishTopic(event), topicFilter(topic, matches: name) else {
                                continue
                            }
                        }
                        (kind, fields) = Render.event(event)
                    } catch {
                        damaged += 1
                        (kind, fields) = ("damaged", [("error", .string("\(error)"))])
                    }
                    document = .object(
                        [("index", .number(record.index))] + Render.time("time", record.timeMillis)
                            + [("kind", .string(kind))] + fields)
                case .failure(let error):
                    damaged += 1
                    var members: [(String, JSON)] = []
                    if let index = entry.index {
                        members.append(("index", .number(index)))
                    } else {
                        members.append(("key", .string(Render.hex(entry.key))))
                    }
                    document = .object(members + [("kind", .string("damaged")), ("error", .string("\(error)"))])
                }
                print(document, first: shown == 0)
                shown += 1
            }
            guard lastIndexed < UInt64.max else { break }
            next = lastIndexed + 1
        }
        if store.json {
            Output.line("], \"count\": \(shown), \"damaged\": \(damaged)}")
        } else if shown == 0 {
            Output.line("(no records)")
        }
        if damaged > 0 {
            Output.error(
                "foxdump: \(damaged) damaged record\(damaged == 1 ? "" : "s") in \(nodeStore.dataFile); run `foxdump verify`"
            )
            throw ExitCode(ExitStatus.problems)
        }
    }

    private func print(_ document: JSON, first: Bool) {
        if store.json {
            Output.line((first ? "  " : ", ") + document.serialized(indent: nil))
            return
        }
        guard case .object(var members) = document else { return }
        var head: [String] = []
        if let position = members.firstIndex(where: { $0.0 == "index" }) {
            head.append("#" + Render.inline(members.remove(at: position).1))
        } else if let position = members.firstIndex(where: { $0.0 == "key" }) {
            head.append("key " + Render.inline(members.remove(at: position).1))
        }
        if let position = members.firstIndex(where: { $0.0 == "time" }), case .string(let time) = members[position].1 {
            members.remove(at: position)
            let millis = members.firstIndex { $0.0 == "timeMillis" }.map { members.remove(at: $0).1 }
            head.append(time + (millis.map { " (\(Render.inline($0)))" } ?? ""))
        }
        if let position = members.firstIndex(where: { $0.0 == "kind" }), case .string(let kind) = members[position].1 {
            members.remove(at: position)
            head.append(kind)
        }
        Output.line((head + [Render.fields(members)]).filter { !$0.isEmpty }.joined(separator: "  "))
    }
}
