#!/usr/bin/env bash
# pgbench side by side: direct to the primary, through shardgate (transaction
# pooling) and through Debian's pgbouncer (transaction pooling), interleaved,
# several rounds, on one sandbox. Prints medians and ratios to direct as a
# Markdown table. A benchmark, not a test: it measures and reports.
#
#   tools/bench_pg.sh [--rounds 3] [--seconds 8] [--scale 10]
#
# --rounds 0 measures only the memory per idle client (IDLE_CLIENTS, 10000).
# SG_THREADS (default 2): shardgate's I/O threads (pgbouncer has one).
#
# shardgate runs twice: "shardgate" with routing.reads_on_primary (the same
# single server as direct and pgbouncer: pure proxy overhead) and
# "shardgate-split" (reads spread over the 2 replicas, which share the same
# 2 cores here, so it measures the machine more than the proxy).
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

DIR=${BENCH_DIR:-/tmp/shardgate-bench}
BASE=25432 SG=25532 SG_SPLIT=25534 BOUNCER=25536
tools/deps.sh
[ -x build/bin/shardgate ] || tools/build.sh

cleanup() {
  [ -n "${SG_PID:-}" ] && kill "$SG_PID" 2>/dev/null || true
  [ -n "${SPLIT_PID:-}" ] && kill "$SPLIT_PID" 2>/dev/null || true
  [ -n "${BOUNCER_PID:-}" ] && kill "$BOUNCER_PID" 2>/dev/null || true
  build/bin/shardctl sandbox down --destroy --dir "$DIR/sbx" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
mkdir -p "$DIR" && chmod 755 "$DIR"
build/bin/shardctl sandbox up --engine postgres --shards 1 --replicas 2 --base-port $BASE \
  --dir "$DIR/sbx" --proxy-port $SG --admin-port 25533 >/dev/null
RUN=$DIR/sbx/run

# shardgate: same pool size as pgbouncer's default_pool_size below.
limits="limits:\n  max_client_connections: 20000\npool:\n  size: 20\nthreads: ${SG_THREADS:-2}\n"
sed -e "s/^listeners:/${limits}routing:\n  reads_on_primary: true\nlisteners:/" \
  "$DIR/sbx/shardgate.yaml" >"$DIR/sg.yaml"
sed -e "s/^listeners:/${limits}listeners:/" -e "s/port: $SG\$/port: $SG_SPLIT/" \
  -e "s/port: 25533\$/port: 25535/" -e "s|^data_dir: .*|data_dir: $DIR/split-data|" \
  "$DIR/sbx/shardgate.yaml" >"$DIR/sg-split.yaml"
ulimit -n "$(ulimit -Hn)"
build/bin/shardgate --config "$DIR/sg.yaml" 2>"$DIR/sg.log" & SG_PID=$!
build/bin/shardgate --config "$DIR/sg-split.yaml" 2>"$DIR/sg-split.log" & SPLIT_PID=$!

# pgbouncer refuses to run as root: run it as the sandbox's PostgreSQL user.
cat >"$DIR/pgbouncer.ini" <<INI
[databases]
app = host=$RUN port=$BASE dbname=app
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 20000
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
echo '"app" "app"' >"$DIR/userlist.txt"
chmod 644 "$DIR/pgbouncer.ini" "$DIR/userlist.txt"
chown shardgate "$DIR" 2>/dev/null || true
if [ "$(id -u)" -eq 0 ]; then
  runuser -u shardgate -- bash -c "ulimit -n $(ulimit -Hn); exec pgbouncer $DIR/pgbouncer.ini" & BOUNCER_PID=$!
else
  pgbouncer "$DIR/pgbouncer.ini" & BOUNCER_PID=$!
fi
for port in $SG $SG_SPLIT $BOUNCER; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

ci() { echo "host=127.0.0.1 port=$1 user=app password=app dbname=app"; }
pgbench -i -q -s "$SCALE" "$(ci $BASE)" >/dev/null 2>&1
sleep 2  # let the replicas replay the load

declare -A PORT=([direct]=$BASE [shardgate]=$SG [shardgate-split]=$SG_SPLIT [pgbouncer]=$BOUNCER)
TARGETS=(direct shardgate shardgate-split pgbouncer)
# name|pgbench arguments
CASES=("select-only, 1 client|-S -c 1 -j 1"
       "select-only, 16 clients|-S -c 16 -j 2"
       "select-only, 64 clients|-S -c 64 -j 2"
       "select-only -M prepared, 16 clients|-S -M prepared -c 16 -j 2")
RESULTS=$DIR/results.txt
[ "$ROUNDS" -gt 0 ] && run_pgbench_rounds

# Memory per idle client, shardgate and pgbouncer one after the other:
# IDLE_CLIENTS clients log in and sleep; the proxy's RSS before, once they
# are all held, and after they left.
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
held_on() { ss -Htn state established "( sport = :$1 )" | wc -l; }
printf '\\sleep 120 s\n' >"$DIR/idle.sql"
IDLE_REPORT=""
measure_idle() {  # name pid port
  local before peak held after
  before=$(rss "$2")
  pgbench -n -c "$IDLE_CLIENTS" -j 4 -T 600 -f "$DIR/idle.sql" "$(ci "$3")" >"$DIR/idle-$1.log" 2>&1 &
  local idle=$!
  for _ in $(seq 1 240); do [ "$(held_on "$3")" -ge "$IDLE_CLIENTS" ] && break; sleep 0.5; done
  sleep 2
  held=$(held_on "$3")
  peak=$(rss "$2")
  kill -TERM $idle 2>/dev/null; wait $idle 2>/dev/null || true
  for _ in $(seq 1 60); do [ "$(held_on "$3")" -eq 0 ] && break; sleep 0.5; done
  sleep 7  # shardgate's allocator (jemalloc) returns freed pages within about 1 s
  after=$(rss "$2")
  IDLE_REPORT+="Idle clients, $1: $held held; RSS $before kB before, $peak kB with them, $after kB after they left: $(( (peak - before) * 1024 / (${held:-0} > 0 ? ${held:-0} : 1) )) bytes per idle client."$'\n'
}
measure_idle shardgate "$SG_PID" "$SG"
measure_idle pgbouncer "$(cat "$DIR/pgbouncer.pid")" "$BOUNCER"

if [ "$ROUNDS" -gt 0 ]; then
  tools/bench_table.py "$RESULTS" "$ROUNDS" "$SECONDS_PER_RUN" "$(IFS=,; echo "${TARGETS[*]}")" \
    "select-only, 1 client" transactions
  echo
fi
printf '%s' "$IDLE_REPORT"
