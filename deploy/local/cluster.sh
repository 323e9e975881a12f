#!/usr/bin/env bash
# Three Deepline nodes on loopback, as a real cluster: one throwaway PostgreSQL 15 store, one redis-server, a
# freshly generated keys file. Prints the URLs and keys, runs until Ctrl-C, then stops and deletes everything.
#
#   deploy/local/cluster.sh              # builds src/Deepline.Node (Release) first
#   deploy/local/cluster.sh --no-build   # uses the existing Release build
#
# Ports (override with environment variables): HTTP 8001-8003 (HTTP_BASE), Akka.Remote 4053-4055 (REMOTING_BASE),
# PostgreSQL 55432 (PG_PORT), Redis 56379 (REDIS_PORT). Set KEEP=1 to keep the temp directory (logs) after exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
http_base=${HTTP_BASE:-8001}
remoting_base=${REMOTING_BASE:-4053}
pg_port=${PG_PORT:-55432}
redis_port=${REDIS_PORT:-56379}
dll="$root/src/Deepline.Node/bin/Release/net10.0/Deepline.Node.dll"

die() { echo "cluster.sh: $*" >&2; exit 1; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
new_key() { openssl rand -hex 32; }
digest() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

pg_bin=/usr/lib/postgresql/15/bin
[ -x "$pg_bin/initdb" ] || pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install -y postgresql)"
command -v redis-server >/dev/null || die "redis-server not found (apt-get install -y redis-server)"
command -v openssl >/dev/null || die "openssl not found"
for p in $http_base $((http_base + 1)) $((http_base + 2)) $remoting_base $((remoting_base + 1)) $((remoting_base + 2)) "$pg_port" "$redis_port"; do
  port_in_use "$p" && die "port $p on 127.0.0.1 is in use (set HTTP_BASE, REMOTING_BASE, PG_PORT or REDIS_PORT)"
done

if [ "${1:-}" != "--no-build" ]; then
  dotnet build "$root/src/Deepline.Node/Deepline.Node.csproj" -c Release -nologo -v quiet >/dev/null || die "build failed: dotnet build src/Deepline.Node -c Release"
fi
[ -f "$dll" ] || die "$dll not found: run without --no-build"

work=$(mktemp -d /tmp/deepline-cluster.XXXXXX)
# PostgreSQL refuses to run as root; its directory must belong to the user it runs as, outside our 0700 temp dir.
pg_dir=$(mktemp -d /tmp/deepline-cluster-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$pg_dir"
  as_pg=(runuser -u postgres --)
fi

pids=()
stopping=0
cleanup() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  echo
  echo "stopping: nodes (graceful leave), then Redis and PostgreSQL"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "${redis_pid:-}" ]; then kill -TERM "$redis_pid" 2>/dev/null || true; fi
  # runuser may stand between us and the postmaster: stop the postmaster itself (SIGINT = fast shutdown).
  if [ -f "$pg_dir/data/postmaster.pid" ]; then
    pm=$(head -n 1 "$pg_dir/data/postmaster.pid")
    kill -INT "$pm" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pm" 2>/dev/null || break; sleep 0.25; done
  fi
  wait 2>/dev/null || true
  rm -rf "$pg_dir"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL: a password even on loopback, so other local users cannot write into the cluster's journal.
pg_password=$(new_key)
printf %s "$pg_password" > "$pg_dir/pwfile"
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir/pwfile"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U deepline --pwfile="$pg_dir/pwfile" -A scram-sha-256 -E UTF8 --locale C --no-sync >"$work/initdb.log" 2>&1 \
  || die "initdb failed, see $work/initdb.log (KEEP=1 to keep it)"
rm -f "$pg_dir/pwfile"
"${as_pg[@]}" "$pg_bin/postgres" -D "$pg_dir/data" -p "$pg_port" -h 127.0.0.1 -k "$pg_dir" -c max_connections=200 >"$work/postgres.log" 2>&1 &
for _ in $(seq 1 120); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.25; done
"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || die "PostgreSQL did not start, see $work/postgres.log"
PGPASSWORD=$pg_password "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U deepline deepline || die "createdb failed"

mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!

admin=$(new_key); operator=$(new_key); submitter=$(new_key); worker=$(new_key)
cat > "$work/keys.yaml" <<KEYS
keys:
  - {name: local-admin, key_sha256: $(digest "$admin"), role: admin}
  - {name: local-operator, key_sha256: $(digest "$operator"), role: operator}
  - {name: local-submitter, key_sha256: $(digest "$submitter"), role: submitter, client_id: local}
  - {name: local-worker, key_sha256: $(digest "$worker"), role: worker}
KEYS

seeds=""
for i in 0 1 2; do seeds="${seeds:+$seeds,}akka.tcp://deepline@127.0.0.1:$((remoting_base + i))"; done
for i in 0 1 2; do
  n=$((i + 1))
  mkdir -p "$work/node$n"
  (
    cd "$work/node$n"
    export DEEPLINE_CONFIG="$root/config.yaml"
    export DEEPLINE_HTTP_HOST=127.0.0.1 DEEPLINE_HTTP_PORT=$((http_base + i))
    export DEEPLINE_REMOTING_HOST=127.0.0.1 DEEPLINE_REMOTING_PORT=$((remoting_base + i))
    export DEEPLINE_REMOTING_SEED_NODES="$seeds"
    export DEEPLINE_DATA_DIR="$work/node$n/data"
    export DEEPLINE_STORE_PROVIDER=postgresql
    export DEEPLINE_STORE_CONNECTION="Host=127.0.0.1;Port=$pg_port;Database=deepline;Username=deepline;Password=$pg_password"
    export DEEPLINE_REDIS="127.0.0.1:$redis_port"
    export DEEPLINE_AUTH_KEYS_FILE="$work/keys.yaml"
    exec dotnet "$dll"
  ) >"$work/node$n.log" 2>&1 &
  pids+=($!)
done

healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/health"; }
for i in 0 1 2; do
  port=$((http_base + i))
  for _ in $(seq 1 240); do healthy "$port" && break; kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.5; done
  healthy "$port" || { tail -n 20 "$work/node$((i + 1)).log" >&2; die "node$((i + 1)) on :$port is not healthy, log above ($work/node$((i + 1)).log)"; }
done

cat <<OUT

Deepline cluster of 3 nodes is up (PostgreSQL 127.0.0.1:$pg_port, Redis 127.0.0.1:$redis_port).
  node1  http://127.0.0.1:$http_base    akka.tcp://deepline@127.0.0.1:$remoting_base
  node2  http://127.0.0.1:$((http_base + 1))    akka.tcp://deepline@127.0.0.1:$((remoting_base + 1))
  node3  http://127.0.0.1:$((http_base + 2))    akka.tcp://deepline@127.0.0.1:$((remoting_base + 2))
Keys (throwaway, valid for this cluster only; file $work/keys.yaml):
  admin      $admin
  operator   $operator
  submitter  $submitter   (client_id local)
  worker     $worker
Try:
  curl -H "Authorization: Bearer $operator" http://127.0.0.1:$http_base/metrics
  DEEPLINE_KEY=$operator dotnet run --project src/Deepline.Cli -- --url http://127.0.0.1:$http_base cluster show
Logs: $work/node{1,2,3}.log. Ctrl-C stops everything.
OUT

exited=()
# Runs until Ctrl-C; a node that exits on its own is reported once and the others keep running.
while :; do
  for i in 0 1 2; do
    [ -n "${exited[$i]:-}" ] && continue
    kill -0 "${pids[$i]}" 2>/dev/null || { echo "node$((i + 1)) exited, see $work/node$((i + 1)).log; Ctrl-C to stop the rest"; exited[$i]=1; }
  done
  sleep 2
done
