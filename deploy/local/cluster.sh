#!/usr/bin/env bash
# Three Deepline nodes on loopback with a throwaway PostgreSQL store and Redis: the documented equivalent of
# `./build.sh cluster`. Needs Debian's postgresql and redis-server (./build.sh test installs them). Ctrl-C stops all.
#   deploy/local/cluster.sh            # HTTP on 127.0.0.1:8101-8103, remoting 4101-4103
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/deepline-cluster-XXXXXX)"
chmod 755 "$work"  # the postgres user must reach its data directory inside
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/pg/data/postmaster.pid" ] && kill -QUIT "$(head -1 "$work/pg/data/postmaster.pid")" 2>/dev/null || true
  sleep 1; rm -rf "$work"
}
trap cleanup EXIT INT TERM

dotnet build "$root/src/Deepline.Node" -c Release --nologo -v quiet >/dev/null
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$work/pg"; [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$bin/initdb" -D "$work/pg/data" -A trust -U deepline --no-sync >/dev/null
as_pg "$bin/postgres" -D "$work/pg/data" -p 55432 -h 127.0.0.1 -k "$work/pg" >"$work/pg.log" 2>&1 & pids+=($!)
redis-server --port 56379 --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 & pids+=($!)
until as_pg "$bin/pg_isready" -h 127.0.0.1 -p 55432 >/dev/null 2>&1; do sleep 0.2; done

ops=$(openssl rand -hex 32); admin=$(openssl rand -hex 32); submit=$(openssl rand -hex 32)
cat > "$work/keys.yaml" <<YAML
keys:
  - {name: ops, key: $ops, role: operator}
  - {name: admin, key: $admin, role: admin}
  - {name: demo-submitter, key: $submit, role: submitter, client_id: demo}
YAML
seeds="akka.tcp://deepline@127.0.0.1:4101,akka.tcp://deepline@127.0.0.1:4102,akka.tcp://deepline@127.0.0.1:4103"
for n in 1 2 3; do
  mkdir -p "$work/node$n"
  (cd "$work/node$n" && DEEPLINE_CONFIG="" DEEPLINE_DATA_DIR="$work/node$n" DEEPLINE_HTTP_PORT=810$n DEEPLINE_REMOTING_PORT=410$n \
    DEEPLINE_REMOTING_SEED_NODES="$seeds" DEEPLINE_STORE_PROVIDER=postgresql \
    DEEPLINE_STORE_CONNECTION="Host=127.0.0.1;Port=55432;Username=deepline;Database=postgres" \
    DEEPLINE_REDIS=127.0.0.1:56379 DEEPLINE_AUTH_KEYS_FILE="$work/keys.yaml" \
    exec dotnet "$root/src/Deepline.Node/bin/Release/net10.0/Deepline.Node.dll" >"$work/node$n.log" 2>&1) & pids+=($!)
  # The first seed forms the cluster; the others join it.
  if [ "$n" = 1 ]; then until curl -fsS http://127.0.0.1:8101/health >/dev/null 2>&1; do sleep 0.5; done; fi
done
for n in 2 3; do until curl -fsS "http://127.0.0.1:810$n/health" >/dev/null 2>&1; do sleep 0.5; done; done
cat <<TXT
Three nodes up: http://127.0.0.1:8101 http://127.0.0.1:8102 http://127.0.0.1:8103 (logs and keys in $work)
  operator key:  $ops
  admin key:     $admin
  submitter key: $submit   (client demo)
  e.g. curl -H "Authorization: Bearer $ops" http://127.0.0.1:8101/cluster/members
Ctrl-C stops everything.
TXT
wait
