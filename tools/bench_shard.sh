#!/usr/bin/env bash
# Sharding cost end to end, interleaved, several rounds, three proxies:
#   one-shard          shardgate in front of a 1-shard sandbox (all rows there)
#   four-shards        shardgate in front of a 4-shard sandbox, pgbench_accounts
#                      sharded by aid (rows loaded through the proxy, so each
#                      shard holds its quarter)
#   four-shards-as-one the same 4-shard sandbox with pgbench_accounts range-
#                      sharded entirely onto s0: the proxy analyzes each
#                      statement and maps its key as for four-shards, but every
#                      statement goes to one server (routing cost alone,
#                      without spreading the load over 4 server processes)
# Cases: key-routed point selects, scatter-gather reads (count(*), ORDER BY ...
# LIMIT), and transfers between two accounts (two-phase commit when they sit on
# two shards). A benchmark, not a test: it measures and prints a table.
#
#   tools/bench_shard.sh [--rounds 3] [--seconds 8] [--scale 1]
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/bench_pgbench.sh

ROUNDS=3 SECONDS_PER_RUN=8 SCALE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--scale K]" >&2; exit 2 ;;
  esac
done

DIR=${BENCH_DIR:-/tmp/shardgate-bench-shard}
FOUR_BASE=26432 ONE_BASE=26442 FOUR=26532 ONE=26542 ASONE=26544
tools/deps.sh
[ -x build/bin/shardgate ] || tools/build.sh

cleanup() {
  [ -n "${FOUR_PID:-}" ] && kill "$FOUR_PID" 2>/dev/null || true
  [ -n "${ONE_PID:-}" ] && kill "$ONE_PID" 2>/dev/null || true
  [ -n "${ASONE_PID:-}" ] && kill "$ASONE_PID" 2>/dev/null || true
  build/bin/shardctl sandbox down --destroy --dir "$DIR/four" >/dev/null 2>&1 || true
  build/bin/shardctl sandbox down --destroy --dir "$DIR/one" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
mkdir -p "$DIR" && chmod 755 "$DIR"
build/bin/shardctl sandbox up --engine postgres --shards 4 --replicas 0 --base-port $FOUR_BASE \
  --dir "$DIR/four" --proxy-port $FOUR --admin-port 26533 >/dev/null
build/bin/shardctl sandbox up --engine postgres --shards 1 --replicas 0 --base-port $ONE_BASE \
  --dir "$DIR/one" --proxy-port $ONE --admin-port 26543 >/dev/null

# The same proxy settings on both sides; only the sharding differs.
settings="pool:\n  size: 20\nthreads: 2\n"
sharding="    sharding:\n      tables:\n        - {name: pgbench_accounts, column: aid}\n"
sed -e "s/^listeners:/${settings}listeners:/" "$DIR/four/shardgate.yaml" >"$DIR/four.yaml"
printf "$sharding" >>"$DIR/four.yaml"
sed -e "s/^listeners:/${settings}listeners:/" "$DIR/one/shardgate.yaml" >"$DIR/one.yaml"
sed -e "s/^listeners:/${settings}listeners:/" -e "s/port: $FOUR\$/port: $ASONE/" \
  -e "s/port: 26533\$/port: 26545/" -e "s|^data_dir: .*|data_dir: $DIR/as-one-data|" \
  "$DIR/four/shardgate.yaml" >"$DIR/as-one.yaml"
printf "    sharding:\n      tables:\n        - {name: pgbench_accounts, column: aid, strategy: range, ranges: [{shard: s0}]}\n" \
  >>"$DIR/as-one.yaml"
build/bin/shardgate --config "$DIR/four.yaml" 2>"$DIR/four.log" & FOUR_PID=$!
build/bin/shardgate --config "$DIR/one.yaml" 2>"$DIR/one.log" & ONE_PID=$!
build/bin/shardgate --config "$DIR/as-one.yaml" 2>"$DIR/as-one.log" & ASONE_PID=$!
for port in $FOUR $ONE $ASONE; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

ci() { echo "host=127.0.0.1 port=$1 user=app password=app dbname=app"; }
ROWS=$((SCALE * 100000))
pgbench -i -q -s "$SCALE" "$(ci $ONE_BASE)" >/dev/null 2>&1
# Four shards: the tables and primary keys on every shard, the rows through the proxy (one
# INSERT each, so that every row lands on its key's shard).
for s in 0 1 2 3; do pgbench -i -q -s "$SCALE" -I dtp "$(ci $((FOUR_BASE + s)))" >/dev/null 2>&1; done
awk -v n="$ROWS" 'BEGIN { for (i = 1; i <= n; i++)
  printf "INSERT INTO pgbench_accounts (aid, bid, abalance, filler) VALUES (%d, 1, 0, %s);\n", i, "'"''"'" }' \
  | psql -q -v ON_ERROR_STOP=1 "$(ci $FOUR)" >/dev/null
