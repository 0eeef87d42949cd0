# Shared by the scripts: what a failed `swift test` run left unsaid at its end.
#
# A run's own report can scroll far above the end of its output (pg_virtualenv prints the server's
# log after a failure), and a run killed by its timeout reports nothing. kappa_test_summary LOG
# prints, from the run's output in LOG, the issues recorded by failed tests and the tests that
# started and never finished: what a hang has to show.
kappa_test_summary() {
  local log="$1"
  echo "kappa: ---- summary of the failed test run (full output: $log) ----" >&2
  grep -E '^✘ ' "$log" | head -40 >&2 || true
  awk '
    /^◇ Test (case |run started)/ { next }   # cases report through their test; the run is not a test
    /^◇ Test .* started\.$/ {
      name = $0; sub(/^◇ Test /, "", name); sub(/ started\.$/, "", name)
      started[name]++; order[++n] = name; next
    }
    /^(✔|✘) Test .* (passed|failed) after / || /^➜ Test .* skipped/ {
      name = $0; sub(/^[^ ]+ Test /, "", name)
      sub(/ (with [0-9]+ test cases? )?(passed|failed)( after .*)?$/, "", name); sub(/ skipped.*$/, "", name)
      finished[name]++
    }
    END {
      for (i = 1; i <= n; i++) {
        name = order[i]
        if (started[name] > finished[name] && !(name in shown)) { shown[name] = 1; open = open "\n  " name }
      }
      if (open != "") print "kappa: tests that started and never finished (a hang, or the timeout):" open
      else if (n == 0) print "kappa: no test had started."
      else print "kappa: every test that started finished."
    }
  ' "$log" >&2
}
