#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the tests and print its URL:
#
#   export OPTICAL_MEMORY_TEST_POSTGRES="$(bash scripts/test-postgres.sh)"
#
# Installs the Debian `postgresql` package when no server binaries are found (needs root), creates a fresh
# data directory under /tmp (trust authentication, listening on 127.0.0.1 only), and starts the server.
# Stop it with: pg_ctl -D <the data directory printed on stderr> stop
set -euo pipefail

PORT="${OPTICAL_MEMORY_TEST_POSTGRES_PORT:-54329}"
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
    apt-get update -qq > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
DATA="$(mktemp -d /tmp/optical-memory-pg.XXXXXX)"
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; fi
as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust --no-sync > /dev/null
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=200" start > /dev/null
echo "PostgreSQL test server: data in $DATA, log in $DATA/server.log" >&2
echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
