#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback, its URL in
# MIRRAGO_TEST_POSTGRES_URL (its data dir, binaries and port in MIRRAGO_TEST_PG{DATA,BIN,PORT},
# so a test can stop and restart it). Installs Debian's server when missing. If no server can
# be started, the command still runs (without the URL) unless CI is set: then that is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! PGBIN=$(find_bin); then
  if [ "$(id -u)" = "0" ]; then
    echo "with-postgres: installing Debian's postgresql" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  PGBIN=$(find_bin) || PGBIN=""
fi

as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

started=""
if [ -n "$PGBIN" ]; then
  PGDATA=$(mktemp -d /tmp/mirrago-pg.XXXXXX)
  [ "$(id -u)" = "0" ] && chown postgres "$PGDATA"
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if as_pg "$PGBIN/initdb" -D "$PGDATA" -U mirrago --auth=trust >/dev/null 2>&1 \
     && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1" \
          -l "$PGDATA/log" -w start >/dev/null 2>&1; then
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U mirrago mirrago_test >/dev/null 2>&1
    export MIRRAGO_TEST_POSTGRES_URL="postgresql+psycopg://mirrago@127.0.0.1:$PGPORT/mirrago_test"
    # How a test stops and restarts this server (tests/test_ledger_outages_cli.py): pg_ctl
    # with these, run as the postgres user when we are root.
    export MIRRAGO_TEST_PGDATA="$PGDATA" MIRRAGO_TEST_PGBIN="$PGBIN" MIRRAGO_TEST_PGPORT="$PGPORT"
    started=1
    echo "with-postgres: PostgreSQL on 127.0.0.1:$PGPORT" >&2
  fi
fi
if [ -z "$started" ] && [ -n "${CI:-}" ]; then
  echo "with-postgres: could not start PostgreSQL, and CI needs it" >&2
  exit 1
fi

"$@"
status=$?
if [ -n "$started" ]; then
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
  rm -rf "$PGDATA"
fi
exit $status
