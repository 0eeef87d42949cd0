# Shared by the scripts: the payload decoder under AddressSanitizer.
#
# kappa_payload_fuzz_asan works in Tests/DecoderUnderASan, a package of the decoder, its fuzzing
# and its tests alone (their folders, linked), built with -sanitize=address:
#   1. the decoder's tests (KappaPayloadDecodingTests: hand-written cases and 2,000 fuzzed
#      documents against JSONDecoder), a debug build;
#   2. kappa-payload-fuzz, optimized (-c release, the code that ships), on KAPPA_FUZZ_ITERATIONS
#      (default 20000; each a random document and two broken ones, through PayloadDecoder and
#      JSONDecoder) with a new seed each time (KAPPA_FUZZ_SEED repeats a run).
# It prints one line; the output is kept in .build/payload-fuzz-asan.log. Returns non-zero on a
# failed build, a failed test, a mismatch, an AddressSanitizer report (a leak too) or a crash.
# XCTest's own harness leaks at exit, so the tests run with --disable-xctest (they are Swift Testing).
kappa_payload_fuzz_asan() {
  local log="$PWD/.build/payload-fuzz-asan.log" start=$SECONDS built bin status=0
  local package=Tests/DecoderUnderASan
  local iterations="${KAPPA_FUZZ_ITERATIONS:-20000}"
  local seed="${KAPPA_FUZZ_SEED:-0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')}"
  local flags=(-c release --package-path "$package" --product kappa-payload-fuzz --sanitize=address)
  mkdir -p .build
  if ! { swift build --package-path "$package" --build-tests --sanitize=address && swift build "${flags[@]}"; } > "$log" 2>&1; then
    echo "kappa: payload decoder under AddressSanitizer: the build failed (see $log)" >&2
    return 1
  fi
  built=$((SECONDS - start))
  if ! timeout -k 10 600 swift test --package-path "$package" --skip-build --sanitize=address --disable-xctest >> "$log" 2>&1; then
    echo "kappa: payload decoder under AddressSanitizer: its tests FAILED (full output: $log):" >&2
    grep -E '✘|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY:' "$log" | cut -c1-600 | head -12 >&2 || true
    return 1
  fi
  local tested=$((SECONDS - start - built))
  bin="$(swift build "${flags[@]}" --show-bin-path)"
  # A crash, a sanitizer report or a mismatch ends the run; the last lines of the log say which.
  KAPPA_FUZZ_SEED="$seed" KAPPA_FUZZ_ITERATIONS="$iterations" \
    timeout -k 10 600 "$bin/kappa-payload-fuzz" >> "$log" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    echo "kappa: payload decoder under AddressSanitizer: its tests passed, and no mismatch in $iterations fuzz iterations" \
      "(seed $seed; build ${built} s, tests ${tested} s, fuzz $((SECONDS - start - built - tested)) s)"
  else
    echo "kappa: payload fuzz under AddressSanitizer FAILED (exit $status, seed $seed; full output: $log):" >&2
    grep -E 'kappa-payload-fuzz:|To repeat|ERROR: AddressSanitizer|^ *#[0-3] |SUMMARY:|crashed' "$log" | cut -c1-600 | head -12 >&2 || true
    echo "kappa: to find the iteration of a crash: KAPPA_FUZZ_SEED=$seed KAPPA_FUZZ_TRACE=1 $bin/kappa-payload-fuzz" >&2
  fi
  return "$status"
}
