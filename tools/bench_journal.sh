#!/usr/bin/env bash
# What the PostgreSQL write journal costs a write: pgbench's write scripts
# direct to the primary, through shardgate with the journal (the default
# with failover and a data_dir) and through shardgate with
# `failover.journal: false`, interleaved, several rounds, on one sandbox.
# Both proxies keep reads on the primary, so all three run the same
# statements on the same server. Prints medians and ratios to direct as a
# Markdown table. A benchmark, not a test: it measures and reports.
#
#   tools/bench_journal.sh [--rounds 3] [--seconds 8] [--scale 10]
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/bench_pgbench.sh

ROUNDS=3 SECONDS_PER_RUN=8 SCALE=10
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--scale K]" >&2; exit 2 ;;
  esac
done

DIR=${BENCH_DIR:-/tmp/shardgate-bench-journal}
BASE=25432 ON=25532 OFF=25534
tools/deps.sh
[ -x build/bin/shardgate ] || tools/build.sh

cleanup() {
  [ -n "${ON_PID:-}" ] && kill "$ON_PID" 2>/dev/null || true
  [ -n "${OFF_PID:-}" ] && kill "$OFF_PID" 2>/dev/null || true
  build/bin/shardctl sandbox down --destroy --dir "$DIR/sbx" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
mkdir -p "$DIR" && chmod 755 "$DIR"
build/bin/shardctl sandbox up --engine postgres --shards 1 --replicas 2 --base-port $BASE \
  --dir "$DIR/sbx" --proxy-port $ON --admin-port 25533 >/dev/null

# Two proxies, each with its own data_dir (the topology store's lock).
pool="pool:\n  size: 20\nrouting:\n  reads_on_primary: true\n"
sed -e "s/^listeners:/${pool}listeners:/" "$DIR/sbx/shardgate.yaml" >"$DIR/on.yaml"
sed -e "s/^listeners:/${pool}listeners:/" -e "s/port: $ON\$/port: $OFF/" \
  -e "s/port: 25533\$/port: 25535/" -e "s|^data_dir: .*|data_dir: $DIR/off-data|" \
  -e "s/^    failover:\$/    failover:\n      journal: false/" \
  "$DIR/sbx/shardgate.yaml" >"$DIR/off.yaml"
build/bin/shardgate --config "$DIR/on.yaml" 2>"$DIR/on.log" & ON_PID=$!
build/bin/shardgate --config "$DIR/off.yaml" 2>"$DIR/off.log" & OFF_PID=$!
for port in $ON $OFF; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
grep -q "write journal in" "$DIR/on.log" || { echo "the journal is not on" >&2; exit 1; }
if grep -q "write journal in" "$DIR/off.log"; then echo "the journal is not off" >&2; exit 1; fi

ci() { echo "host=127.0.0.1 port=$1 user=app password=app dbname=app"; }
pgbench -i -q -s "$SCALE" "$(ci $BASE)" >/dev/null 2>&1
sleep 2

declare -A PORT=([direct]=$BASE [journal]=$ON [no-journal]=$OFF)
TARGETS=(direct journal no-journal)
CASES=("simple-update, 8 clients|-N -c 8 -j 2"
       "simple-update -M extended, 8 clients|-N -M extended -c 8 -j 2"
       "simple-update, 1 client|-N -c 1 -j 1")
RESULTS=$DIR/results.txt
run_pgbench_rounds
entries=$(curl -s "http://127.0.0.1:25533/metrics" | sed -n 's/^shardgate_journal_entries_total \([0-9]*\).*/\1/p')
tools/bench_table.py "$RESULTS" "$ROUNDS" "$SECONDS_PER_RUN" "$(IFS=,; echo "${TARGETS[*]}")" \
  "simple-update, 1 client" transactions
echo
echo "Journal entries stored by the journaled proxy: ${entries:-?}"
