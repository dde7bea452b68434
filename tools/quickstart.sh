#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running shardgate: installs what is
# missing, builds, starts a PostgreSQL sandbox (1 primary, 2 streaming
# replicas) and the proxy in front of it, then prints how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SANDBOX_DIR:-/tmp/shardgate-sandbox}
tools/deps.sh
tools/build.sh
build/bin/shardctl sandbox up --engine postgres --shards 1 --replicas 2 \
  --base-port "${BASE_PORT:-15432}" --dir "$DIR" --proxy-port "${PROXY_PORT:-6432}" \
  --admin-port "${ADMIN_PORT:-9930}" >/dev/null
if [ -f "$DIR/proxy-data/shardgate.pid" ] && kill -0 "$(cat "$DIR/proxy-data/shardgate.pid")" 2>/dev/null; then
  kill "$(cat "$DIR/proxy-data/shardgate.pid")"; sleep 0.5
fi
nohup build/bin/shardgate --config "$DIR/shardgate.yaml" >"$DIR/proxy-data/shardgate.log" 2>&1 &
echo $! >"$DIR/proxy-data/shardgate.pid"
for _ in $(seq 1 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/"${PROXY_PORT:-6432}") 2>/dev/null; then break; fi
  sleep 0.1
done
cat <<MSG
shardgate is running (pid $(cat "$DIR/proxy-data/shardgate.pid"), log $DIR/proxy-data/shardgate.log, config $DIR/shardgate.yaml).
Connect:   psql "host=127.0.0.1 port=${PROXY_PORT:-6432} user=app password=app dbname=app"
Status:    build/bin/shardctl status --config $DIR/shardgate.yaml
Stop:      kill \$(cat $DIR/proxy-data/shardgate.pid); build/bin/shardctl sandbox down --destroy --dir $DIR
MSG
