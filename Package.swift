// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Kappa",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Kappa", targets: ["Kappa"]),
        .library(name: "KappaPostgres", targets: ["KappaPostgres"]),
        .library(name: "KappaTesting", targets: ["KappaTesting"]),
        .executable(name: "kappa-bench", targets: ["KappaBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // The core: events, deciders, the command handler, the EventStore protocol. No database.
        .target(
            name: "Kappa",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The log in PostgreSQL: the migrator, append, read, follow.
        .target(
            name: "KappaPostgres",
            dependencies: [
                "Kappa",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            plugins: ["KappaMigrationsPlugin"]
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
                "Kappa", "KappaPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/KappaBench",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KappaTests",
            dependencies: ["Kappa", "KappaPostgres", "KappaTesting", .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: strict
        ),
    ]
)
