#!/usr/bin/env bash
# Repeated failover drills, for the figures in docs/operations.md: a sandbox
# per engine (a primary and two replicas) with its proxy, then N crash drills
# (kill -9 of whichever member is primary, under load; the old primary
# rejoins after each, so every drill starts from three members) and M planned
# switchovers, and K kills with lagging replicas: the replicas stop receiving
# 600 ms before the kill and the primary's data directory is deleted (a
# machine loss), so the proxy's write journal alone has the last writes,
# and P network partitions of the primary (nftables; healed once the shard
# failed over, when the old primary must turn out fenced). The proxy reaches
# the servers over TCP, which a partition cuts. Prints, per engine and kind, the write unavailability (the longest gap between acknowledged
# writes), detection and promotion times as p50 / p99 / max, the writes
# replayed from the journal and the acknowledged writes lost over all drills.
# A measurement, not a test: the drills' own pass/fail is counted, not enforced.
#
#   tools/drill_failover.sh [--engines "postgres mysql"] [--kills 20] [--switchovers 5]
#                           [--machine-losses 0] [--partitions 0] [--load 200] [--duration 6]
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINES="postgres mysql" KILLS=20 SWITCHOVERS=5 LOSSES=0 PARTITIONS=0 LOAD=200 DURATION=6
while [ $# -gt 0 ]; do
  case "$1" in
    --engines) ENGINES=$2; shift 2 ;;
    --kills) KILLS=$2; shift 2 ;;
    --switchovers) SWITCHOVERS=$2; shift 2 ;;
    --machine-losses) LOSSES=$2; shift 2 ;;
    --partitions) PARTITIONS=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "usage: $0 [--engines LIST] [--kills N] [--switchovers M] [--machine-losses K]" \
            "[--partitions P] [--load QPS] [--duration S]" >&2
       exit 2 ;;
  esac
done

DIR=${DRILL_DIR:-/tmp/shardgate-drills}
tools/deps.sh
[ -x build/bin/shardgate ] || tools/build.sh
PROXY_PID=
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
  for e in postgres mysql; do
    build/bin/shardctl sandbox down --destroy --dir "$DIR/$e" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
mkdir -p "$DIR"
chmod 755 "$DIR"

for engine in $ENGINES; do
  case $engine in
    postgres) BASE=28432 PROXY=28532 ADMIN=28533 ;;
    mysql) BASE=28306 PROXY=28336 ADMIN=28337 ;;
    *) echo "unknown engine $engine" >&2; exit 2 ;;
  esac
  SBX="$DIR/$engine"
  build/bin/shardctl sandbox down --destroy --dir "$SBX" >/dev/null 2>&1 || true
  build/bin/shardctl sandbox up --engine "$engine" --shards 1 --replicas 2 --base-port $BASE \
    --proxy-port $PROXY --admin-port $ADMIN --dir "$SBX" >/dev/null
  sed -i '/unix_socket/d' "$SBX/shardgate.yaml"
  build/bin/shardgate --config "$SBX/shardgate.yaml" >"$DIR/$engine-proxy.log" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$ADMIN/healthz" >/dev/null && break
    sleep 0.1
  done
  : >"$DIR/$engine.jsonl"
  for i in $(seq "$KILLS"); do
    build/bin/shardctl drill failover --dir "$SBX" --kill primary --rejoin --load "$LOAD" \
      --duration "$DURATION" --json 2>/dev/null | tail -1 >>"$DIR/$engine.jsonl" || true
    echo "$engine kill drill $i/$KILLS done" >&2
  done
  for i in $(seq "$SWITCHOVERS"); do
    build/bin/shardctl drill failover --dir "$SBX" --switchover --rejoin --load "$LOAD" \
      --duration "$DURATION" --json 2>/dev/null | tail -1 >>"$DIR/$engine.jsonl" || true
    echo "$engine switchover drill $i/$SWITCHOVERS done" >&2
  done
  for i in $(seq "$LOSSES"); do
    build/bin/shardctl drill failover --dir "$SBX" --kill primary --lag-ms 600 --lose-data \
      --rejoin --load "$LOAD" --duration "$DURATION" --json 2>/dev/null | tail -1 \
      >>"$DIR/$engine.jsonl" || true
    echo "$engine machine-loss drill $i/$LOSSES done" >&2
  done
  for i in $(seq "$PARTITIONS"); do
    build/bin/shardctl drill failover --dir "$SBX" --partition primary --rejoin --load "$LOAD" \
      --duration "$DURATION" --json 2>/dev/null | tail -1 >>"$DIR/$engine.jsonl" || true
    echo "$engine partition drill $i/$PARTITIONS done" >&2
  done
  kill "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=
  build/bin/shardctl sandbox down --destroy --dir "$SBX" >/dev/null 2>&1 || true
done

python3 - "$DIR" $ENGINES <<'EOF'
import json, sys
directory, engines = sys.argv[1], sys.argv[2:]

def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]

print("| engine | fault | drills | passed | write unavailable p50 / p99 / max (ms) "
      "| detect p50 (ms) | promote p50 / max (ms) | client errors | replayed from journal "
      "| acknowledged lost |")
print("|---|---|---|---|---|---|---|---|---|---|")
for engine in engines:
    rows = []
    with open(f"{directory}/{engine}.jsonl") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    def kind(x):
        if x.get("old_primary_data_lost"):
            return "machine loss"
        return "kill, lagging replicas" if x.get("replicas_lagged_ms") else x.get("fault")
    for fault in ("kill", "switchover", "kill, lagging replicas", "machine loss", "partition"):
        r = [x for x in rows if kind(x) == fault]
        if not r:
            continue
        gap = [x["write_unavailable_ms"] for x in r]
        det = [x.get("detect_ms", 0) for x in r]
        pro = [x.get("promote_ms", 0) for x in r]
        errors = sum(x.get("writes_failed", 0) for x in r)
        lost = sum(x.get("acknowledged_missing", 0) for x in r)
        replayed = sum(x.get("journal_replayed", 0) for x in r)
        passed = sum(1 for x in r if x.get("passed"))
        print(f"| {engine} | {fault} | {len(r)} | {passed} | {pct(gap,50):.0f} / {pct(gap,99):.0f} / "
              f"{max(gap):.0f} | {pct(det,50):.0f} | {pct(pro,50):.0f} / {max(pro):.0f} | "
              f"{errors} | {replayed} | {lost} |")
EOF
