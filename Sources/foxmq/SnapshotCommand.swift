import ArgumentParser
import FoxBrokerStore

/// `foxmq snapshot create|restore`: wiring only; the work is `NodeSnapshot` in FoxBrokerStore.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Take a consistent snapshot of a node's store, or restore one.",
        discussion: """
            A snapshot is one file: a compacted copy of the node's LMDB store (DATA/data.mdb, \
            taken at one applied index while the node runs) and of DIR/admin.sqlite (SQLite's \
            online backup), with a manifest holding the formats, the log index range, the \
            applied index and a SHA-256 per file.
            """,
        subcommands: [Create.self, Restore.self]
    )

    /// DIR and --data-dir, as `run` takes them.
    struct Location: ParsableArguments {
        @Argument(help: "The configuration directory.")
        var directory: String = "foxmq.d"

        @Option(help: ArgumentHelp("The node's store; default DIR/data.", valueName: "PATH"))
        var dataDir: String?

        var dataDirectory: String { dataDir ?? directory + "/data" }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a snapshot of the node's store and admin database to FILE.",
            discussion: """
                Safe while the node runs: the store is opened read-only and copied in one read \
                transaction. FILE is written to a temporary file, synced and renamed into place.
                """
        )

        @Argument(help: "The snapshot file to write.")
        var file: String

        @OptionGroup var location: Location

        @Flag(help: "Replace FILE if it exists.")
        var force = false

        func run() throws {
            let report: SnapshotCreateReport
            do {
                report = try NodeSnapshot.create(
                    dataDirectory: location.dataDirectory, configDirectory: location.directory, file: file,
                    overwrite: force)
            } catch {
                writeStandardError("foxmq snapshot create: \(error)\n")
                throw ExitCode(1)
            }
            let manifest = report.manifest
            print(
                "Wrote \(report.file) (\(report.sizeBytes) bytes) in \(report.elapsedMillis) ms: log indices \(manifest.logRangeText), applied index \(manifest.appliedIndex), incarnation \(manifest.incarnation.map(String.init) ?? "none"), taken at \(manifest.createdAt)."
            )
            for entry in manifest.files {
                print("  \(entry.name): \(entry.size) bytes, SHA-256 \(entry.sha256)")
            }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore the snapshot FILE as the node's store and admin database.",
            discussion: """
                Verifies everything first (formats, checksums, the log range inside, that the \
                store recovers). Refuses a data directory in use by a node, and a non-empty one \
                or an existing DIR/admin.sqlite unless --force. `foxmq run DIR` then starts from \
                the snapshot.
                """
        )

        @Argument(help: "The snapshot file to restore.")
        var file: String

        @OptionGroup var location: Location

        @Flag(
            help:
                "Move an existing data directory and admin.sqlite aside (to NAME.before-restore-<UTC time>) instead of refusing."
        )
        var force = false

        func run() throws {
            let report: SnapshotRestoreReport
            do {
                report = try NodeSnapshot.restore(
                    file: file, dataDirectory: location.dataDirectory, configDirectory: location.directory,
                    force: force)
            } catch {
                writeStandardError("foxmq snapshot restore: \(error)\n")
                throw ExitCode(1)
            }
            let manifest = report.manifest
            for (from, to) in report.movedAside {
                print("Moved \(from) aside to \(to).")
            }
            print(
                "Restored \(report.file) (taken at \(manifest.createdAt)) in \(report.elapsedMillis) ms: log indices \(manifest.logRangeText), applied index \(manifest.appliedIndex), \(report.sessionCount) sessions and \(report.retainedCount) retained messages at index \(report.recoveredIndex)."
            )
            print("  store: \(report.dataDirectory) (marked restored)")
            if let admin = report.adminDatabase {
                print("  admin database: \(admin)")
            }
            let dataOption = location.dataDir.map { " --data-dir \($0)" } ?? ""
            print("Start the node with: foxmq run \(location.directory)\(dataOption)")
        }
    }
}
