#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running shardgate: installs what is
# missing, builds, starts a sandbox (1 primary, 2 replicas: PostgreSQL
# streaming replication, or with --engine mysql MariaDB GTID replication) and
# the proxy in front of it, then prints how to connect.
#
#   tools/quickstart.sh [--engine postgres|mysql]
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=postgres
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) ENGINE=$2; shift 2 ;;
    *) echo "usage: $0 [--engine postgres|mysql]" >&2; exit 2 ;;
  esac
done
case "$ENGINE" in
  postgres) DEFAULT_DIR=/tmp/shardgate-sandbox BASE=15432 PROXY=6432 ADMIN=9930 ;;
  mysql) DEFAULT_DIR=/tmp/shardgate-sandbox-mysql BASE=13306 PROXY=6033 ADMIN=9931 ;;
  *) echo "--engine must be postgres or mysql" >&2; exit 2 ;;
esac
DIR=${SANDBOX_DIR:-$DEFAULT_DIR}
BASE=${BASE_PORT:-$BASE} PROXY=${PROXY_PORT:-$PROXY} ADMIN=${ADMIN_PORT:-$ADMIN}
tools/deps.sh
tools/build.sh
build/bin/shardctl sandbox up --engine "$ENGINE" --shards 1 --replicas 2 \
  --base-port "$BASE" --dir "$DIR" --proxy-port "$PROXY" --admin-port "$ADMIN" >/dev/null
if [ -f "$DIR/proxy-data/shardgate.pid" ] && kill -0 "$(cat "$DIR/proxy-data/shardgate.pid")" 2>/dev/null; then
  # The old proxy must be gone before the new one opens the topology store
  # in proxy-data (one process owns it at a time).
  old=$(cat "$DIR/proxy-data/shardgate.pid")
  kill "$old"
  for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
fi
mkdir -p "$DIR/proxy-data"
nohup build/bin/shardgate --config "$DIR/shardgate.yaml" >"$DIR/proxy-data/shardgate.log" 2>&1 &
echo $! >"$DIR/proxy-data/shardgate.pid"
for _ in $(seq 1 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$PROXY") 2>/dev/null; then break; fi
  if ! kill -0 "$(cat "$DIR/proxy-data/shardgate.pid")" 2>/dev/null; then
    echo "shardgate did not start:" >&2
    cat "$DIR/proxy-data/shardgate.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ "$ENGINE" = mysql ]; then
  CONNECT="mariadb -h 127.0.0.1 -P $PROXY -u app -papp app"
else
  CONNECT="psql \"host=127.0.0.1 port=$PROXY user=app password=app dbname=app\""
fi
cat <<MSG
shardgate is running (pid $(cat "$DIR/proxy-data/shardgate.pid"), log $DIR/proxy-data/shardgate.log, config $DIR/shardgate.yaml).
Connect:   $CONNECT
Status:    build/bin/shardctl status --config $DIR/shardgate.yaml
Failover:  build/bin/shardctl drill failover --dir $DIR --kill primary --rejoin
Stop:      kill \$(cat $DIR/proxy-data/shardgate.pid); build/bin/shardctl sandbox down --destroy --dir $DIR
MSG
