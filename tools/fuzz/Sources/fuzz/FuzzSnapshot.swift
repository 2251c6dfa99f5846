import Crypto

@testable import FoxBrokerStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `snapshot`: what `foxmq snapshot restore` and foxdump read of a snapshot archive before the
/// store inside is opened: the manifest (`SnapshotManifest.decode`, JSON) and the archive's
/// framing (`SnapshotArchiveReader`: header, manifest checksum, file lengths, extraction with
/// SHA-256, nothing after the last file), as restore runs it, on a file in a RAM directory. The
/// first byte picks the mode:
///
/// - 0: the rest is the manifest JSON; a manifest that decodes is encoded again and decodes to
///   the same value.
/// - 1: the rest is the archive file.
/// - 2: the harness writes the header (magic, format 1, length) and the manifest's checksum
///   around the first N bytes of the rest (N: the next two bytes), then the remainder: so that
///   the fuzzer reaches the manifest checks and the files.
///
/// A manifest the reader accepts must be the one its bytes decode to. The store inside is not
/// opened (LMDB reads a file it trusts; restore checks every file's SHA-256 against the
/// manifest, and the manifest's own checksum, before that).
let snapshotHarness = Harness(
    name: "snapshot", summary: "snapshot archive reader and manifest (JSON), decode-encode-decode",
    run: fuzzSnapshot, seeds: snapshotSeeds,
    // Each archive is a file written, read with a 1 MiB buffer, extracted (fsync) and removed:
    // milliseconds, more on a busy machine, whatever the input's size.
    fixedNanos: 100_000_000)

/// The harness's files, in memory when /dev/shm exists: restore fsyncs what it extracts.
let snapshotScratch: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(base)/foxmq-fuzz-snapshot-\(getpid())"
}()

@Sendable func fuzzSnapshot(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let mode = input.byte() % 3
    switch mode {
    case 0:
        checkManifestRoundTrip(input.rest())
    case 1:
        readArchive(input.rest(), manifestBytes: nil)
    default:
        let length = Int(input.u16())
        let manifest = input.take(length)
        readArchive(
            NodeSnapshot.magic + [UInt8](bigEndian: NodeSnapshot.formatVersion)
                + [UInt8](bigEndian: UInt32(manifest.count))
                + manifest + Array(SHA256.hash(data: manifest)) + input.rest(),
            manifestBytes: manifest)
    }
}

private func checkManifestRoundTrip(_ bytes: [UInt8]) {
    guard let manifest = try? SnapshotManifest.decode(bytes) else { return }
    let encoded = manifest.encoded()
    guard let again = try? SnapshotManifest.decode(encoded) else {
        fatalError("snapshot: \(manifest) encodes to JSON that does not decode")
    }
    require(again == manifest, "snapshot: the manifest \(manifest) came back as \(again)")
    require(again.encoded() == encoded, "snapshot: the manifest is not encoded stably")
}

/// Step 1 of `NodeSnapshot.restore`: the manifest, then every file's length, bytes and SHA-256,
/// then the end of the archive.
private func readArchive(_ archive: [UInt8], manifestBytes: [UInt8]?) {
    let file = snapshotScratch + ".archive"
    let staging = snapshotScratch + ".staging"
    writeScratchFile(file, archive)
    mkdir(staging, 0o700)
    defer {
        SnapshotIO.removeTree(staging)
        unlink(file)
    }
    do {
        var reader = try SnapshotArchiveReader(file: file)
        let manifest = try reader.readManifest()
        require(
            manifest.snapshotFormat == NodeSnapshot.formatVersion, "snapshot: format \(manifest.snapshotFormat) read")
        require(manifest.files.contains { $0.name == "data.mdb" }, "snapshot: a manifest without data.mdb was read")
        if let manifestBytes {
            require(
                (try? SnapshotManifest.decode(manifestBytes)) == manifest,
                "snapshot: the reader's manifest is not what its bytes decode to")
        }
        checkManifestRoundTrip(manifest.encoded())
        for entry in manifest.files {
            let length = try reader.integer(UInt64.self, within: "the length of \(entry.name)")
            guard length == entry.size else { return }
            let computed = try reader.extract(size: length, to: staging + "/" + entry.name, within: entry.name)
            guard computed == entry.sha256 else { return }
        }
        try reader.expectEnd()
    } catch {
        // A damaged or foreign archive is refused with a `SnapshotError` (typed throws): what
        // restore reports.
        _ = error.description
    }
}

private func writeScratchFile(_ path: String, _ bytes: [UInt8]) {
    guard let handle = fopen(path, "wb") else { fatalError("snapshot: cannot create \(path)") }
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
    fclose(handle)
    require(written == bytes.count, "snapshot: cannot write \(path)")
}

@Sendable func snapshotSeeds() -> [Seed] {
    let data = Array("not really an LMDB file".utf8)
    let admin = Array("SQLite format 3\0".utf8)
    func hex(_ bytes: [UInt8]) -> String { SnapshotIO.hex(SHA256.hash(data: bytes)) }
    let full = SnapshotManifest(
        snapshotFormat: 1, storeFormat: NodeStore.formatVersion, nodeID: 2, createdAt: "2026-12-06T15:30:12.345Z",
        createdAtMillis: 1_796_657_412_345, firstLogIndex: 1, lastLogIndex: 250, appliedIndex: 200, incarnation: 3,
        lastChain: hex([1]),
        files: [
            .init(name: "data.mdb", size: UInt64(data.count), sha256: hex(data)),
            .init(name: "admin.sqlite", size: UInt64(admin.count), sha256: hex(admin)),
        ])
    let empty = SnapshotManifest(
        snapshotFormat: 1, storeFormat: NodeStore.formatVersion, nodeID: 0, createdAt: "2026-01-01T00:00:00.000Z",
        createdAtMillis: 0, firstLogIndex: nil, lastLogIndex: nil, appliedIndex: 0, incarnation: nil, lastChain: nil,
        files: [.init(name: "data.mdb", size: UInt64(data.count), sha256: hex(data))])
    func archive(_ manifest: SnapshotManifest, files: [[UInt8]]) -> [UInt8] {
        let json = manifest.encoded()
        var bytes =
            NodeSnapshot.magic + [UInt8](bigEndian: NodeSnapshot.formatVersion) + [UInt8](bigEndian: UInt32(json.count))
            + json + Array(SHA256.hash(data: json))
        for file in files { bytes += [UInt8](bigEndian: UInt64(file.count)) + file }
        return bytes
    }
    func framed(_ manifest: SnapshotManifest, files: [[UInt8]]) -> [UInt8] {
        let json = manifest.encoded()
        var bytes = [2] + [UInt8](bigEndian: UInt16(json.count)) + json
        for file in files { bytes += [UInt8](bigEndian: UInt64(file.count)) + file }
        return bytes
    }
    return [
        Seed("manifest-full", [0] + full.encoded()),
        Seed("manifest-empty-log", [0] + empty.encoded()),
        Seed("archive-full", [1] + archive(full, files: [data, admin])),
        Seed("archive-data-only", [1] + archive(empty, files: [data])),
        Seed("framed-full", framed(full, files: [data, admin])),
        Seed("framed-empty-log", framed(empty, files: [data])),
    ]
}
