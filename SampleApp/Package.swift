// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

// The sample shop: a package of its own that uses the framework as an application would, by path.
// Its HTTP API is generated from Sources/CartService/openapi.yaml at build time.
let package = Package(
    name: "KappaSample",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cart-app", targets: ["CartApp"])
    ],
    dependencies: [
        .package(name: "Kappa", path: ".."),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        // The tests' one YAML parser (the generator's too): openapi.yaml and docker-compose.yml.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // The cart domain: a pure decider, no database.
        .target(
            name: "CartDomain",
            dependencies: [.product(name: "Kappa", package: "Kappa")],
            swiftSettings: strict
        ),
        // The read models: v1, and v2 that needs a migration by replay.
        .target(
            name: "CartReadModels",
            dependencies: [
                "CartDomain", .product(name: "Kappa", package: "Kappa"), .product(name: "KappaPostgres", package: "Kappa"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        // The service: the API generated from its openapi.yaml at build time, implemented on the log
        // and the read model, served by Hummingbird.
        .target(
            name: "CartService",
            dependencies: [
                "CartDomain", "CartReadModels",
                .product(name: "Kappa", package: "Kappa"), .product(name: "KappaPostgres", package: "Kappa"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // The full-screen terminal front end: Foundation only, over HTTP (Linux and macOS).
        .target(name: "CartConsole", swiftSettings: strict),
        .executableTarget(
            name: "CartApp",
            dependencies: [
                "CartService", "CartReadModels", "CartConsole",
                .product(name: "KappaCLI", package: "Kappa"), .product(name: "KappaPostgres", package: "Kappa"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CartAppTests",
            dependencies: [
                "CartDomain", "CartReadModels", "CartService", "CartConsole", "CartApp",
                .product(name: "Kappa", package: "Kappa"), .product(name: "KappaCLI", package: "Kappa"),
                .product(name: "KappaPostgres", package: "Kappa"), .product(name: "KappaTesting", package: "Kappa"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CartDomainTests",
            dependencies: ["CartDomain", .product(name: "Kappa", package: "Kappa"), .product(name: "KappaTesting", package: "Kappa")],
            swiftSettings: strict
        ),
    ]
)
