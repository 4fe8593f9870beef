#!/usr/bin/env bash
# Brings up the local PostgreSQL 15 cluster used by the store tests and makes sure the
# `mftplus` role exists. Idempotent: safe to run on every CI start and by hand.
# Prints the `export MFTPLUS_TEST_PG_URL=...` line to eval or copy.
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
ROLE="mftplus"
PASSWORD="mftplus"

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "pg-test-setup: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
fi

# Column 4 of pg_lsclusters is the status: online/down.
status="$(pg_lsclusters --no-header | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c { print $4 }')"
if [ -z "$status" ]; then
    echo "pg-test-setup: no cluster $PG_VERSION/$PG_CLUSTER (pg_createcluster $PG_VERSION $PG_CLUSTER)" >&2
    exit 1
fi
if [ "$status" != "online" ]; then
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start >&2
fi

# Bounded wait: 30 tries, one second apart.
for _ in $(seq 1 30); do
    if pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
        break
    fi
    sleep 1
done
if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "pg-test-setup: PostgreSQL did not become ready on 127.0.0.1:$PG_PORT" >&2
    exit 1
fi

as_postgres() {
    if [ "$(id -un)" = "postgres" ]; then
        "$@"
    else
        su postgres -c "$(printf '%q ' "$@")"
    fi
}

exists="$(as_postgres psql -p "$PG_PORT" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")"
if [ "$exists" != "1" ]; then
    as_postgres psql -p "$PG_PORT" -q -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD' CREATEDB" >&2
fi

echo "export MFTPLUS_TEST_PG_URL=postgres://$ROLE:$PASSWORD@127.0.0.1:$PG_PORT/postgres"
