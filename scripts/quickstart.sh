#!/usr/bin/env bash
# Set-up command (a): installs what is missing, builds, and starts Switchyard
# with embedded defaults — SQLite in .switchyard/, the process runtime,
# switchyard-proxy on 127.0.0.1:8080, the demo service as environments
# `production` and `staging` (127.0.0.1:8090, its own proxy; production's
# upstream) with v1 live, and an `admin` account (password from
# SWITCHYARD_ADMIN_PASSWORD, or generated and printed once).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ensure_build_tools
build_release
cd "$ROOT"
log "starting Switchyard (Ctrl-C stops the console; users keep being served by switchyard-proxy)"
exec "$ROOT/target/release/switchyard" --data-dir "${SWITCHYARD_DATA_DIR:-$ROOT/.switchyard}" serve \
  --site-root "$ROOT/target/site" "$@"
