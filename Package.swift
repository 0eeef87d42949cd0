// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

// The framework, its command-line group, test support and benchmarks. The sample shop is a package
// of its own (SampleApp/Package.swift) that depends on this one by path, as an application would.
let package = Package(
    name: "Kappa",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Kappa", targets: ["Kappa"]),
        // The payload decoder alone, for code that decodes payloads without the rest of the core.
        .library(name: "KappaPayloadDecoding", targets: ["KappaPayloadDecoding"]),
        .library(name: "KappaPostgres", targets: ["KappaPostgres"]),
        .library(name: "KappaTesting", targets: ["KappaTesting"]),
        .library(name: "KappaCLI", targets: ["KappaCLI"]),
        .executable(name: "kappa-bench", targets: ["KappaBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // SHA-256 for verifying the log's hash chains (postgres-nio depends on it already; the same range).
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"6.0.0"),
    ],
    targets: [
        // The core: events, deciders, the command handler, the EventStore protocol. No database.
        .target(
            name: "Kappa",
            dependencies: ["KappaPayloadDecoding", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // `PayloadDecoder`, the fast JSON decoder of event payloads: Foundation only, so that it, its
        // tests and its fuzzing under AddressSanitizer (scripts/test) build without the rest.
        .target(name: "KappaPayloadDecoding", swiftSettings: strict),
        // libpq, PostgreSQL's C client (Debian: libpq-dev): live batches in one round trip (pipeline mode).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // The log in PostgreSQL: the migrator, append, read, follow.
        .target(
            name: "KappaPostgres",
            dependencies: [
                "Kappa", "KappaPayloadDecoding", "CLibPQ",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict,
            plugins: ["KappaMigrationsPlugin"]
        ),
        // The `projections` and `log` command groups an application embeds in its executable.
        .target(
            name: "KappaCLI",
            dependencies: [
                "Kappa", "KappaPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Given/when/then for deciders and a throw-away database schema per suite.
        .target(
            name: "KappaTesting",
            dependencies: ["Kappa", "KappaPostgres", .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: strict
        ),
        // Build-time tool: embeds Migrations/*.sql into KappaPostgres so applications need no resource bundle.
        .executableTarget(name: "KappaSQLEmbedder", swiftSettings: strict),
        .plugin(
            name: "KappaMigrationsPlugin",
            capability: .buildTool(),
            dependencies: ["KappaSQLEmbedder"]
        ),
        .executableTarget(
            name: "KappaBench",
            dependencies: [
                "Kappa", "KappaPostgres", "KappaFixtures", "KappaTesting", "CLibPQ",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/KappaBench",
            swiftSettings: strict
        ),
        // Test fixtures: a cart-shaped projection, and a projector process to crash and pause.
        .target(
            name: "KappaFixtures",
            dependencies: ["Kappa", "KappaPostgres", .product(name: "PostgresNIO", package: "postgres-nio")],
            path: "Tests/Fixtures/KappaFixtures",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "kappa-fixture-projector",
            dependencies: [
                "Kappa", "KappaPostgres", "KappaFixtures",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/Fixtures/FixtureProjector",
            swiftSettings: strict
        ),
        // The payload decoder's fuzzing: random and mutated documents, each decoded by PayloadDecoder and
        // by JSONDecoder and the results compared; shared by its tests and `kappa-payload-fuzz` (Tests/DecoderUnderASan).
        .target(
            name: "KappaPayloadFuzzing",
            dependencies: ["KappaPayloadDecoding"],
            path: "Tests/PayloadFuzz/KappaPayloadFuzzing",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "kappa-fixture-cli",
            dependencies: ["KappaCLI", "KappaFixtures", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tests/Fixtures/FixtureCLI",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KappaPayloadDecodingTests",
            dependencies: ["KappaPayloadDecoding", "KappaPayloadFuzzing"],
            path: "Tests/KappaPayloadDecodingTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KappaTests",
            dependencies: [
                "Kappa", "KappaPostgres", "KappaTesting", "KappaFixtures", "kappa-fixture-projector", "kappa-fixture-cli", "KappaCLI",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            path: "Tests/KappaTests",
            swiftSettings: strict
        ),
    ]
)
