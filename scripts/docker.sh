#!/usr/bin/env bash
# Docker for the docker runtime's tests: makes sure a Docker Engine runs and
# builds the demo service's images locally (no registry is reachable here, so
# nothing can be pulled: images are `FROM scratch` + the static demo binary).
#
#   bash scripts/docker.sh          # ensure_dockerd + build_demo_images
#   source scripts/docker.sh        # only defines the functions
#
# Idempotent: an engine that answers is left alone, images are rebuilt from
# Docker's layer cache in seconds. Needs root (or sudo) only to install
# docker.io and start dockerd.
#
# Versions → images: the demo's test releases are the versions below; each
# becomes `switchyard-demo:<tag>` where the tag is the version with `+` (semver
# build metadata, not allowed in a Docker tag) replaced by `-`, exactly as the
# engine's docker runtime maps them (engine/src/runtime/docker.rs). Every image
# also carries `ENV APP_VERSION=<version>` (with the `+`), so it knows which
# failure knobs it has even when started by hand.
set -euo pipefail

DOCKER_SH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_IMAGE_REPO="${DEMO_IMAGE_REPO:-switchyard-demo}"
DEMO_IMAGE_VERSIONS=(v1 v2 v3 "v2+unhealthy" "v2+crash" "v2+slow" "v2+errors")
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
MUSL_TARGET="x86_64-unknown-linux-musl"

_dk_log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

_dk_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The Docker tag for a release version (see the header).
demo_image_tag() {
  printf '%s\n' "${1//+/-}"
}

# Starts dockerd when `docker info` fails, installing Debian's docker.io first
# if needed; waits up to 60 s for it to answer.
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    _dk_log "apt-get install docker.io"
    _dk_root apt-get update -qq
    _dk_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  # A dockerd that is still starting answers soon; do not start a second one.
  if ! { command -v pgrep >/dev/null 2>&1 && pgrep -x dockerd >/dev/null 2>&1; }; then
    _dk_log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid + nohup: the daemon outlives this script and its terminal-less CI shell.
    _dk_root sh -c "setsid nohup dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &"
  fi
  local i
  for i in $(seq 1 120); do
    if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then
      _dk_log "dockerd is up ($(docker version --format '{{.Server.Version}}, API {{.Server.APIVersion}}'))"
      return 0
    fi
    sleep 0.5
  done
  echo "dockerd did not answer within 60 s; last lines of $DOCKERD_LOG:" >&2
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  return 1
}

# Builds the static demo binary and one image per test version.
build_demo_images() {
  if ! rustup target list --installed | grep -qx "$MUSL_TARGET"; then
    _dk_log "rustup target add $MUSL_TARGET"
    rustup target add "$MUSL_TARGET"
  fi
  _dk_log "cargo build --release --target $MUSL_TARGET -p demo"
  (cd "$DOCKER_SH_ROOT" && cargo build --quiet --release --target "$MUSL_TARGET" -p demo)
  local target_dir="${CARGO_TARGET_DIR:-$DOCKER_SH_ROOT/target}"
  case "$target_dir" in /*) ;; *) target_dir="$DOCKER_SH_ROOT/$target_dir" ;; esac
  local bin="$target_dir/$MUSL_TARGET/release/switchyard-demo"
  [ -x "$bin" ] || { echo "static demo binary missing at $bin" >&2; return 1; }

  local ctx
  ctx="$(mktemp -d)"
  cp "$bin" "$ctx/switchyard-demo"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY switchyard-demo /switchyard-demo
ARG APP_VERSION=dev
ENV APP_VERSION=${APP_VERSION} HOST=0.0.0.0 PORT=8080
EXPOSE 8080
ENTRYPOINT ["/switchyard-demo"]
EOF
  local version tag
  for version in "${DEMO_IMAGE_VERSIONS[@]}"; do
    tag="$DEMO_IMAGE_REPO:$(demo_image_tag "$version")"
    _dk_log "docker build $tag (APP_VERSION=$version)"
    # The legacy builder: BuildKit/buildx is not installed with Debian's docker.io.
    # Its deprecation notice is noise: show the output only when it fails.
    local out
    if ! out="$(DOCKER_BUILDKIT=0 docker build --quiet \
      --build-arg "APP_VERSION=$version" \
      --label "dev.switchyard.demo-version=$version" \
      -t "$tag" "$ctx" 2>&1)"; then
      printf '%s\n' "$out" >&2
      rm -rf "$ctx"
      return 1
    fi
  done
  rm -rf "$ctx"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_dockerd
  build_demo_images
fi
