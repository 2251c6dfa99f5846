import FoxConsensusSimulation
import Testing

@testable import FoxConsensus

@Suite struct SequencerTests {
    func e(_ inc: UInt64, _ seq: UInt64) -> Entry {
        Entry(id: EntryID(origin: 0, incarnation: inc, seq: seq), kind: 0, body: [])
    }

    @Test func restoresOrderDropsCopiesAndStaleIncarnations() {
        var s = Sequencer(n: 1, maxHeldBack: 3)
        #expect(s.apply(e(1, 1)).isEmpty)  // held back
        #expect(s.apply(e(1, 0)).map(\.id.seq) == [0, 1])
        #expect(s.apply(e(1, 1)).isEmpty)  // copy
        #expect(s.apply(e(2, 0)).map(\.id.seq) == [0])  // new incarnation
        #expect(s.apply(e(1, 2)).isEmpty)  // stale
        #expect(s.dropped == 2)
    }

    @Test func abandonsAGapPastH() {
        var s = Sequencer(n: 1, maxHeldBack: 3)
        for q in UInt64(2)...4 { #expect(s.apply(e(1, q)).isEmpty) }
        #expect(s.apply(e(1, 5)).map(\.id.seq) == [2, 3, 4, 5])
        #expect(s.abandonedGaps == 1)
        #expect(s.apply(e(1, 0)).isEmpty)
    }
}

@Suite struct StorageTests {
    @Test func crashLosesWhatWasNotSynced() {
        let st = InMemoryConsensusStorage()
        let r = BlockRef(round: 1, author: 0, digest: .zero)
        st.write(
            PersistBatch(
                txn: 1, blocks: [r: [1]], blockOrder: [r],
                meta: StoredMeta(lastOwnRound: 1, lastOwnDigest: nil, restored: false),
                commits: [], snapshot: nil, pruneBelowRound: nil))
        st.sync()
        let r2 = BlockRef(round: 2, author: 0, digest: .zero)
        st.write(
            PersistBatch(
                txn: 2, blocks: [r2: [2]], blockOrder: [r2],
                meta: StoredMeta(lastOwnRound: 2, lastOwnDigest: nil, restored: false),
                commits: [], snapshot: nil, pruneBelowRound: nil))
        st.crash()
        let img = st.load()
        #expect(img.meta.lastOwnRound == 1)
        #expect(img.blocks.map(\.0) == [r])
        let backup = st.copy()
        st.wipe()
        #expect(!st.load().initialized)
        st.restore(from: backup)
        #expect(st.load().meta.restored)
    }
}

@Suite struct CoreTests {
    @Test func singleNodeCommitsRoundRPlusTwo() {
        let keys = SimKeys(n: 1, seed: 1, params: OrderingParameters(), realCrypto: false)
        var core = ConsensusCore(
            config: CoreConfig(committee: keys.committee, me: 0), signer: keys.signers[0], verifier: keys.verifier,
            image: .fresh)
        var now: UInt64 = 0
        var delivered: [Entry] = []
        var txns: [UInt64] = []
        func run(_ input: Input) {
            for o in core.step(input, now: now) {
                if case .persist(let b) = o { txns.append(b.txn) }
                if case .deliver(let d) = o { delivered += d.applied }
            }
        }
        run(.start)
        for i in 0..<5 { run(.submit(kind: 1, body: [UInt8(i)])) }
        for _ in 0..<20 {
            now += 2_000_000
            run(.tick)
            while let t = txns.first { txns.removeFirst(); run(.persisted(txn: t)) }
        }
        #expect(delivered.map(\.body) == (0..<5).map { [UInt8($0)] })
        #expect(core.lastOwnRound >= 3)
    }

    @Test func ownBlockIsSentOnlyAfterItsBatchIsDurable() {
        let keys = SimKeys(n: 4, seed: 1, params: OrderingParameters(), realCrypto: false)
        var core = ConsensusCore(
            config: CoreConfig(committee: keys.committee, me: 0), signer: keys.signers[0], verifier: keys.verifier,
            image: .fresh)
        _ = core.step(.start, now: 0)
        let out = core.step(.submit(kind: 1, body: [1]), now: 10)
        let persists = out.compactMap { if case .persist(let b) = $0 { return b } else { return nil } }
        #expect(persists.count == 1)
        #expect(persists[0].meta?.lastOwnRound == 1)
        #expect(!out.contains { if case .broadcast = $0 { return true } else { return false } })
        let after = core.step(.persisted(txn: persists[0].txn), now: 11)
        #expect(after.contains { if case .broadcast = $0 { return true } else { return false } })
    }

    @Test func neverSignsARoundTwiceAcrossARestart() {
        let keys = SimKeys(n: 4, seed: 1, params: OrderingParameters(), realCrypto: false)
        let store = InMemoryConsensusStorage()
        var core = ConsensusCore(
            config: CoreConfig(committee: keys.committee, me: 0), signer: keys.signers[0], verifier: keys.verifier,
            image: store.load())
        _ = core.step(.start, now: 0)
        for o in core.step(.submit(kind: 1, body: [1]), now: 10) { if case .persist(let b) = o { store.write(b) } }
        store.sync()
        // Restart: the durable lastOwnRound is 1, the own block is re-broadcast, round 1 is never signed again.
        var again = ConsensusCore(
            config: CoreConfig(committee: keys.committee, me: 0), signer: keys.signers[0], verifier: keys.verifier,
            image: store.load())
        let out = again.step(.start, now: 20)
        #expect(again.lastOwnRound == 1)
        #expect(again.incarnation == 2)
        #expect(out.contains { if case .broadcast = $0 { return true } else { return false } })
        _ = again.step(.submit(kind: 1, body: [2]), now: 30)
        #expect(again.lastOwnRound == 1)  // waits for Q round-1 blocks; never re-signs round 1
    }

    @Test func wipedStoreRunsAmnesiaRecoveryBeforeSigning() {
        let keys = SimKeys(n: 4, seed: 1, params: OrderingParameters(), realCrypto: false)
        var core = ConsensusCore(
            config: CoreConfig(committee: keys.committee, me: 0), signer: keys.signers[0], verifier: keys.verifier,
            image: .wiped)
        let out = core.step(.start, now: 0)
        #expect(core.mode == .recovering)
        #expect(out.filter { if case .send = $0 { return true } else { return false } }.count == 3)
        #expect(
            core.step(.submit(kind: 1, body: [1]), now: 1).contains {
                if case .rejected(.notReady) = $0 { return true } else { return false }
            })
        var persist: PersistBatch? = nil
        for p in 1...3 {
            for o in core.step(
                .message(
                    from: UInt16(p), bytes: Message.recoverAnswer(lastOwnRound: UInt64(10 + p), block: nil).encode()),
                now: 2)
            {
                if case .persist(let b) = o { persist = b }
            }
        }
        // 2f+1 = 3 answers: lastOwnRound = max(b) + 1, persisted before anything is signed.
        #expect(persist?.meta?.lastOwnRound == 14)
        #expect(persist?.meta?.restored == false)
        _ = core.step(.persisted(txn: persist!.txn), now: 3)
        #expect(core.mode == .active)
        #expect(core.incarnation == 15)
    }
}
