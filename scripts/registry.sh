#!/usr/bin/env bash
# A Docker registry for the docker runtime's pull tests and the browser
# journey: Debian's `docker-registry` (distribution 2.8), on loopback, with
# its own configuration, storage and an htpasswd login — never the package's
# system service (which listens on every interface).
#
#   bash scripts/registry.sh        # ensure_registry + push_test_images
#   source scripts/registry.sh      # only defines the functions
#
# Everything lives in $SWITCHYARD_REGISTRY_DIR (default /tmp/switchyard-registry):
#   address   host:port it listens on (127.0.0.1:5055)
#   user      the login's user name
#   password  its password (0600; generated once)
# Test images: `<address>/shop:<tag>` for v1, v2, v3 and v2-unhealthy, made
# from the demo images of scripts/docker.sh, pushed with a throwaway Docker
# client configuration (the login is not left in ~/.docker) and then untagged
# locally, so a deploy has to pull them.
# Idempotent: a registry that answers is left alone; pushes are cheap
# (layers already in the registry are skipped).
set -euo pipefail

REGISTRY_SH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGISTRY_DIR="${SWITCHYARD_REGISTRY_DIR:-/tmp/switchyard-registry}"
REGISTRY_ADDR="${SWITCHYARD_REGISTRY_ADDR:-127.0.0.1:5055}"
REGISTRY_USER="switchyard-ci"
REGISTRY_IMAGES=(v1 v2 v3 "v2+unhealthy")

_rg_log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
_rg_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

_rg_answers() {
  # 401: it runs and asks for the login.
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY_ADDR/v2/" || true)" = "401" ]
}

ensure_registry() {
  if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
    _rg_log "apt-get install docker-registry apache2-utils"
    _rg_root apt-get update -qq
    _rg_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils >/dev/null
  fi
  mkdir -p "$REGISTRY_DIR/data"
  chmod 700 "$REGISTRY_DIR"
  printf '%s\n' "$REGISTRY_ADDR" >"$REGISTRY_DIR/address"
  printf '%s\n' "$REGISTRY_USER" >"$REGISTRY_DIR/user"
  if [ ! -s "$REGISTRY_DIR/password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$REGISTRY_DIR/password")
  fi
  htpasswd -Bbc "$REGISTRY_DIR/htpasswd" "$REGISTRY_USER" "$(cat "$REGISTRY_DIR/password")" 2>/dev/null
  if _rg_answers; then
    return 0
  fi
  cat >"$REGISTRY_DIR/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
  secret: $(head -c 18 /dev/urandom | base64 | tr -d '/+=')
auth:
  htpasswd:
    realm: switchyard-test-registry
    path: $REGISTRY_DIR/htpasswd
YAML
  _rg_log "starting docker-registry on $REGISTRY_ADDR (log: $REGISTRY_DIR/registry.log)"
  setsid nohup docker-registry serve "$REGISTRY_DIR/config.yml" \
    >>"$REGISTRY_DIR/registry.log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do
    if _rg_answers; then return 0; fi
    sleep 0.5
  done
  echo "docker-registry did not answer on $REGISTRY_ADDR; last lines of its log:" >&2
  tail -n 20 "$REGISTRY_DIR/registry.log" >&2 || true
  return 1
}

# Pushes the test images (needs scripts/docker.sh's demo images).
push_test_images() {
  local cfg version tag remote
  cfg="$(mktemp -d)"
  DOCKER_CONFIG="$cfg" docker login -u "$REGISTRY_USER" --password-stdin "$REGISTRY_ADDR" \
    <"$REGISTRY_DIR/password" >/dev/null 2>&1
  for version in "${REGISTRY_IMAGES[@]}"; do
    tag="${version//+/-}"
    remote="$REGISTRY_ADDR/shop:$tag"
    docker tag "switchyard-demo:$tag" "$remote"
    _rg_log "docker push $remote"
    DOCKER_CONFIG="$cfg" docker push --quiet "$remote" >/dev/null
    # Untagged here: a deploy of it has to pull.
    docker rmi "$remote" >/dev/null
  done
  rm -rf "$cfg"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_registry
  push_test_images
fi
