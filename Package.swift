// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "foxmq",
    platforms: [.macOS(.v15)],  // Synchronization.Mutex
    products: [
        .executable(name: "foxmq", targets: ["foxmq"]),
        .executable(name: "foxbench", targets: ["foxbench"]),
        .executable(name: "nio-floor", targets: ["nio-floor"]),
        .executable(name: "foxdump", targets: ["foxdump"]),
        .executable(name: "fuzz", targets: ["fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // The wire: MQTT 3.1.1 and 5.0 packets as values, framing, validation. No I/O.
        .target(
            name: "FoxMQTT",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Small files of a node (users.toml, the address book, keys): read whole, written
        // atomically and durably, through swift-system; TOML read with toml++'s guards.
        .target(
            name: "FoxFiles",
            dependencies: [
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // libargon2 (argon2id PHC strings of the original's users.toml).
        .systemLibrary(
            name: "CArgon2",
            pkgConfig: "libargon2",
            providers: [.apt(["libargon2-dev"])]
        ),
        // The C allocator's controls (glibc's malloc_trim, for MemoryTrim).
        .systemLibrary(name: "CMalloc"),
        // liblmdb (the node's ordered log, state rows and meta).
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        // The numbered SQL files of the SQLite admin database, embedded in the binary.
        .target(
            name: "FoxMigrations",
            path: "Migrations",
            exclude: ["README.md"],
            resources: [.embedInCode("0001_admin.sql"), .embedInCode("0002_cluster_admin.sql")]
        ),
        // Storage, bytes in and bytes out: the LMDB environment (log, rows, meta), the SQLite
        // admin database (users, access rules, settings), users.toml and argon2.
        .target(
            name: "FoxStore",
            dependencies: [
                "FoxFiles",
                "CArgon2",
                "CLMDB",
                "FoxMigrations",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The broker core: the deterministic state machine (sessions, topic tree, retained, QoS
        // flows) and the canonical codec of its events and rows. No sockets, no disk, no clock.
        .target(
            name: "FoxBrokerCore",
            dependencies: [
                "FoxMQTT",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The node's store: the layout of its LMDB environment (log, rows, meta), recovery by
        // rows plus log replay, verification. Used by the node, foxmq and foxdump.
        .target(
            name: "FoxBrokerStore",
            dependencies: [
                "FoxBrokerCore", "FoxStore", "FoxConsensus", "FoxFiles",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The broker node: connection state machines, listeners, the orderers and the durable
        // log writer.
        .target(
            name: "FoxBroker",
            dependencies: [
                "FoxMQTT",
                "FoxBrokerCore",
                "FoxBrokerStore",
                "FoxStore",
                "FoxConsensus",
                "FoxFiles",
                "CMalloc",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // The cluster's edge: the address book and node keys (the original's files), and the
        // authenticated transport between nodes (SwiftNIO, framed messages). No broker logic.
        .target(
            name: "FoxCluster",
            dependencies: [
                "FoxFiles",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // The command line: argument parsing and wiring only.
        .executableTarget(
            name: "foxmq",
            dependencies: [
                "FoxBroker",
                "FoxCluster",
                "FoxConsensus",
                "FoxBrokerCore",
                "FoxBrokerStore",
                "FoxStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // foxdump: reads a node's store (read-only, safe while the node runs).
        .executableTarget(
            name: "foxdump",
            dependencies: [
                "FoxBrokerCore", "FoxBrokerStore", "FoxStore", "FoxMQTT",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "tools/foxdump"
        ),
        // foxbench, the MQTT load generator (tools/foxbench): measures any broker, so it depends on
        // the codec only, never on FoxBroker. FoxBenchCore holds the logic (payload stamping,
        // sequence accounting, the client connections); foxbench is the command line.
        .target(
            name: "FoxBenchCore",
            dependencies: [
                "FoxMQTT",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "tools/foxbench/Sources/FoxBenchCore"
        ),
        .executableTarget(
            name: "foxbench",
            dependencies: [
                "FoxBenchCore",
                "FoxMQTT",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "tools/foxbench/Sources/foxbench"
        ),
        // fuzz: the libFuzzer harnesses of every decoder a peer or a file reaches (`fuzz HARNESS
        // [libFuzzer options]`; scripts/fuzz builds it with -sanitize=fuzzer,address in
        // .build-fuzz; a plain build only compiles it).
        .executableTarget(
            name: "fuzz",
            dependencies: [
                "FoxMQTT", "FoxBrokerCore", "FoxBrokerStore", "FoxStore", "FoxConsensus", "FoxCluster",
                "FoxBroker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "tools/fuzz/Sources/fuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // nio-floor: a bare SwiftNIO server (CONNACK and nothing else), the baseline of the idle
        // connection memory comparison.
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "tools/foxbench/Sources/nio-floor"
        ),
        .testTarget(
            name: "FoxBenchTests",
            dependencies: ["FoxBenchCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // Consensus: a pure, deterministic BFT DAG core (step(input) -> outputs). No I/O.
        .target(
            name: "FoxConsensus",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            // Optimized even in debug builds: the simulator runs hundreds of seeds in `swift test`.
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // The seeded single-thread cluster simulator used by the tests and by foxsim.
        .target(
            name: "FoxConsensusSimulation",
            dependencies: ["FoxConsensus", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // foxsim: soak runs and figures from the simulator.
        .executableTarget(
            name: "foxsim",
            dependencies: [
                "FoxConsensusSimulation", "FoxConsensus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/foxsim"
        ),
        .testTarget(
            name: "FoxConsensusTests",
            dependencies: ["FoxConsensus", "FoxConsensusSimulation", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "FoxMQTTTests",
            dependencies: ["FoxMQTT", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "FoxClusterTests",
            dependencies: [
                "FoxCluster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // TLS certificates and keys, read by path (make-fixtures.py writes them).
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "FoxStoreTests",
            dependencies: ["FoxStore", "CLMDB"]
        ),
        .testTarget(
            name: "FoxBrokerTests",
            dependencies: [
                "FoxBroker", "FoxBrokerCore", "FoxBrokerStore", "FoxMQTT", "FoxStore", "FoxConsensus",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