echo "loaded $ROWS rows through the four-shard proxy" >&2
printf '\\set aid random(1, %d)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' \
  "$ROWS" >"$DIR/point.sql"
printf 'SELECT count(*) FROM pgbench_accounts;\n' >"$DIR/count.sql"
printf 'SELECT aid, abalance FROM pgbench_accounts ORDER BY aid LIMIT 10 OFFSET 100;\n' \
  >"$DIR/order.sql"

# A transfer between two random accounts: on four shards, 3 in 4 of them span two
# shards and commit in two phases; on one shard (and four-shards-as-one) they
# commit normally.
printf '\\set a random(1, %d)\n\\set b random(1, %d)\nBEGIN;\nUPDATE pgbench_accounts SET abalance = abalance - 1 WHERE aid = :a;\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :b;\nCOMMIT;\n' \
  "$ROWS" "$ROWS" >"$DIR/transfer.sql"

declare -A PORT=([one-shard]=$ONE [four-shards]=$FOUR [four-shards-as-one]=$ASONE)
TARGETS=(one-shard four-shards four-shards-as-one)
# Warm the pools (server connections are opened on first use).
for t in "${TARGETS[@]}"; do
  pgbench -n -f "$DIR/point.sql" -c 16 -j 2 -T 2 "$(ci "${PORT[$t]}")" >/dev/null 2>&1 || true
done
# name|pgbench arguments
CASES=("point select, 1 client|-f $DIR/point.sql -c 1 -j 1"
       "point select, 16 clients|-f $DIR/point.sql -c 16 -j 2"
       "point select -M extended, 16 clients|-f $DIR/point.sql -M extended -c 16 -j 2"
       "count(*) of all rows, 4 clients|-f $DIR/count.sql -c 4 -j 2"
       "ORDER BY aid LIMIT 10 OFFSET 100, 4 clients|-f $DIR/order.sql -c 4 -j 2"
       "transfer between two accounts (BEGIN, 2 UPDATEs, COMMIT), 8 clients|-f $DIR/transfer.sql -c 8 -j 2")
RESULTS=$DIR/results.txt
run_pgbench_rounds
metrics=$(curl -s http://127.0.0.1:26533/metrics)
scatter=$(awk '/^shardgate_scatter_statements_total/ {print $2}' <<<"$metrics")
two_phase=$(awk '/^shardgate_two_phase_commits_total/ {print $2}' <<<"$metrics")
cross=$(awk '/^shardgate_cross_shard_transactions_total/ {print $2}' <<<"$metrics")
tools/bench_table.py "$RESULTS" "$ROUNDS" "$SECONDS_PER_RUN" "$(IFS=,; echo "${TARGETS[*]}")" \
  "point select, 1 client" transactions
echo
echo "Scatter-gather statements run by the four-shard proxy: ${scatter:-?}"
echo "Transactions over several shards: ${cross:-?}, of which committed in two phases: ${two_phase:-?}"
