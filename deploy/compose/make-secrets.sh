#!/usr/bin/env bash
# Creates ./secrets for docker-compose.yml: random PostgreSQL and Grafana passwords and a keys file whose keys are
# stored as SHA-256 digests only. The plaintext keys are printed once; keep them in your password manager.
# Prometheus needs its operator key in plaintext (it sends it as a bearer token), so that one is kept on disk.
# Refuses to overwrite an existing ./secrets: rotating keys is an edit of secrets/keys.yaml (re-read live).
set -euo pipefail
cd "$(dirname "$0")"
if [ -e secrets ]; then
  echo "make-secrets.sh: ./secrets exists; delete it first to start over (running nodes keep their old keys until then)" >&2
  exit 1
fi
umask 077
mkdir secrets
# The files are mounted into containers running as non-root users (node 1654, prometheus 65534, grafana 472),
# so they must be world-readable; the 0700 directory keeps other host users out.
new_key() { openssl rand -hex 32; }
digest() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

admin=$(new_key); prometheus=$(new_key); worker=$(new_key); submitter=$(new_key)
# No trailing newline: every reader takes the file's bytes as the password.
printf %s "$(new_key)" > secrets/postgres_password
printf %s "$(new_key)" > secrets/grafana_admin_password
printf %s "$prometheus" > secrets/prometheus_key
# Empty = no webhook; put a Slack/PagerDuty URL here to get deadlock alerts.
: > secrets/alert_webhook
cat > secrets/keys.yaml <<KEYS
keys:
  - {name: platform-admin, key_sha256: $(digest "$admin"), role: admin}
  - {name: prometheus, key_sha256: $(digest "$prometheus"), role: operator}
  - {name: external-workers, key_sha256: $(digest "$worker"), role: worker}
  - {name: demo-submitter, key_sha256: $(digest "$submitter"), role: submitter, client_id: demo}
KEYS
chmod 0644 secrets/*

cat <<OUT
secrets written to $(pwd)/secrets. Keys (shown once, only digests are stored):
  admin      platform-admin    $admin
  operator   prometheus        $prometheus
  worker     external-workers  $worker
  submitter  demo-submitter    $submitter   (client_id demo)
Grafana: admin / $(cat secrets/grafana_admin_password)
OUT
