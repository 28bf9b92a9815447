#!/usr/bin/env bash
# Starts a throw-away Switchyard console for the Playwright suite in end2end/.
#
# Playwright's `webServer` runs this (see end2end/playwright.config.ts); it can also be
# run by hand to poke at the same setup. Every run gets a fresh data directory
# (database, proxy state, slot logs), recorded in end2end/.e2e-data-dir so that the
# suite's global teardown -- or the next run of this script -- can stop the detached
# switchyard-proxy and demo slot processes that `serve` leaves running, and delete it.
#
# Environment:
#   SWITCHYARD_BIN    console binary (default: target/release/switchyard); relative paths
#                     are taken from end2end/. switchyard-proxy and switchyard-demo must sit
#                     next to it.
#   LEPTOS_SITE_ROOT  compiled front end (default: target/site); relative to end2end/.
#   E2E_SERVER_LOG    copy of the console's output (default: end2end/e2e-server.log).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
e2e="$repo/end2end"
state_file="$e2e/.e2e-data-dir"

absolute() { # absolute PATH, relative ones taken from end2end/
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$e2e/$1" ;;
  esac
}

bin=$(absolute "${SWITCHYARD_BIN:-../target/release/switchyard}")
site_root=$(absolute "${LEPTOS_SITE_ROOT:-../target/site}")
log=$(absolute "${E2E_SERVER_LOG:-e2e-server.log}")

# Settings from the caller's environment must not leak into the suite's server.
unset SWITCHYARD_SECURE_COOKIES SWITCHYARD_DATA_DIR
export SWITCHYARD_BIN_DIR
SWITCHYARD_BIN_DIR=$(dirname "$bin")

listen=127.0.0.1:3100
app_listen=127.0.0.1:3180
proxy_admin=127.0.0.1:3181
proxy_preview=127.0.0.1:3182
# The demo's staging environment: users, its proxy's admin API, its preview.
staging_listen=127.0.0.1:3185
staging_admin=127.0.0.1:3186
staging_preview=127.0.0.1:3187
# The service the browser journey onboards (end2end/tests/08e-environments.spec.ts):
# the console starts its proxy when it is created.
shop_listen=127.0.0.1:3190
shop_admin=127.0.0.1:3191
shop_live_listen=127.0.0.1:3195
shop_live_admin=127.0.0.1:3196

fail() { echo "e2e-server: $*" >&2; exit 1; }

for b in "$bin" "$(dirname "$bin")/switchyard-proxy" "$(dirname "$bin")/switchyard-demo"; do
  [[ -x "$b" ]] || fail "$b not found or not executable (cargo build --release -p server -p proxy -p demo, or set SWITCHYARD_BIN)"
done
compgen -G "$site_root/pkg/*.wasm" >/dev/null ||
  fail "no WASM in $site_root/pkg: build the front end (cargo leptos build --release) or set LEPTOS_SITE_ROOT"

# Leftovers of an earlier run that was not torn down (killed runner, Ctrl-C twice, ...):
# its proxy would still answer on $proxy_admin with another token.
if [[ -f "$state_file" ]]; then
  old=$(<"$state_file")
  if [[ -n "$old" && "$old" == /* ]]; then
    pkill -f -- "$old" 2>/dev/null || true
    for _ in $(seq 50); do pgrep -f -- "$old" >/dev/null || break; sleep 0.1; done
    pkill -KILL -f -- "$old" 2>/dev/null || true
    rm -rf -- "$old"
  fi
  rm -f -- "$state_file"
fi

port_in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$listen" "$app_listen" "$proxy_admin" "$proxy_preview" \
  "$staging_listen" "$staging_admin" "$staging_preview" "$shop_listen" "$shop_admin" \
  "$shop_live_listen" "$shop_live_admin"; do
  if port_in_use "$addr"; then
    fail "$addr is already in use (another server, or leftovers of a run not recorded in end2end/.e2e-data-dir): see ss -ltnp | grep ${addr##*:}"
  fi
done

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-e2e.XXXXXXXX")
printf '%s\n' "$data_dir" >"$state_file"

add_user() { # NAME ROLE PASSWORD
  SWITCHYARD_PASSWORD="$3" "$bin" --data-dir "$data_dir" user add "$1" --role "$2" >/dev/null
}
add_user admin admin admin-password-1
add_user dana deployer deployer-password-1
add_user victor viewer viewer-password-1
add_user alice approver approver-password-1
add_user bob approver approver-password-2

# The onboarded service's containers of an earlier run that stopped half-way.
if command -v docker >/dev/null 2>&1; then
  docker rm -f switchyard-shop-blue switchyard-shop-green >/dev/null 2>&1 || true
  # Its images are pulled from the registry (scripts/registry.sh) each run.
  registry=$(cat "${SWITCHYARD_REGISTRY_DIR:-/tmp/switchyard-registry}/address" 2>/dev/null || true)
  if [[ -n "$registry" ]]; then
    docker rmi "$registry/shop:v1" "$registry/shop:v2" >/dev/null 2>&1 || true
  fi
fi
echo "e2e-server: data dir $data_dir; console output also in $log" >&2
: >"$log"
# The console's output goes to Playwright (shown as [WebServer]) and to $log. tee runs
# in this process group, which Playwright stops with the console.
exec > >(tee -a "$log" >&2) 2>&1
# No checklist at first: the earlier journeys deploy by version; the approvals
# journey (09) gives production the default checklist through the admin page.
SWITCHYARD_ADMIN_PASSWORD=admin-password-1 exec "$bin" --data-dir "$data_dir" serve \
  --listen "$listen" \
  --app-listen "$app_listen" \
  --proxy-admin "$proxy_admin" \
  --proxy-preview "$proxy_preview" \
  --demo-staging "$staging_listen" \
  --health-deadline-secs 5 \
  --demo-checklist none \
  --site-root "$site_root"
