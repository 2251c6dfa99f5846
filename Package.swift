// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "foxmq",
    platforms: [.macOS(.v15)],  // Synchronization.Mutex
    products: [
        .executable(name: "foxmq", targets: ["foxmq"]),
        .executable(name: "foxbench", targets: ["foxbench"]),
        .executable(name: "nio-floor", targets: ["nio-floor"]),
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
    ],
    targets: [
        // The wire: MQTT 3.1.1 and 5.0 packets as values, framing, validation. No I/O.
        .target(
            name: "FoxMQTT",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // libargon2 (argon2id PHC strings of the original's users.toml).
        .systemLibrary(
            name: "CArgon2",
            pkgConfig: "libargon2",
            providers: [.apt(["libargon2-dev"])]
        ),
        // Storage: users and their password hashes (and, later, the LMDB log and SQLite admin).
        .target(
            name: "FoxStore",
            dependencies: [
                "CArgon2",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // The broker: deterministic state machine, connection state machines, listeners.
        .target(
            name: "FoxBroker",
            dependencies: [
                "FoxMQTT",
                "FoxStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // The command line: argument parsing and wiring only.
        .executableTarget(
            name: "foxmq",
            dependencies: [
                "FoxBroker",
                "FoxStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
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
            name: "FoxStoreTests",
            dependencies: ["FoxStore"]
        ),
        .testTarget(
            name: "FoxBrokerTests",
            dependencies: [
                "FoxBroker", "FoxMQTT",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
