# Sourced by the pgbench benchmarks (bench_pg.sh, bench_shard.sh): runs every
# case against every target, interleaved, ROUNDS times, and appends
# "round|case|target|tps|latency_ms|failed" lines to RESULTS for
# bench_table.py. Expects ROUNDS, SECONDS_PER_RUN, DIR, RESULTS, CASES
# ("name|pgbench arguments"), TARGETS, PORT (target -> port) and ci (port ->
# conninfo). A failed run is kept as DIR/failed-*.log and reported as FAIL.
run_pgbench_rounds() {
  local round c name args k t out tps lat failed
  : >"$RESULTS"
  for round in $(seq 1 "$ROUNDS"); do
    for c in "${CASES[@]}"; do
      name=${c%%|*} args=${c#*|}
      # Each round starts with the next target: running first or last in a
      # round (caches, the machine's other load) is not always the same one's lot.
      for k in "${!TARGETS[@]}"; do
        t=${TARGETS[$(((k + round - 1) % ${#TARGETS[@]}))]}
        # shellcheck disable=SC2086
        out=$(pgbench -n $args -T "$SECONDS_PER_RUN" "$(ci "${PORT[$t]}")" 2>&1 || true)
        tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
        lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
        failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
        if [ -z "$tps" ] || grep -q "error" <<<"$out"; then
          tps=FAIL lat=FAIL
          printf '%s\n' "$out" >"$DIR/failed-$round-$t-${name//[^a-z0-9]/_}.log"
        fi
        echo "$round|$name|$t|$tps|$lat|${failed:-?}" >>"$RESULTS"
        echo "round $round  $name  $t: tps=$tps latency=${lat}ms" >&2
      done
    done
  done
}
