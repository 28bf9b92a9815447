#!/usr/bin/env bash
# Installs what building and testing Switchyard needs on a fresh Debian machine,
# skipping whatever is already there. Sourced by quickstart.sh and test.sh;
# safe to run on its own: `scripts/setup.sh [--with-browser]`.
#
# Everything comes from the registries these machines reach: Debian packages,
# crates.io, npm. No GitHub downloads (cargo-leptos runs with `no_downloads` and
# finds wasm-bindgen and wasm-opt on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
CARGO_LEPTOS_VERSION="0.3.10"
BINARYEN_VERSION="132.0.0"
export PATH="$HOME/.cargo/bin:$TOOLS/binaryen/node_modules/.bin:$PATH"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_rust_targets() {
  if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    log "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_cargo_leptos() {
  if cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then return 0; fi
  log "cargo install cargo-leptos@$CARGO_LEPTOS_VERSION (takes ~13 minutes on 2 cores)"
  cargo install "cargo-leptos@$CARGO_LEPTOS_VERSION" --locked --features no_downloads
}

# The CLI must match the wasm-bindgen crate in Cargo.lock exactly.
ensure_wasm_bindgen() {
  local want
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
  if wasm-bindgen --version 2>/dev/null | grep -q " $want\$"; then return 0; fi
  log "cargo install wasm-bindgen-cli@$want"
  # Its lock file pins a webpki-roots release the registry no longer serves;
  # fall back to fresh resolution when the locked install cannot resolve.
  cargo install wasm-bindgen-cli --version "$want" --locked \
    || cargo install wasm-bindgen-cli --version "$want"
}

# npm's binaryen: Debian's wasm-opt 108 produces WASM that fails to hydrate.
ensure_wasm_opt() {
  if [ -x "$TOOLS/binaryen/node_modules/.bin/wasm-opt" ]; then return 0; fi
  log "npm install binaryen@$BINARYEN_VERSION into .tools/binaryen"
  mkdir -p "$TOOLS/binaryen"
  (cd "$TOOLS/binaryen" && npm install --silent --no-audit --no-fund --prefix . "binaryen@$BINARYEN_VERSION" >/dev/null)
}

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return 0
  ensure_apt nodejs npm
}

ensure_playwright() {
  ensure_apt chromium
  ensure_node
  local lock="$ROOT/end2end/package-lock.json" stamp="$ROOT/end2end/node_modules/.installed-lock"
  if [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then return 0; fi
  log "npm ci in end2end/ (Playwright without its browser download; Debian's Chromium is used)"
  (cd "$ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  cp "$lock" "$stamp"
}

ensure_build_tools() {
  ensure_apt pkg-config build-essential brotli
  ensure_node
  ensure_rust_targets
  ensure_cargo_leptos
  ensure_wasm_bindgen
  ensure_wasm_opt
}

# Brotli and gzip copies of the front end's files, made once at build time
# at the highest levels (too slow per request) and served by the console to
# browsers that accept them. Old builds' files (other hashes) are removed.
precompress_site() {
  local pkg="$ROOT/target/site/pkg" hashes="$ROOT/target/release/hash.txt" keep=() f
  [ -d "$pkg" ] || return 0
  if [ -f "$hashes" ]; then
    while IFS=': ' read -r kind hash; do
      [ -n "$hash" ] && keep+=("switchyard.$hash.$kind")
    done < "$hashes"
    for f in "$pkg"/switchyard.*.*; do
      local base="${f##*/}" current=""
      base="${base%.br}"; base="${base%.gz}"
      for k in "${keep[@]}"; do [ "$base" = "$k" ] && current=1; done
      [ -n "$current" ] || rm -f "$f"
    done
  fi
  log "precompressing $pkg (brotli -q 11, gzip -9)"
  for f in "$pkg"/*.wasm "$pkg"/*.js "$pkg"/*.css; do
    [ -f "$f" ] || continue
    brotli -f -q 11 -k -o "$f.br" "$f"
    gzip -f -9 -k -n "$f"
  done
}

# Release build of the console (server + WASM front end) and its sibling
# binaries. switchyard-proxy gets the whole-program optimisation of the proxy-release
# profile (Cargo.toml). SWITCHYARD_PROXY_PROFILE=release builds it with the
# console instead: the same code without the second compilation of its
# dependencies and the LTO link, for the test command, whose browser tests
# measure nothing.
build_release() {
  local proxy_profile="${SWITCHYARD_PROXY_PROFILE:-proxy-release}"
  log "cargo leptos build --release"
  (cd "$ROOT" && cargo leptos build --release)
  precompress_site
  if [ "$proxy_profile" = "release" ]; then
    log "cargo build --release -p demo -p proxy"
    (cd "$ROOT" && cargo build --release -p demo -p proxy)
  else
    log "cargo build --release -p demo; cargo build --profile $proxy_profile -p proxy"
    (cd "$ROOT" && cargo build --release -p demo && cargo build --profile "$proxy_profile" -p proxy)
    # The console starts the switchyard-proxy next to its own binary.
    install -m 0755 "$ROOT/target/$proxy_profile/switchyard-proxy" "$ROOT/target/release/switchyard-proxy"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_build_tools
  if [ "${1:-}" = "--with-browser" ]; then ensure_playwright; fi
  log "setup complete"
fi
