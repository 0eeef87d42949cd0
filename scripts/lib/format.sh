# The Swift sources .swift-format applies to.
kappa_swift_sources=(Package.swift Sources Tests Benchmarks Plugins SampleApp/Package.swift SampleApp/Sources SampleApp/Tests)

# Whether the sources follow .swift-format; what does not is listed in .build/format-lint.log.
kappa_format_lint() {
  mkdir -p .build
  swift-format lint --strict --parallel -r "${kappa_swift_sources[@]}" > .build/format-lint.log 2>&1 && [ ! -s .build/format-lint.log ]
}
