#!/usr/bin/env bash
# The HA quick start: PostgreSQL (scripts/postgres.sh), two consoles sharing
# its database, and one switchyard-proxy that both drive.
#
#   console A  http://127.0.0.1:3000  starts switchyard-proxy and the demo
#   console B  http://127.0.0.1:3001  the same database, the same proxy
#   users      http://127.0.0.1:8080  switchyard-proxy (staging: 8090)
#
# Sign in on either: sessions, locks, the audit log and the live deploy
# pages are shared. Kill one console, even with SIGKILL, mid-deploy: the
# other recovers the deploy it ran (users stay on the old slot) and takes
# over the background rounds. Ctrl-C stops both consoles; the proxy and the
# slots keep serving users. What a load balancer in front of the consoles
# must do: README, "Several consoles".
#
# SWITCHYARD_BIN: a switchyard binary to run instead of building the release
# (its site root must be built too for the pages to hydrate).
# SWITCHYARD_HA_DIR: where the consoles' data directories go.
# SWITCHYARD_PG_PORT, SWITCHYARD_PG_DIR, SWITCHYARD_PG_URL_FILE: see scripts/postgres.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
if [ -n "${SWITCHYARD_BIN:-}" ]; then
  bin="$SWITCHYARD_BIN"
else
  ensure_build_tools
  build_release
  bin="$ROOT/target/release/switchyard"
fi

bash "$ROOT/scripts/postgres.sh"
SWITCHYARD_DATABASE_URL="$(cat "${SWITCHYARD_PG_URL_FILE:-$ROOT/.postgres.url}")"
export SWITCHYARD_DATABASE_URL
ha="${SWITCHYARD_HA_DIR:-$ROOT/.switchyard-ha}"
mkdir -p "$ha/a" "$ha/b"
chmod 700 "$ha" "$ha/a" "$ha/b"

pids=()
stop() {
  trap - EXIT INT TERM
  log "stopping the consoles (switchyard-proxy and the slots keep serving users)"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait || true
}
trap stop EXIT INT TERM

# Waits until the console at $1 says it can serve (its database answers).
wait_healthy() {
  for _ in $(seq 1 600); do
    if curl -fsS "http://$1/api/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "the console on $1 did not come up"
  return 1
}

log "console A on http://127.0.0.1:3000 (starts switchyard-proxy and the demo)"
"$bin" --data-dir "$ha/a" serve --listen 127.0.0.1:3000 --site-root "$ROOT/target/site" "$@" &
pids+=("$!")
wait_healthy 127.0.0.1:3000

# Besides the database, the consoles share two secrets: the proxy's admin
# token (every console drives the same proxy) and the key that seals
# environment secrets (each must open what another sealed).
for f in proxy.token secrets.key; do
  [ -f "$ha/b/$f" ] || install -m 0600 "$ha/a/$f" "$ha/b/$f"
done
log "console B on http://127.0.0.1:3001 (the same database and proxy)"
"$bin" --data-dir "$ha/b" serve --listen 127.0.0.1:3001 --site-root "$ROOT/target/site" \
  --no-demo --no-spawn-proxy "$@" &
pids+=("$!")
wait_healthy 127.0.0.1:3001

log "both consoles are up: http://127.0.0.1:3000 and http://127.0.0.1:3001; users on http://127.0.0.1:8080"
wait
