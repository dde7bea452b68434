#!/usr/bin/env bash
# Online resharding, measured: copy throughput and the write pause of each
# cutover, over RUNS cutovers per engine while 8 clients update and read
# through the proxy. A benchmark, not a test: it measures and prints a table
# (the checks that fail are in tests/integration/reshard_test.cpp).
#
# Per engine: a sandbox of one shard holding 200k rows and one spare (one
# replica each), the proxy in front; then RUNS times, alternately, split s0
# into s1 at 80 and merge s1 back into s0: `reshard start --wait`, a second of
# catch-up under load, `reshard cutover`, `reshard cleanup`. At the end the
# rows and the sum of balances through the proxy must match the committed
# updates (pgbench's count; mariadb-slap's fixed count), else it says so.
#
#   tools/bench_reshard.sh [--runs 10] [--engine postgres|mysql|both]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=10 ENGINES="postgres mysql"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --engine) ENGINES=$2; [ "$ENGINES" = both ] && ENGINES="postgres mysql"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--engine postgres|mysql|both]" >&2; exit 2 ;;
  esac
done

DIR=${BENCH_DIR:-/tmp/shardgate-bench-reshard}
ROWS=200000
tools/deps.sh
[ -x build/bin/shardgate ] || tools/build.sh
SHARDCTL=build/bin/shardctl

cleanup() {
  [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null || true
  [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null || true
  for e in postgres mysql; do
    $SHARDCTL sandbox down --destroy --dir "$DIR/$e" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
cleanup
mkdir -p "$DIR" && chmod 755 "$DIR"

json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

bench_engine() {
  local engine=$1 base proxy admin sql load_out
  if [ "$engine" = postgres ]; then base=29432 proxy=29532 admin=29533; else base=29632 proxy=29732 admin=29733; fi
  $SHARDCTL sandbox up --engine "$engine" --shards 1 --spare-shards 1 --replicas 1 \
    --base-port $base --proxy-port $proxy --admin-port $admin --dir "$DIR/$engine" >/dev/null
  local create="CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, note text)"
  if [ "$engine" = postgres ]; then
    sql() { psql "host=127.0.0.1 port=$1 user=app password=app dbname=app" -Atqc "$2"; }
    sql $base "$create"
    sql $((base + 2)) "$create"
    sql $base "INSERT INTO accounts SELECT g, 0, 'n' || g FROM generate_series(1, $ROWS) g"
  else
    sql() { mariadb -h127.0.0.1 -P"$1" -uapp -papp app -N -e "$2"; }
    sql $base "$create"
    sql $((base + 2)) "$create"
    sql $base "INSERT INTO accounts SELECT seq, 0, CONCAT('n', seq) FROM seq_1_to_$ROWS"
  fi
  cp "$DIR/$engine/shardgate.yaml" "$DIR/$engine.yaml"
  printf '    sharding:\n      tables:\n        - {name: accounts, column: id}\n' \
    >>"$DIR/$engine.yaml"
  build/bin/shardgate --config "$DIR/$engine.yaml" 2>"$DIR/$engine-proxy.log" &
  PROXY_PID=$!
  sleep 2

  # The load: 8 clients, each update acknowledged once.
  local expected_updates
  if [ "$engine" = postgres ]; then
    printf '\\set id random(1, %d)\nUPDATE accounts SET balance = balance + 1 WHERE id = :id;\nSELECT balance FROM accounts WHERE id = :id;\n' \
      $ROWS >"$DIR/load.sql"
    PGPASSWORD=app pgbench -h 127.0.0.1 -p $proxy -U app -n -c 8 -T $((RUNS * 12 + 10)) \
      -f "$DIR/load.sql" app >"$DIR/$engine-load.out" 2>&1 &
  else
    python3 -c "
import random
random.seed(1)
print(';'.join('UPDATE accounts SET balance=balance+1 WHERE id=%d;SELECT balance FROM accounts WHERE id=%d' % ((random.randint(1, $ROWS),) * 2) for _ in range(3000)))" >"$DIR/load.sql"
    expected_updates=$((8 * 3000 * RUNS * 3 / 2))
    mariadb-slap -h127.0.0.1 -P$proxy -uapp -papp --create-schema=app --concurrency=8 \
      --iterations=1 --query="$DIR/load.sql" --delimiter=';' \
      --number-of-queries=$((expected_updates * 2)) >"$DIR/$engine-load.out" 2>&1 &
  fi
  LOAD_PID=$!
  sleep 2

  local run from to op pause rate copied keys
  for run in $(seq 1 "$RUNS"); do
    if [ $((run % 2)) = 1 ]; then op="--split s0 --into s1 --at 80"; else op="--merge s1 --into s0"; fi
    # shellcheck disable=SC2086
    $SHARDCTL reshard start $op --database app --wait --admin 127.0.0.1:$admin >/dev/null
    sleep 1
    $SHARDCTL reshard cutover --admin 127.0.0.1:$admin >/dev/null
    local status
    status=$(curl -s http://127.0.0.1:$admin/api/v1/reshard)
    pause=$(json_field "'%.1f' % d['pauses_ms'][-1]" <<<"$status")
    rate=$(json_field "'%.0f' % d['rows_per_second']" <<<"$status")
    copied=$(json_field "d['rows_copied']" <<<"$status")
    keys=$(json_field "d['keys_applied']" <<<"$status")
    $SHARDCTL reshard cleanup --admin 127.0.0.1:$admin >/dev/null
    echo "$engine|$run|${op%% *}|$copied|$rate|$keys|$pause" >>"$DIR/results"
    echo "$engine run $run ${op%% *}: $copied rows at $rate rows/s, $keys keys re-copied, pause $pause ms" >&2
  done
  wait "$LOAD_PID" || true
  LOAD_PID=
  local committed sum count
  if [ "$engine" = postgres ]; then
    committed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/$engine-load.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$DIR/$engine-load.out")
  else
    committed=$expected_updates
    failed=$(grep -c -i "error" "$DIR/$engine-load.out" || true)
  fi
  sum=$(sql $proxy "SELECT sum(balance) FROM accounts")
  count=$(sql $proxy "SELECT count(*) FROM accounts")
  echo "$engine|check|$count rows (want $ROWS), balance sum $sum (want $committed), failed $failed" >>"$DIR/results"
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=
  $SHARDCTL sandbox down --destroy --dir "$DIR/$engine" >/dev/null 2>&1 || true
}

: >"$DIR/results"
for engine in $ENGINES; do bench_engine "$engine"; done

python3 - "$DIR/results" <<'EOF'
import sys, statistics
runs, checks = {}, {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("|")
    if f[1] == "check":
        checks[f[0]] = f[2]
        continue
    runs.setdefault(f[0], []).append((f[2], int(f[3]), float(f[4]), int(f[5]), float(f[6])))
print("| engine | cutovers | write pause p50 / p99 / max (ms) | copy (rows/s, median) | rows moved per job | keys re-copied per job (median) | ledger check |")
print("|---|---|---|---|---|---|---|")
for e, rs in runs.items():
    pauses = sorted(r[4] for r in rs)
    p99 = pauses[min(len(pauses) - 1, int(round(0.99 * (len(pauses) - 1))))]
    print(f"| {e} | {len(rs)} | {statistics.median(pauses):.1f} / {p99:.1f} / {max(pauses):.1f} | "
          f"{statistics.median(r[2] for r in rs):.0f} | {statistics.median(r[1] for r in rs):.0f} | "
          f"{statistics.median(r[3] for r in rs):.0f} | {checks.get(e, '?')} |")
EOF
