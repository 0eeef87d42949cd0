# Shared by the scripts: the payload decoder's fuzz run under AddressSanitizer.
#
# kappa_payload_fuzz_asan builds kappa-payload-fuzz (the decoder and its fuzzing, nothing else of
# the package) with -sanitize=address in .build-asan/, runs KAPPA_FUZZ_ITERATIONS (default 20000;
# each a random document and two broken ones, through PayloadDecoder and JSONDecoder) with a new
# seed each time (KAPPA_FUZZ_SEED repeats a run), and prints one line. The output is kept in
# .build/payload-fuzz-asan.log. Returns non-zero on a failed build, a mismatch, an
# AddressSanitizer report (a leak too) or a crash.
#
# Built optimized (-c release): the code that ships, under AddressSanitizer's checks, and a run
# about half as long as a debug build's. On the 2-core development machine the stage takes about
# 80 s from an empty .build-asan/ (build 43-47 s, run 34-50 s) and 60 s after.
kappa_payload_fuzz_asan() {
  local log="$PWD/.build/payload-fuzz-asan.log" start=$SECONDS built bin status=0
  local iterations="${KAPPA_FUZZ_ITERATIONS:-20000}"
  local seed="${KAPPA_FUZZ_SEED:-0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')}"
  local flags=(-c release --product kappa-payload-fuzz --sanitize=address --build-path .build-asan)
  mkdir -p .build
  if ! swift build "${flags[@]}" > "$log" 2>&1; then
    echo "kappa: payload fuzz under AddressSanitizer: the build failed (see $log)" >&2
    return 1
  fi
  built=$((SECONDS - start))
  bin="$(swift build "${flags[@]}" --show-bin-path)"
  # A crash, a sanitizer report or a mismatch ends the run; the last lines of the log say which.
  KAPPA_FUZZ_SEED="$seed" KAPPA_FUZZ_ITERATIONS="$iterations" \
    timeout -k 10 600 "$bin/kappa-payload-fuzz" >> "$log" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    echo "kappa: payload fuzz under AddressSanitizer: no mismatch in $iterations iterations" \
      "(seed $seed; build ${built} s, run $((SECONDS - start - built)) s)"
  else
    echo "kappa: payload fuzz under AddressSanitizer FAILED (exit $status, seed $seed; full output: $log):" >&2
    grep -E 'kappa-payload-fuzz:|To repeat|ERROR: AddressSanitizer|^ *#[0-3] |SUMMARY:|crashed' "$log" | cut -c1-600 | head -12 >&2 || true
    echo "kappa: to find the iteration of a crash: KAPPA_FUZZ_SEED=$seed KAPPA_FUZZ_TRACE=1 $bin/kappa-payload-fuzz" >&2
  fi
  return "$status"
}
