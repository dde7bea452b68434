#!/usr/bin/env bash
# What hot-key detection costs and how fast it reports, on a real 4-shard
# PostgreSQL sandbox. A benchmark, not a test: it measures and prints tables.
#
# Cost: shardgates in front of the same sandbox, the same config except
# that detection-off runs with sharding.hot_keys.disabled, and cache-on also
# caches pgbench_accounts results for 2 s (result cache); pgbench point
# selects by pgbench_accounts.aid (uniform and Zipfian keys), interleaved,
# several rounds. Every shard holds every row (loaded directly), so each
# statement finds its row wherever its key routes it.
#
# Detection: for each trial a fresh key gets 20% of a 4-client load; the time
# from the load's start until GET /api/v1/hotkeys reports the key hot, then
# the time until it has cooled down once the load stops.
#
#   tools/bench_hotkeys.sh [--rounds 3] [--seconds 8] [--trials 5]
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/bench_pgbench.sh

ROUNDS=3 SECONDS_PER_RUN=8 TRIALS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --trials) TRIALS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--trials T]" >&2; exit 2 ;;
  esac
done

DIR=${BENCH_DIR:-/tmp/shardgate-bench-hotkeys}
BASE=27432 ON=27532 ON_ADMIN=27533 OFF=27542 OFF_ADMIN=27543 CACHE=27552 CACHE_ADMIN=27553
tools/deps.sh
[ -x build/bin/shardgate ] || tools/build.sh

