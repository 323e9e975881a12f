#!/usr/bin/env bash
# Creates ./secrets for docker-compose.yml: a keys file (an operator key also used by Prometheus, an admin key),
# the PostgreSQL password and the store connection string. Prints the keys once; nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p secrets && chmod 700 secrets
pg=$(openssl rand -hex 24); ops=$(openssl rand -hex 32); admin=$(openssl rand -hex 32)
printf '%s' "$pg" > secrets/postgres-password
printf 'Host=postgres;Database=deepline;Username=deepline;Password=%s' "$pg" > secrets/store-connection
printf '%s' "$ops" > secrets/prometheus-token
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat > secrets/deepline-keys.yaml <<YAML
keys:
  - {name: prometheus, key_sha256: $(sha "$ops"), role: operator}
  - {name: platform-admin, key_sha256: $(sha "$admin"), role: admin}
YAML
echo "operator key (also Prometheus' bearer token): $ops"
echo "admin key: $admin"
