#!/usr/bin/env bash
# PostgreSQL for the PostgreSQL store and its tests: Debian's `postgresql`
# package, and one cluster of the project's own (never the package's `main`
# cluster or its service), on loopback only, started with pg_ctl as the
# `postgres` user, so it works with or without systemd.
#
#   bash scripts/postgres.sh        # ensure_postgres
#   bash scripts/postgres.sh drop-test-databases
#   source scripts/postgres.sh      # only defines the functions
#
# Everything lives in $SWITCHYARD_PG_DIR (default $ROOT/.postgres, git-ignored,
# owned by `postgres`, 0700; not under the console's .switchyard, which the
# console narrows to its own user at start):
#   data/          the cluster (initdb: UTF8, C collation, C.UTF-8 ctype)
#   postgres.log   the server's log
#   run/           its Unix socket (peer authentication, for this script)
# The server listens on 127.0.0.1:$SWITCHYARD_PG_PORT (default 55432) with
# scram-sha-256 passwords. A role `switchyard` (LOGIN, CREATEDB: tests create
# a database each) owns a database `switchyard`; its password is generated
# once. The URL to use, password included, is written to
# $ROOT/.postgres.url (0600, git-ignored; only its masked form is printed):
#   postgres://switchyard:<password>@127.0.0.1:55432/switchyard
#
# Idempotent: a cluster that answers is left alone, an existing role and
# database are kept (the password is reset only if the URL's one no longer
# works). Needs root (or sudo): apt-get, and runuser to act as `postgres`.
set -euo pipefail

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