cleanup() {
  [ -n "${ON_PID:-}" ] && kill "$ON_PID" 2>/dev/null || true
  [ -n "${OFF_PID:-}" ] && kill "$OFF_PID" 2>/dev/null || true
  [ -n "${CACHE_PID:-}" ] && kill "$CACHE_PID" 2>/dev/null || true
  [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null || true
  build/bin/shardctl sandbox down --destroy --dir "$DIR/sbx" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
mkdir -p "$DIR" && chmod 755 "$DIR"
build/bin/shardctl sandbox up --engine postgres --shards 4 --replicas 0 --base-port $BASE \
  --dir "$DIR/sbx" --proxy-port $ON --admin-port $ON_ADMIN >/dev/null

settings="pool:\n  size: 20\nthreads: 2\n"
sharding="    sharding:\n      tables:\n        - {name: pgbench_accounts, column: aid}\n"
sed -e "s/^listeners:/${settings}listeners:/" "$DIR/sbx/shardgate.yaml" >"$DIR/on.yaml"
printf "$sharding" >>"$DIR/on.yaml"
sed -e "s/^listeners:/${settings}listeners:/" -e "s/port: $ON\$/port: $OFF/" \
  -e "s/port: $ON_ADMIN\$/port: $OFF_ADMIN/" -e "s|^data_dir: .*|data_dir: $DIR/off-data|" \
  "$DIR/sbx/shardgate.yaml" >"$DIR/off.yaml"
printf "${sharding}      hot_keys: {disabled: true}\n" >>"$DIR/off.yaml"
sed -e "s/^listeners:/${settings}listeners:/" -e "s/port: $ON\$/port: $CACHE/" \
  -e "s/port: $ON_ADMIN\$/port: $CACHE_ADMIN/" -e "s|^data_dir: .*|data_dir: $DIR/cache-data|" \
  "$DIR/sbx/shardgate.yaml" >"$DIR/cache.yaml"
printf "    sharding:\n      tables:\n        - {name: pgbench_accounts, column: aid, cache_ttl_ms: 2000}\n" \
  >>"$DIR/cache.yaml"
build/bin/shardgate --config "$DIR/on.yaml" 2>"$DIR/on.log" & ON_PID=$!
build/bin/shardgate --config "$DIR/off.yaml" 2>"$DIR/off.log" & OFF_PID=$!
build/bin/shardgate --config "$DIR/cache.yaml" 2>"$DIR/cache.log" & CACHE_PID=$!
for port in $ON $OFF $CACHE; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

ci() { echo "host=127.0.0.1 port=$1 user=app password=app dbname=app"; }
for s in 0 1 2 3; do pgbench -i -q -s 1 "$(ci $((BASE + s)))" >/dev/null 2>&1; done
ROWS=100000
printf '\\set aid random(1, %d)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' \
  "$ROWS" >"$DIR/uniform.sql"
printf '\\set aid random_zipfian(1, %d, 1.1)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' \
  "$ROWS" >"$DIR/zipf.sql"

declare -A PORT=([detection-off]=$OFF [detection-on]=$ON [cache-on]=$CACHE)
TARGETS=(detection-off detection-on cache-on)
for t in "${TARGETS[@]}"; do
  pgbench -n -f "$DIR/uniform.sql" -c 16 -j 2 -T 2 "$(ci "${PORT[$t]}")" >/dev/null 2>&1 || true
done
CASES=("point select, uniform keys, 1 client|-f $DIR/uniform.sql -c 1 -j 1"
       "point select, uniform keys, 16 clients|-f $DIR/uniform.sql -c 16 -j 2"
       "point select, Zipf 1.1 keys, 16 clients|-f $DIR/zipf.sql -c 16 -j 2"
       "point select -M prepared, Zipf 1.1 keys, 16 clients|-f $DIR/zipf.sql -M prepared -c 16 -j 2")
RESULTS=$DIR/results.txt
run_pgbench_rounds
tools/bench_table.py "$RESULTS" "$ROUNDS" "$SECONDS_PER_RUN" "$(IFS=,; echo "${TARGETS[*]}")" \
  "point select, uniform keys, 1 client" transactions
cache=$(curl -s "http://127.0.0.1:$CACHE_ADMIN/metrics")
hits=$(awk '/^shardgate_result_cache_hits_total/ {print $2}' <<<"$cache")
misses=$(awk '/^shardgate_result_cache_misses_total/ {print $2}' <<<"$cache")
echo
echo "cache-on: ${hits:-?} hits, ${misses:-?} misses (uniform keys rarely repeat within 2 s)"
echo
echo "Heaviest keys of a Zipfian load (16 clients), as detection-on reported them 3 s in:"
pgbench -n -f "$DIR/zipf.sql" -c 16 -j 2 -T 5 "$(ci $ON)" >/dev/null 2>&1 & LOAD_PID=$!
sleep 3
report=$(build/bin/shardctl hotkeys --admin 127.0.0.1:$ON_ADMIN)
wait "$LOAD_PID" 2>/dev/null || true
LOAD_PID=
head -22 <<<"$report"

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }
# 0 when GET /api/v1/hotkeys lists aid $1 with "hot" equal to $2 (True/False).
key_is() {
  curl -s "http://127.0.0.1:$ON_ADMIN/api/v1/hotkeys" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
hot = any(k["key"] == sys.argv[1] and k["hot"] for k in doc["keys"])
sys.exit(0 if hot == (sys.argv[2] == "True") else 1)' "$1" "$2"
}
echo
echo "| trial | key | reported hot after (ms) | cooled down after the load stopped (ms) |"
echo "|---|---|---|---|"
for trial in $(seq 1 "$TRIALS"); do
  key=$((1000 + trial * 7919))
  printf '\\set x random(1, 100)\n\\set aid CASE WHEN :x <= 20 THEN %d ELSE random(1, %d) END\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' \
    "$key" "$ROWS" >"$DIR/hot.sql"
  start=$(now_ms)
  pgbench -n -f "$DIR/hot.sql" -c 4 -j 2 -T 30 "$(ci $ON)" >/dev/null 2>&1 & LOAD_PID=$!
  hot_ms=timeout
  while [ $(($(now_ms) - start)) -lt 20000 ]; do
    if key_is "$key" True; then hot_ms=$(($(now_ms) - start)); break; fi
    sleep 0.05
  done
  kill "$LOAD_PID" 2>/dev/null || true
  wait "$LOAD_PID" 2>/dev/null || true
  LOAD_PID=
  stopped=$(now_ms)
  cool_ms=timeout
  while [ $(($(now_ms) - stopped)) -lt 20000 ]; do
    if key_is "$key" False; then cool_ms=$(($(now_ms) - stopped)); break; fi
    sleep 0.05
  done
  echo "| $trial | $key | $hot_ms | $cool_ms |"
done
echo
echo "Detector memory: $(curl -s "http://127.0.0.1:$ON_ADMIN/api/v1/hotkeys" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(str(d["memory_bytes"]) + " bytes in all, " + str(d["max_shard_memory_bytes"]) +
      " bytes for one shard on one thread")')"
