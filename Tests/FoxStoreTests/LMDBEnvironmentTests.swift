import CLMDB
import Foundation
import XCTest

@testable import FoxStore

/// The LMDB environment layer against real files: each test opens environments in a fresh
/// temporary directory and checks what comes back from them, after commits, aborts, map growth,
/// reopening, copying and deliberate damage.
final class LMDBEnvironmentTests: XCTestCase {
    private var directories: [TemporaryDirectory] = []

    override func tearDown() {
        for directory in directories { directory.remove() }
        directories = []
        super.tearDown()
    }

    private func temporaryDirectory() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        directories.append(directory)
        return directory
    }

    private func storeDirectory(_ name: String = "store") throws -> String {
        try temporaryDirectory().file(name)
    }

    private func key(_ number: UInt64) -> [UInt8] {
        withUnsafeBytes(of: number.bigEndian) { Array($0) }
    }

    private func number(_ key: UnsafeRawBufferPointer) -> UInt64 {
        UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// A 1 KiB value that differs per key, so a misplaced value is caught.
    private func value(_ number: UInt64, sizeBytes: Int = 1024) -> [UInt8] {
        (0..<sizeBytes).map { UInt8(truncatingIfNeeded: Int(number) &* 31 &+ $0) }
    }

    private func allEntries(_ environment: LMDBEnvironment, _ table: LMDBTable) throws -> [([UInt8], [UInt8])] {
        try environment.read { transaction in
            var entries: [([UInt8], [UInt8])] = []
            try transaction.forEach(table) { key, value in
                entries.append((Array(key), Array(value)))
                return true
            }
            return entries
        }
    }

    // MARK: - Sizes

    /// A table's statistics count its entries and the pages that hold them (a 1 KiB value per
    /// entry: at least the values' bytes, within a page per entry of them), and the commit time
    /// is recorded for every write.
    func testTableStatisticsAndCommitTime() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let table = try environment.openTable("log")
        XCTAssertEqual(try environment.read { try $0.statistics(table) }, LMDBTableStatistics(entries: 0, bytes: 0))
        try environment.write { transaction in
            for number in 0..<100 as Range<UInt64> {
                try transaction.put(table, key: key(number), value: value(number))
            }
        }
        XCTAssertGreaterThan(environment.lastCommitNanoseconds, 0)
        let statistics = try environment.read { try $0.statistics(table) }
        XCTAssertEqual(statistics.entries, 100)
        XCTAssertGreaterThanOrEqual(statistics.bytes, 100 * 1024)
        XCTAssertLessThanOrEqual(statistics.bytes, 100 * 1024 + 100 * environment.info.pageSizeBytes)
        try environment.write { transaction in
            for number in 0..<50 as Range<UInt64> { _ = try transaction.delete(table, key: key(number)) }
        }
        let after = try environment.read { try $0.statistics(table) }
        XCTAssertEqual(after.entries, 50)
        XCTAssertLessThan(after.bytes, statistics.bytes)
    }

    // MARK: - Round trips

    /// Within one write transaction, reads see the transaction's own puts, replacements and
    /// deletes; after the commit a read transaction sees the final state.
    func testPutGetDeleteRoundTripsWithinOneTransaction() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let table = try environment.openTable("rows")
        try environment.write { transaction in
            try transaction.put(table, key: bytes("a"), value: bytes("one"))
            XCTAssertEqual(try transaction.get(table, key: bytes("a")), bytes("one"))
            try transaction.put(table, key: bytes("a"), value: bytes("two"))
            XCTAssertEqual(try transaction.get(table, key: bytes("a")), bytes("two"))
            XCTAssertTrue(try transaction.delete(table, key: bytes("a")))
            XCTAssertNil(try transaction.get(table, key: bytes("a")))
            XCTAssertFalse(try transaction.delete(table, key: bytes("a")))
            try transaction.put(table, key: bytes("b"), value: [UInt8]())
            try transaction.put(table, key: bytes("c"), valueSizeBytes: 3) { buffer in
                buffer.copyBytes(from: [1, 2, 3])
            }
            XCTAssertEqual(try transaction.count(table), 2)
        }
        try environment.read { transaction in
            XCTAssertNil(try transaction.get(table, key: bytes("a")))
            XCTAssertEqual(try transaction.get(table, key: bytes("b")), [])
            XCTAssertEqual(try transaction.get(table, key: bytes("c")), [1, 2, 3])
            XCTAssertEqual(try transaction.count(table), 2)
        }
    }

    /// Each write commits on its own: a later transaction sees an earlier one's puts and
    /// deletes, through copies (`get`) and in place (`withValue`), for keys given as arrays,
    /// slices and raw buffers.
    func testPutGetDeleteRoundTripsAcrossTransactions() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let table = try environment.openTable("rows")
        try environment.write { transaction in
            try transaction.put(table, key: key(1), value: value(1))
            try transaction.put(table, key: key(2)[...], value: value(2)[...])
        }
        try environment.read { transaction in
            XCTAssertEqual(try transaction.get(table, key: key(1)), value(1))
            let sizeBytes = try key(2).withUnsafeBytes { keyBytes in
                try transaction.withValue(table, key: keyBytes) { $0.count }
            }
            XCTAssertEqual(sizeBytes, 1024)
        }
        try environment.write { transaction in
            XCTAssertTrue(try transaction.delete(table, key: key(1)))
        }
        try environment.read { transaction in
            XCTAssertNil(try transaction.get(table, key: key(1)))
            XCTAssertEqual(try transaction.get(table, key: key(2)), value(2))
            XCTAssertNil(try transaction.withValue(table, key: key(1)) { $0.count })
        }
    }

    /// Appends with increasing big-endian keys (across the 255/256 byte boundary, where
    /// little-endian keys would sort wrongly) come back in numeric order; an append whose key
    /// is not greater than the last throws `appendOutOfOrder` and aborts its transaction.
    func testAppendWithIncreasingBigEndianKeys() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let table = try environment.openTable("log")
        for batch in UInt64(0)..<10 {
            try environment.write { transaction in
                for offset in UInt64(0)..<100 {
                    let index = batch * 100 + offset
                    try transaction.put(table, key: key(index), value: value(index, sizeBytes: 100), append: true)
                }
            }
        }
        var seen: [UInt64] = []
        try environment.read { transaction in
            try transaction.forEach(table) { key, value in
                seen.append(number(key))
                XCTAssertEqual(Array(value), self.value(number(key), sizeBytes: 100))
                return true
            }
            XCTAssertEqual(try transaction.first(table)?.key, key(0))
            XCTAssertEqual(try transaction.last(table)?.key, key(999))
        }
        XCTAssertEqual(seen, Array(0..<1000))

        XCTAssertThrowsError(
            try environment.write { transaction in
                try transaction.put(table, key: key(1000), value: [1], append: true)
                try transaction.put(table, key: key(500), value: [2], append: true)
            }
        ) { error in
            XCTAssertEqual(error as? StoreError, .appendOutOfOrder(path: environment.dataPath, table: "log"))
        }
        XCTAssertEqual(try environment.entryCount(table), 1000)
        XCTAssertEqual(try environment.read { try $0.get(table, key: key(500)) }, value(500, sizeBytes: 100))
    }

    /// `forEach` starts at the first key ≥ the start key (present or not), visits keys in order
    /// whatever the insertion order, stops when the body returns false, and inside a write
    /// transaction sees uncommitted puts.
    func testForEachFromAStartKeyInOrder() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let table = try environment.openTable("rows")
        let numbers: [UInt64] = [70, 10, 100, 40, 20, 90, 30, 60, 80, 50]
        try environment.write { transaction in
            for number in numbers { try transaction.put(table, key: key(number), value: key(number * 2)) }
            var inTransaction: [UInt64] = []
            try transaction.forEach(table, from: key(95)) { key, _ in
                inTransaction.append(self.number(key))
                return true
            }
            XCTAssertEqual(inTransaction, [100])
        }
        func visit(from start: [UInt8]?, stopAfter countMax: Int = .max) throws -> [UInt64] {
            try environment.read { transaction in
                var visited: [UInt64] = []
                try transaction.forEach(table, from: start) { key, value in
                    XCTAssertEqual(self.number(value), self.number(key) * 2)
                    visited.append(self.number(key))
                    return visited.count < countMax
                }
                return visited
            }
        }
        XCTAssertEqual(try visit(from: nil), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
        XCTAssertEqual(try visit(from: key(40)), [40, 50, 60, 70, 80, 90, 100])
        XCTAssertEqual(try visit(from: key(35), stopAfter: 3), [40, 50, 60])
        XCTAssertEqual(try visit(from: key(101)), [])
        XCTAssertEqual(try visit(from: [0]), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    }

    /// `deleteRange` deletes only keys below the bound, smallest first, and at most `limit` per
    /// call, so a trim can run in bounded batches.
    func testDeleteRangeIsBoundedByKeyAndLimit() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let table = try environment.openTable("log")
        try environment.write { transaction in
            for index in UInt64(0)..<100 { try transaction.put(table, key: key(index), value: [1], append: true) }
        }
        XCTAssertEqual(try environment.write { try $0.deleteRange(table, below: key(50), limit: 20) }, 20)
        XCTAssertEqual(try environment.read { try $0.first(table)?.key }, key(20))
        XCTAssertEqual(try environment.write { try $0.deleteRange(table, below: key(50), limit: 100) }, 30)
        XCTAssertEqual(try environment.read { try $0.first(table)?.key }, key(50))
        XCTAssertEqual(try environment.write { try $0.deleteRange(table, below: key(50), limit: 100) }, 0)
        XCTAssertEqual(try environment.write { try $0.deleteRange(table, below: key(1000), limit: 0) }, 0)
        XCTAssertEqual(try environment.entryCount(table), 50)
        XCTAssertEqual(try environment.read { try $0.last(table)?.key }, key(99))
        XCTAssertEqual(try environment.write { try $0.deleteRange(table, below: key(1000), limit: 1000) }, 50)
        XCTAssertNil(try environment.read { try $0.first(table) })
    }

    /// A body that throws aborts its transaction: its puts, replacements and deletes are all
    /// gone, the error reaches the caller unchanged, and the next write works.
    func testThrowingBodyWritesNothing() throws {
        struct Refused: Error, Equatable {}
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let table = try environment.openTable("rows")
        try environment.write { try $0.put(table, key: key(1), value: bytes("kept")) }
        let transactionBefore = environment.info.lastTransactionID
        XCTAssertThrowsError(
            try environment.write { transaction in
                try transaction.put(table, key: key(1), value: bytes("replaced"))
                try transaction.put(table, key: key(2), value: bytes("new"))
                try transaction.delete(table, key: key(1))
                throw Refused()
            }
        ) { error in
            XCTAssertEqual(error as? Refused, Refused())
        }
        XCTAssertEqual(environment.info.lastTransactionID, transactionBefore)
        try environment.read { transaction in
            XCTAssertEqual(try transaction.get(table, key: key(1)), bytes("kept"))
            XCTAssertNil(try transaction.get(table, key: key(2)))
            XCTAssertEqual(try transaction.count(table), 1)
        }
        try environment.write { try $0.put(table, key: key(2), value: bytes("new")) }
        XCTAssertEqual(try environment.entryCount(table), 2)
    }

    // MARK: - Map growth and limits

    /// From a 1 MiB map growing in 1 MiB steps, 20 MiB written in 200 transactions and then one
    /// transaction larger than all the room left commit: the map grows by itself (the big
    /// transaction's body is rerun after the growth) and every value reads back.
    func testMapGrowsFromATinyMap() throws {
        let options = LMDBOptions(mapSizeBytes: 1 << 20, mapGrowthBytes: 1 << 20, sync: false)
        let environment = try LMDBEnvironment(directory: try storeDirectory(), options: options)
        let table = try environment.openTable("log")
        XCTAssertEqual(environment.info.mapSizeBytes, 1 << 20)
        for batch in UInt64(0)..<200 {
            try environment.write { transaction in
                for offset in UInt64(0)..<100 {
                    let index = batch * 100 + offset
                    try transaction.put(table, key: key(index), value: value(index), append: true)
                }
            }
        }
        let infoAfterSmallWrites = environment.info
        XCTAssertGreaterThan(infoAfterSmallWrites.mapSizeBytes, 20 << 20)
        // More 1 KiB values than the room left in the map (a leaf page holds three).
        let bigCount = UInt64(infoAfterSmallWrites.mapSizeBytes - infoAfterSmallWrites.usedBytes) / 1024 + 1024
        var runs = 0
        try environment.write { transaction in
            runs += 1
            for index in UInt64(20_000)..<(20_000 + bigCount) {
                try transaction.put(table, key: key(index), value: value(index), append: true)
            }
        }
        XCTAssertGreaterThan(runs, 1, "the big transaction should have needed a larger map")
        XCTAssertGreaterThan(environment.info.mapSizeBytes, infoAfterSmallWrites.mapSizeBytes)
        XCTAssertEqual(try environment.entryCount(table), 20_000 + Int(bigCount))
        var checked: UInt64 = 0
        try environment.read { transaction in
            try transaction.forEach(table) { key, value in
                XCTAssertEqual(number(key), checked)
                if checked % 997 == 0 { XCTAssertEqual(Array(value), self.value(checked)) }
                checked += 1
                return true
            }
        }
        XCTAssertEqual(checked, 20_000 + bigCount)
        XCTAssertLessThanOrEqual(environment.info.usedBytes, environment.info.mapSizeBytes)
    }

    /// With `mapSizeMaxBytes` 4 MiB (512 KiB of it kept for trims), writing until the cap throws
    /// `StoreError.full` naming data.mdb and the limit; everything committed before is intact,
    /// the failed transaction left nothing, and the environment still serves reads, trims
    /// (`freeingSpace`) that free space, and then new writes. The map never passes the cap.
    func testMapSizeMaxReachedThrowsFullAndKeepsTheData() throws {
        let options = LMDBOptions(
            mapSizeBytes: 1 << 20, mapGrowthBytes: 1 << 20, mapSizeMaxBytes: 4 << 20, sync: false,
            freeingReserveBytes: 512 << 10)
        let environment = try LMDBEnvironment(directory: try storeDirectory(), options: options)
        let table = try environment.openTable("log")
        func writeBatch(_ batch: UInt64) throws {
            try environment.write { transaction in
                for offset in UInt64(0)..<64 {
                    let index = batch * 64 + offset
                    try transaction.put(table, key: key(index), value: value(index), append: true)
                }
            }
        }
        var committedBatches: UInt64 = 0
        var fullError: StoreError?
        for batch in UInt64(0)..<1000 {
            do {
                try writeBatch(batch)
                committedBatches += 1
            } catch let error as StoreError {
                fullError = error
                break
            }
        }
        guard case .full(let detail) = fullError else {
            return XCTFail("expected StoreError.full, got \(String(describing: fullError))")
        }
        XCTAssertTrue(detail.contains(environment.dataPath), detail)
        XCTAssertTrue(detail.contains("mapSizeMaxBytes"), detail)
        XCTAssertEqual(environment.info.mapSizeBytes, (4 << 20) - (512 << 10))
        XCTAssertGreaterThan(committedBatches, 10)
        // Top up with single entries until even those fail: the map is now full to the last
        // page or two, where LMDB cannot even delete without the reserve (pages freed by a
        // commit are reusable only two commits later).
        var singles: UInt64 = 0
        while singles < 100 {
            do {
                try environment.write { transaction in
                    let index = committedBatches * 64 + singles
                    try transaction.put(table, key: key(index), value: value(index), append: true)
                }
                singles += 1
            } catch {
                XCTAssertTrue(error is StoreError, "\(error)")
                break
            }
        }
        XCTAssertLessThan(singles, 100)
        let committedCount = committedBatches * 64 + singles
        XCTAssertThrowsError(try writeBatch(committedBatches + 1))

        let entries = try allEntries(environment, table)
        XCTAssertEqual(UInt64(entries.count), committedCount)
        for (index, entry) in entries.enumerated() {
            XCTAssertEqual(entry.0, key(UInt64(index)))
            XCTAssertEqual(entry.1, value(UInt64(index)))
        }

        // Free half the entries in bounded trims, then new batches fit again.
        let half = committedBatches * 32
        while try environment.write(freeingSpace: true, { try $0.deleteRange(table, below: key(half), limit: 200) })
            > 0
        {
            XCTAssertLessThanOrEqual(environment.info.mapSizeBytes, (4 << 20) - (512 << 10))
        }
        XCTAssertEqual(try environment.entryCount(table), Int(committedCount - half))
        XCTAssertGreaterThan(try environment.freePages(), 0)
        try writeBatch(committedBatches + 1)
        try writeBatch(committedBatches + 2)
        XCTAssertEqual(try environment.entryCount(table), Int(committedCount - half + 128))
        XCTAssertLessThanOrEqual(environment.info.mapSizeBytes, 4 << 20)
    }

    // MARK: - Opening

    /// Data committed before `close` is there after reopening, read-write and read-only, and
    /// the transaction IDs continue.
    func testReopenAfterCloseSeesTheData() throws {
        let directory = try storeDirectory()
        let environment = try LMDBEnvironment(directory: directory)
        let table = try environment.openTable("rows")
        try environment.write { try $0.put(table, key: bytes("k"), value: bytes("v")) }
        let lastTransactionID = environment.info.lastTransactionID
        environment.close()

        let reopened = try LMDBEnvironment(directory: directory)
        XCTAssertEqual(reopened.info.lastTransactionID, lastTransactionID)
        XCTAssertEqual(reopened.staleReadersCleared, 0)
        let reopenedTable = try reopened.openTable("rows")
        XCTAssertEqual(try reopened.read { try $0.get(reopenedTable, key: bytes("k")) }, bytes("v"))
        reopened.close()

        let readOnly = try LMDBEnvironment(directory: directory, options: LMDBOptions(readOnly: true))
        let readOnlyTable = try readOnly.openTable("rows")
        XCTAssertEqual(try readOnly.read { try $0.get(readOnlyTable, key: bytes("k")) }, bytes("v"))
        XCTAssertThrowsError(try readOnly.openTable("absent")) { error in
            XCTAssertEqual(error as? StoreError, .tableMissing(path: readOnly.dataPath, table: "absent"))
        }
        XCTAssertNoThrow(try readOnly.sync())
    }

    /// A read-only open of an empty directory, or of none, is `notAStore` naming the path, and
    /// creates nothing.
    func testReadOnlyOpenOfAnEmptyDirectoryIsNotAStore() throws {
        let directory = try temporaryDirectory()
        XCTAssertThrowsError(try LMDBEnvironment(directory: directory.path, options: LMDBOptions(readOnly: true))) {
            error in
            guard case .notAStore(let path, let detail) = error as? StoreError else {
                return XCTFail("expected notAStore, got \(error)")
            }
            XCTAssertEqual(path, directory.path)
            XCTAssertTrue(detail.contains("data.mdb"), detail)
            XCTAssertTrue("\(error)".hasPrefix(directory.path), "\(error)")
        }
        XCTAssertEqual(try directory.contents(), [])
        let missing = directory.file("missing")
        XCTAssertThrowsError(try LMDBEnvironment(directory: missing, options: LMDBOptions(readOnly: true))) { error in
            guard case .notAStore(let path, _) = error as? StoreError else {
                return XCTFail("expected notAStore, got \(error)")
            }
            XCTAssertEqual(path, missing)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing))
    }

    /// A second open of an open environment, under the same or another spelling of its path,
    /// is `inUse`; after `close` it opens again.
    func testOpeningTheSamePathTwiceIsInUse() throws {
        let directory = try storeDirectory()
        let environment = try LMDBEnvironment(directory: directory)
        XCTAssertThrowsError(try LMDBEnvironment(directory: directory)) { error in
            XCTAssertEqual(error as? StoreError, .inUse(path: directory))
        }
        let otherSpelling = directory + "/."
        XCTAssertThrowsError(try LMDBEnvironment(directory: otherSpelling, options: LMDBOptions(readOnly: true))) {
            error in
            XCTAssertEqual(error as? StoreError, .inUse(path: otherSpelling))
        }
        environment.close()
        let again = try LMDBEnvironment(directory: directory)
        again.close()
    }

    /// Garbage over the meta pages of data.mdb gives an error that names the file and LMDB's
    /// diagnosis, in read-write and read-only opens, instead of a crash or an empty store.
    func testCorruptedMetaPagesGiveAnErrorNamingTheFile() throws {
        let directory = try storeDirectory()
        let environment = try LMDBEnvironment(directory: directory)
        let table = try environment.openTable("rows")
        try environment.write { try $0.put(table, key: bytes("k"), value: bytes("v")) }
        let dataPath = environment.dataPath
        let pageSizeBytes = environment.info.pageSizeBytes
        environment.close()

        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: dataPath))
        handle.write(Data((0..<(2 * pageSizeBytes)).map { UInt8(truncatingIfNeeded: $0 &* 167 &+ 13) }))
        handle.closeFile()

        for readOnly in [false, true] {
            XCTAssertThrowsError(try LMDBEnvironment(directory: directory, options: LMDBOptions(readOnly: readOnly))) {
                error in
                guard case .notAStore(let path, let detail) = error as? StoreError else {
                    return XCTFail("expected notAStore, got \(error)")
                }
                XCTAssertEqual(path, dataPath)
                XCTAssertTrue(detail.contains("MDB_INVALID"), detail)
                XCTAssertTrue("\(error)".hasPrefix(dataPath), "\(error)")
            }
        }
    }

    // MARK: - Copies and statistics

    /// A compact copy opens as a store of its own with exactly the entries of the original,
    /// in a smaller file once half the entries were deleted; copying onto an existing store
    /// fails.
    func testCompactCopyHasTheSameEntries() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let log = try environment.openTable("log")
        let rows = try environment.openTable("rows")
        try environment.write { transaction in
            for index in UInt64(0)..<2000 {
                try transaction.put(log, key: key(index), value: value(index), append: true)
            }
            try transaction.put(rows, key: bytes("meta"), value: bytes("v1"))
        }
        _ = try environment.write { try $0.deleteRange(log, below: key(1000), limit: 1000) }
        let copyDirectory = try storeDirectory("copy")
        try environment.copy(toDirectory: copyDirectory, compact: true)

        let copy = try LMDBEnvironment(directory: copyDirectory, options: LMDBOptions(readOnly: true))
        let copyLog = try copy.openTable("log")
        let copyRows = try copy.openTable("rows")
        let original = try allEntries(environment, log)
        let copied = try allEntries(copy, copyLog)
        XCTAssertEqual(copied.count, 1000)
        XCTAssertTrue(original.elementsEqual(copied) { $0.0 == $1.0 && $0.1 == $1.1 })
        XCTAssertEqual(try copy.read { try $0.get(copyRows, key: bytes("meta")) }, bytes("v1"))
        XCTAssertEqual(try copy.freePages(), 0)
        let originalSizeBytes = try fileSizeBytes(environment.dataPath)
        let copySizeBytes = try fileSizeBytes(copy.dataPath)
        XCTAssertLessThan(copySizeBytes, originalSizeBytes)

        XCTAssertThrowsError(try environment.copy(toDirectory: copyDirectory, compact: false)) { error in
            XCTAssertTrue("\(error)".contains("data.mdb"), "\(error)")
        }
    }

    private func fileSizeBytes(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.intValue ?? -1
    }

    /// `entryCount` counts per table, `deleteAll` empties one table only, `info` reports the
    /// page size, used space and one transaction ID per commit, and deletes put pages on the
    /// freelist.
    func testEntryCountInfoAndFreePages() throws {
        let environment = try LMDBEnvironment(directory: try storeDirectory())
        let log = try environment.openTable("log")
        let rows = try environment.openTable("rows")
        XCTAssertEqual(try environment.openTable("log"), log)
        XCTAssertNotEqual(log, rows)
        XCTAssertEqual(try environment.entryCount(log), 0)
        let transactionBefore = environment.info.lastTransactionID
        try environment.write { transaction in
            for index in UInt64(0)..<500 { try transaction.put(log, key: key(index), value: value(index)) }
            for index in UInt64(0)..<7 { try transaction.put(rows, key: key(index), value: [1]) }
        }
        XCTAssertEqual(environment.info.lastTransactionID, transactionBefore + 1)
        XCTAssertEqual(try environment.entryCount(log), 500)
        XCTAssertEqual(try environment.entryCount(rows), 7)

        let info = environment.info
        XCTAssertEqual(info.pageSizeBytes, Int(sysconf(Int32(_SC_PAGESIZE))))
        XCTAssertGreaterThan(info.usedBytes, 500 * 1024)
        XCTAssertEqual(info.usedBytes % info.pageSizeBytes, 0)
        XCTAssertEqual(info.readersMax, 256)
        XCTAssertEqual(info.mapSizeBytes, 64 << 20)

        try environment.write { try $0.deleteAll(log) }
        // A second commit lets LMDB record the pages the drop freed.
        try environment.write { try $0.put(rows, key: key(100), value: [2]) }
        XCTAssertEqual(try environment.entryCount(log), 0)
        XCTAssertEqual(try environment.entryCount(rows), 8)
        XCTAssertGreaterThan(try environment.freePages(), 100)
    }

    /// `foxdump` reads while the node grows the map: a read-only environment whose map another
    /// process enlarged (here `mdb_load` writing more than the old map holds) adopts the new
    /// size on `MDB_MAP_RESIZED` and reads everything.
    func testReadOnlyEnvironmentAdoptsAMapGrownByAnotherProcess() throws {
        let loader = "/usr/bin/mdb_load"
        // scripts/test installs lmdb-utils: a missing loader fails here rather than skipping.
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: loader), "mdb_load (lmdb-utils) is not installed")
        let directory = try storeDirectory()
        let writer = try LMDBEnvironment(
            directory: directory, options: LMDBOptions(mapSizeBytes: 1 << 20, mapGrowthBytes: 1 << 20))
        let writerTable = try writer.openTable("log")
        try writer.write { try $0.put(writerTable, key: key(0), value: value(0)) }
        writer.close()

        let reader = try LMDBEnvironment(directory: directory, options: LMDBOptions(readOnly: true))
        let readerTable = try reader.openTable("log")
        XCTAssertEqual(reader.info.mapSizeBytes, 1 << 20)

        // mdb_dump's format: the header's mapsize makes mdb_load grow the map to 16 MiB.
        var dump = "VERSION=3\nformat=bytevalue\ndatabase=log\ntype=btree\nmapsize=16777216\nHEADER=END\n"
        let digits = Array("0123456789abcdef".utf8)
        func hex(_ bytes: [UInt8]) -> String {
            String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
        }
        for index in UInt64(1)...3000 { dump += " \(hex(key(index)))\n \(hex(value(index)))\n" }
        dump += "DATA=END\n"
        let dumpPath = try temporaryDirectory().file("dump.txt")
        try dump.write(toFile: dumpPath, atomically: false, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: loader)
        process.arguments = ["-f", dumpPath, directory]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)

        XCTAssertEqual(try reader.entryCount(readerTable), 3001)
        XCTAssertEqual(reader.info.mapSizeBytes, 16 << 20)
        XCTAssertEqual(try reader.read { try $0.get(readerTable, key: key(3000)) }, value(3000))
    }
}