PG_DIR="${SWITCHYARD_PG_DIR:-$ROOT/.postgres}"
PG_PORT="${SWITCHYARD_PG_PORT:-55432}"
PG_URL_FILE="${SWITCHYARD_PG_URL_FILE:-$ROOT/.postgres.url}"
PG_ROLE="switchyard"
PG_DB="switchyard"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
PG_SOCKET="$PG_DIR/run"
# A Unix socket's path has at most 107 bytes: a deep checkout uses /tmp.
if [ $(( ${#PG_SOCKET} + 20 )) -gt 107 ]; then PG_SOCKET="/tmp/switchyard-postgres-$PG_PORT"; fi

# The server's programs (Debian keeps them off PATH): those of the version
# that made the cluster, else the newest installed.
_pg_bin() {
  local dir="" version
  version="$(as_root cat "$PG_DATA/PG_VERSION" 2>/dev/null || true)"
  [ -n "$version" ] && dir="/usr/lib/postgresql/$version/bin"
  [ -n "$dir" ] || dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] || { echo "no PostgreSQL server in ${dir:-/usr/lib/postgresql}" >&2; return 1; }
  printf '%s\n' "$dir"
}

# Runs a command as `postgres`, from / (its home may be unreadable here).
_pg_as_postgres() {
  (cd / && as_root runuser -u postgres -- "$@")
}

# psql as the superuser over the cluster's own socket (peer authentication).
_pg_psql() {
  _pg_as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET" -p "$PG_PORT" -d postgres "$@"
}

# The `postgres` user must be able to reach the data directory: a parent it
# cannot enter (a checkout under /root, say) gets search permission for that
# user alone, through an ACL.
_pg_reachable() {
  local dir="$1" parts=() d
  while [ "$dir" != "/" ]; do
    parts=("$dir" "${parts[@]}")
    dir="$(dirname "$dir")"
  done
  for d in "${parts[@]}"; do
    [ -d "$d" ] || break
    if ! _pg_as_postgres test -x "$d"; then
      ensure_apt acl
      log "setfacl -m u:postgres:x $d (so the postgres user can reach $PG_DIR)"
      as_root setfacl -m u:postgres:x "$d"
    fi
  done
}

_pg_running() {
  _pg_as_postgres "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1 \
    && _pg_as_postgres "$PG_BIN/pg_isready" -q -h "$PG_SOCKET" -p "$PG_PORT" -d postgres
}

# psql's -t -A output of one query (the first column of the first row).
_pg_value() {
  _pg_psql -t -A -c "$1"
}

_pg_url() {
  printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$PG_ROLE" "$1" "$PG_PORT" "$PG_DB"
}

# Whether $1 is the role's working password (a login over TCP, as the tests do).
_pg_password_works() {
  PGPASSWORD="$1" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -w -t -A \
    -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DB" -c 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
  ensure_apt postgresql
  PG_BIN="$(_pg_bin)"

  if [ ! -d "$PG_DIR" ]; then
    log "creating $PG_DIR (owner postgres)"
    as_root mkdir -p "$PG_DIR"
  fi
  if [ "$(stat -c '%U %a' "$PG_DIR")" != "postgres 700" ]; then
    as_root chown postgres:postgres "$PG_DIR"
    as_root chmod 700 "$PG_DIR"
  fi
  _pg_reachable "$PG_DIR"
  if ! _pg_as_postgres test -d "$PG_SOCKET"; then
    as_root mkdir -p -m 700 "$PG_SOCKET"
    as_root chown postgres:postgres "$PG_SOCKET"
  fi

  if ! _pg_as_postgres test -f "$PG_DATA/PG_VERSION"; then
    log "initdb $PG_DATA ($("$PG_BIN/postgres" --version))"
    _pg_as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres \
      --encoding=UTF8 --locale=C.UTF-8 --lc-collate=C \
      --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  fi

  if ! _pg_running; then
    # Address, port and socket are given here, not in postgresql.conf: this
    # script is what starts the cluster (a bare `pg_ctl start` gets port 5432).
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
    # pg_ctl runs the server in a session of its own: it outlives this script.
    _pg_as_postgres "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k '$PG_SOCKET'" || {
      echo "PostgreSQL did not start; last lines of $PG_LOG:" >&2
      as_root tail -n 20 "$PG_LOG" >&2 || true
      return 1
    }
  fi

  # The password: the one in the URL file, else a new one.
  local password="" want_password=""
  if [ -s "$PG_URL_FILE" ]; then
    password="$(sed -n 's|^postgres://[^:]*:\([^@]*\)@.*|\1|p' "$PG_URL_FILE" | head -n 1)"
  fi
  if [ -z "$password" ]; then
    password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    want_password=1
  fi

  if [ "$(_pg_value "SELECT count(*) FROM pg_roles WHERE rolname = '$PG_ROLE'")" = "0" ]; then
    log "creating role $PG_ROLE (LOGIN, CREATEDB)"
    _pg_psql -c "CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$password'"
    want_password=""
  elif [ "$(_pg_value "SELECT rolcreatedb AND rolcanlogin FROM pg_roles WHERE rolname = '$PG_ROLE'")" != "t" ]; then
    log "ALTER ROLE $PG_ROLE LOGIN CREATEDB"
    _pg_psql -c "ALTER ROLE $PG_ROLE LOGIN CREATEDB"
  fi
  if [ "$(_pg_value "SELECT count(*) FROM pg_database WHERE datname = '$PG_DB'")" = "0" ]; then
    log "creating database $PG_DB (owner $PG_ROLE)"
    _pg_psql -c "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
  fi
  if [ -n "$want_password" ] || ! _pg_password_works "$password"; then
    log "setting the password of role $PG_ROLE"
    _pg_psql -c "ALTER ROLE $PG_ROLE PASSWORD '$password'"
  fi

  local url
  url="$(_pg_url "$password")"
  if [ ! -s "$PG_URL_FILE" ] || [ "$(cat "$PG_URL_FILE")" != "$url" ]; then
    log "writing $PG_URL_FILE"
    mkdir -p "$(dirname "$PG_URL_FILE")"
    (umask 077; printf '%s\n' "$url" >"$PG_URL_FILE")
  fi
  # The password stays in the file: never on a terminal or in a CI log.
  log "PostgreSQL ready: $(_pg_url '***') (the URL with its password: $PG_URL_FILE)"
}

# Drops the databases tests made (engine/src/store/testing.rs names them
# switchyard_test_*), as their owner.
drop_test_databases() {
  local url
  url="$(cat "$PG_URL_FILE")"
  PG_BIN="$(_pg_bin)"
  local names
  names="$("$PG_BIN/psql" -X -q -t -A -d "$url" -c \
    "SELECT datname FROM pg_database WHERE datname LIKE 'switchyard\_test\_%'")"
  [ -n "$names" ] || return 0
  log "dropping $(printf '%s\n' "$names" | wc -l) test databases of earlier runs"
  local name
  for name in $names; do
    "$PG_BIN/psql" -X -q -d "$url" -c "DROP DATABASE IF EXISTS \"$name\"" >/dev/null
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    "") ensure_postgres ;;
    drop-test-databases) drop_test_databases ;;
    *) echo "usage: bash scripts/postgres.sh [drop-test-databases]" >&2; exit 2 ;;
  esac
fi
