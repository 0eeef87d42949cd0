# Shared by the scripts: the soak run's report, over the logs of a suite run many times.
#
# kappa_soak_report DIR N STRESS prints, from DIR/run-1.log … DIR/run-N.log and their exit codes in
# DIR/run-I.status, each test that failed in at least one run (how often, in which runs, and the
# first issue it recorded), the runs that failed without a failed test (a crash, a hang cut off by
# the time limit: the tests that never finished are named), and a closing count. Returns 1 when any
# run failed.
kappa_soak_report() {
  local dir="$1" runs="$2" stress="$3" failed=0 i
  for i in $(seq 1 "$runs"); do
    [ "$(cat "$dir/run-$i.status" 2>/dev/null || echo 1)" = "0" ] || failed=$((failed + 1))
  done
  echo "kappa: soak report ($runs runs of the whole suite, CPU hog: $stress; logs in $dir)"
  for i in $(seq 1 "$runs"); do
    awk -v run="$i" '
      /^✘ Test .* recorded an issue/ {
        name = $0; sub(/^✘ Test /, "", name); sub(/ recorded an issue.*$/, "", name)
        issue = $0; sub(/^✘ Test .* recorded an issue at /, "", issue)
        print run "\t" name "\t" issue
      }' "$dir/run-$i.log"
  done | awk -F '\t' -v runs="$runs" '
    !(($2, $1) in seen) { seen[$2, $1] = 1; count[$2]++; which[$2] = which[$2] (which[$2] == "" ? "" : ", ") $1 }
    !($2 in first) { first[$2] = $3; order[++n] = $2 }
    END {
      if (n == 0) { print "kappa: no test recorded an issue"; exit }
      for (i = 1; i <= n; i++) {
        name = order[i]
        printf "kappa: FLAKY %s failed in %d of %d runs (runs %s)\n  first issue: %s\n", name, count[name], runs, which[name], first[name]
      }
    }'
  for i in $(seq 1 "$runs"); do
    local status
    status="$(cat "$dir/run-$i.status" 2>/dev/null || echo missing)"
    if [ "$status" != "0" ] && ! grep -q '^✘ Test .* recorded an issue' "$dir/run-$i.log"; then
      echo "kappa: run $i exited with $status and no test recorded an issue (a crash or the time limit):"
      kappa_test_summary "$dir/run-$i.log" 2>&1 | tail -n +2 | sed 's/^/  /'
    fi
  done
  echo "soak: $((runs - failed)) passed, $failed failed"
  [ "$failed" -eq 0 ]
}

KAPPA_HOGS=()

# Starts one busy loop per core, in the background: the noisy neighbour a shared CI machine can be.
# Their pids are kept in the global KAPPA_HOGS (a trap runs after the caller's locals are gone), and
# they are killed by kappa_stress_stop or, whatever happens, when the shell exits.
kappa_stress_start() {
  local i
  KAPPA_HOGS=()
  for i in $(seq 1 "$(nproc)"); do
    # Its output away from the caller's pipe, which would otherwise stay open while it runs.
    ( while :; do :; done ) </dev/null >/dev/null 2>&1 &
    KAPPA_HOGS+=("$!")
  done
  trap 'kappa_stress_stop' EXIT
}

kappa_stress_stop() {
  [ "${#KAPPA_HOGS[@]}" -gt 0 ] || return 0
  # KILL: a shell started with SIGTERM ignored (as some parents start children) cannot trap it.
  kill -KILL "${KAPPA_HOGS[@]}" 2>/dev/null || true
  wait "${KAPPA_HOGS[@]}" 2>/dev/null || true
  KAPPA_HOGS=()
}
