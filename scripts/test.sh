#!/usr/bin/env bash
# Set-up command (b): installs what is missing and runs every test — the Rust
# unit and integration tests (real proxy and demo processes), then the
# Playwright suite in Debian's Chromium (the console as `cargo test` built it,
# the front end in its release profile).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ensure_build_tools
ensure_playwright
cd "$ROOT"

# CI machines have little disk (a run once died with "No space left on device"
# at `cargo test`): no incremental caches there, and the debug artifacts go once
# the Rust tests are done (the Playwright suite runs the release build).
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi
disk() { log "disk: $(df -h --output=avail "$ROOT" | tail -1 | tr -d ' ') free, target/ $(du -sh "$ROOT/target" 2>/dev/null | cut -f1)"; }

log "cargo fmt --check"
cargo fmt --all -- --check

# The WASM entry (frontend) only builds for wasm32; everything else is linted
# with its tests, benches and examples.
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --exclude frontend --all-targets -- -D warnings

# The console reaches the engine only through `Engine` and the types at the
# engine's root: built alone (without the tests' `internals` feature) the
# store and the drivers are private to the engine (engine/src/lib.rs), so a
# page or handler that reads a table does not compile.
log "cargo clippy -p server (the console without engine internals)"
cargo clippy -p server -- -D warnings

# The browser's half of the console (hydrate, wasm32) is linted too: server
# functions and shared views compile differently there.
log "cargo clippy -p app (hydrate, wasm32)"
cargo clippy -p app --features hydrate --target wasm32-unknown-unknown -- -D warnings

log "Docker Engine and the demo images (the Docker runtime is tested for real)"
bash "$ROOT/scripts/docker.sh"
log "A Docker registry on loopback with the test images (pulls are tested for real)"
bash "$ROOT/scripts/registry.sh"

# The PostgreSQL store is tested against a real PostgreSQL (Debian's package,
# a cluster of the project's own on loopback): the store's and the audit log's
# cases run on both stores, and two consoles share one database
# (server/tests/postgres_replicas.rs). Each test makes a database of its own;
# those of earlier runs go first.
log "PostgreSQL on loopback (the PostgreSQL store's tests)"
bash "$ROOT/scripts/postgres.sh"
SWITCHYARD_TEST_POSTGRES="$(cat "$ROOT/.postgres.url")"
export SWITCHYARD_TEST_POSTGRES
bash "$ROOT/scripts/postgres.sh" drop-test-databases

# The nginx router is tested against a real nginx (engine/tests/nginx_router.rs).
# Debian's postinst may fail to start a system nginx in a container; apt still
# succeeds, and the tests run their own nginx on loopback ports.
ensure_apt nginx

# `cargo test` builds every binary the integration tests start (the console,
# switchyard-proxy, the demo, the benchmarks) into target/debug before it runs
# any test. A separate `cargo build` first would compile the whole graph twice:
# the tests' dev-dependencies change features of shared crates (reqwest's
# cookies, the engine's failpoints), so nothing it built would be reused.
log "cargo test"
cargo test --workspace --exclude frontend

# The engine's integration tests that go through a test harness's database
# run once more on PostgreSQL (engine/tests/support/harness.rs `store_url`: a
# fresh database per test): the pipeline, locks, watch, hold, canary, shared
# proxy, approvals, freezes, webhook events and environments, and the API
# tokens, webhook deliveries, sign-in throttle, preview gates, audit
# checkpoints, the nginx router and the Docker pipeline: every engine test
# that opens a database.
# Selected with `--workspace` as above, not `-p engine`: the same features,
# so the test binaries are the ones just built, not a second compilation.
log "cargo test (the engine's pipeline tests again, on PostgreSQL)"
SWITCHYARD_TEST_STORE=postgres cargo test --workspace --exclude frontend \
  --test pipeline_deploy --test pipeline_steps --test pipeline_locks --test pipeline_watch \
  --test hold --test canary --test shared_proxy --test approvals --test freezes \
  --test webhook_events --test environment_lifecycle \
  --test api_tokens --test webhooks --test throttle --test preview --test audit_checkpoints \
  --test nginx_router --test docker_pipeline

# And the console's: each test's console (in process or a real `switchyard
# serve`), its CLI commands and the pools it opens meet one PostgreSQL
# database per data directory (server/tests/store). postgres_replicas runs
# on PostgreSQL in the first pass already.
log "cargo test (the console's tests again, on PostgreSQL)"
server_tests=()
for t in "$ROOT"/server/tests/*.rs; do
  t=$(basename "$t" .rs)
  [ "$t" = postgres_replicas ] || server_tests+=(--test "$t")
done
SWITCHYARD_TEST_STORE=postgres cargo test --workspace --exclude frontend "${server_tests[@]}"

# The Playwright suite drives the console `cargo test` just built (the same
# code in the debug profile, with its sibling binaries) and the release front
# end. A release build of the console's server half compiled every dependency
# again at opt-level 3: over 25 minutes on two cores, half of a CI run, for
# browser tests that measure nothing. The quick start still builds release.
e2e_bin="$ROOT/target/e2e"
log "the console for the browser tests: target/debug -> $e2e_bin"
rm -rf "$e2e_bin" && mkdir -p "$e2e_bin"
for b in switchyard switchyard-proxy switchyard-demo; do
  cp "$ROOT/target/debug/$b" "$e2e_bin/"
done

disk
if [ "${CI:-}" = "true" ]; then
  log "cargo clean --profile dev (CI: free the disk before the front end's build)"
  cargo clean --profile dev
fi

# The browser's half in its release profile (wasm-release: the size people
# download); cargo-leptos writes the hashed file names to
# target/release/hash.txt, which the console reads beside its binary.
log "cargo leptos build --release --frontend-only"
rm -f "$ROOT/target/release/hash.txt"
cargo leptos build --release --frontend-only
precompress_site
cp "$ROOT/target/release/hash.txt" "$e2e_bin/"
disk

log "playwright test"
cd "$ROOT/end2end"
SWITCHYARD_BIN="$e2e_bin/switchyard" LEPTOS_SITE_ROOT="$ROOT/target/site" npx playwright test

# The journeys are what people do, and nothing people do should make the
# console log an ERROR: each one seen here so far was a bug (a server-side
# render whose calls had lost their context). The log is the console's own
# output during the suite (scripts/e2e-server.sh), colours taken out.
log "the console logged no ERROR during the browser tests"
if errors=$(sed 's/\x1b\[[0-9;]*m//g' e2e-server.log | grep -E '^[^ ]+ +ERROR '); then
  printf '%s\n' "$errors" | head -20 >&2
  echo "test.sh: the console logged $(printf '%s\n' "$errors" | wc -l) ERROR line(s) during the browser tests (end2end/e2e-server.log)" >&2
  exit 1
fi
