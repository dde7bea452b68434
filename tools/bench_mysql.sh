#!/usr/bin/env bash
# sysbench side by side: direct to the MariaDB primary, through shardgate and
# through Debian's haproxy in TCP mode, interleaved, several rounds, on one
# sandbox. Prints medians and ratios to direct as a Markdown table. A
# benchmark, not a test: it measures and reports.
#
#   tools/bench_mysql.sh [--rounds 3] [--seconds 8] [--threads 8]
#
# shardgate runs twice: "shardgate" with routing.reads_on_primary (the same
# single server as direct and haproxy: pure proxy overhead) and
# "shardgate-split" (reads spread over the 2 replicas, which share the same
# 2 cores here, so it measures the machine more than the proxy).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3 SECONDS_PER_RUN=8 THREADS=8
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--threads T]" >&2; exit 2 ;;
  esac
done

DIR=${BENCH_DIR:-/tmp/shardgate-bench-mysql}
BASE=26306 SG=26336 SG_SPLIT=26338 HAPROXY=26340
tools/deps.sh
[ -x build/bin/shardgate ] || tools/build.sh

cleanup() {
  [ -n "${SG_PID:-}" ] && kill "$SG_PID" 2>/dev/null || true
  [ -n "${SPLIT_PID:-}" ] && kill "$SPLIT_PID" 2>/dev/null || true
  [ -n "${HAPROXY_PID:-}" ] && kill "$HAPROXY_PID" 2>/dev/null || true
  build/bin/shardctl sandbox down --destroy --dir "$DIR/sbx" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
mkdir -p "$DIR"
build/bin/shardctl sandbox up --engine mysql --shards 1 --replicas 2 --base-port $BASE \
  --dir "$DIR/sbx" --proxy-port $SG --admin-port 26337 >/dev/null

limits="limits:\n  max_client_connections: 20000\npool:\n  size: 20\nthreads: 2\n"
sed -e "s/^listeners:/${limits}routing:\n  reads_on_primary: true\nlisteners:/" \
  "$DIR/sbx/shardgate.yaml" >"$DIR/sg.yaml"
sed -e "s/^listeners:/${limits}listeners:/" -e "s/port: $SG\$/port: $SG_SPLIT/" \
  -e "s/port: 26337\$/port: 26339/" "$DIR/sbx/shardgate.yaml" >"$DIR/sg-split.yaml"
build/bin/shardgate --config "$DIR/sg.yaml" 2>"$DIR/sg.log" & SG_PID=$!
build/bin/shardgate --config "$DIR/sg-split.yaml" 2>"$DIR/sg-split.log" & SPLIT_PID=$!

# haproxy in TCP mode: a byte pipe to the primary, two threads like shardgate.
cat >"$DIR/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen mysql
  bind 127.0.0.1:$HAPROXY
  server primary 127.0.0.1:$BASE
CFG
haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 & HAPROXY_PID=$!
for port in $SG $SG_SPLIT $HAPROXY; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

sb() {
  local port=$1; shift
  sysbench --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" --mysql-user=app \
    --mysql-password=app --mysql-db=sbtest --tables=4 --table-size=10000 "$@"
}
sb $BASE oltp_read_write prepare >/dev/null
sleep 2  # let the replicas apply the load

declare -A PORT=([direct]=$BASE [shardgate]=$SG [shardgate-split]=$SG_SPLIT [haproxy]=$HAPROXY)
TARGETS=(direct shardgate shardgate-split haproxy)
CASES=("oltp_point_select, $THREADS threads|oltp_point_select --threads=$THREADS"
       "oltp_read_only, $THREADS threads|oltp_read_only --threads=$THREADS"
       "oltp_point_select, 1 thread|oltp_point_select --threads=1")
RESULTS=$DIR/results.txt
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    name=${c%%|*} args=${c#*|}
    for t in "${TARGETS[@]}"; do
      # shellcheck disable=SC2086
      out=$(sb "${PORT[$t]}" $args --time="$SECONDS_PER_RUN" --report-interval=0 run 2>&1 || true)
      tps=$(sed -n 's/^ *transactions: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' <<<"$out")
      lat=$(sed -n 's/^ *avg: *\([0-9.]*\)$/\1/p' <<<"$out" | head -1)
      errors=$(sed -n 's/^ *ignored errors: *\([0-9]*\) .*/\1/p' <<<"$out")
      if [ -z "$tps" ] || grep -q "FATAL" <<<"$out"; then
        tps=FAIL lat=FAIL
        printf '%s\n' "$out" >"$DIR/failed-$round-$t-${name//[^a-z0-9]/_}.log"
      fi
      echo "$round|$name|$t|$tps|$lat|${errors:-?}" >>"$RESULTS"
      echo "round $round  $name  $t: tps=$tps latency=${lat}ms errors=${errors:-?}" >&2
    done
  done
done

tools/bench_table.py "$RESULTS" "$ROUNDS" "$SECONDS_PER_RUN" "$(IFS=,; echo "${TARGETS[*]}")" \
  "oltp_point_select, 1 thread" transactions
