// swift-tools-version: 6.1
import PackageDescription

// The payload decoder, its fuzzing and its tests alone (their folders, linked here), so that
// scripts/test builds and runs them under AddressSanitizer without building the rest of the
// framework or resolving its dependencies: Foundation only.
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "KappaDecoderUnderASan",
    platforms: [.macOS(.v15)],
    targets: [
        .target(name: "KappaPayloadDecoding", swiftSettings: strict),
        .target(name: "KappaPayloadFuzzing", dependencies: ["KappaPayloadDecoding"], swiftSettings: strict),
        .executableTarget(name: "kappa-payload-fuzz", dependencies: ["KappaPayloadFuzzing"], swiftSettings: strict),
        .testTarget(name: "KappaPayloadDecodingTests", dependencies: ["KappaPayloadDecoding", "KappaPayloadFuzzing"], swiftSettings: strict),
    ]
)
