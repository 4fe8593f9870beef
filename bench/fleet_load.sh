#!/usr/bin/env bash
# Fleet ingest load: how many host reports per second one `mftplus cloud` (release build) takes,
# at what latency and memory, on SQLite and on PostgreSQL; then how long the liveness pass takes
# over a large fleet.
#
# Per backend: `mftplus-bench seed` writes HOSTS hosts (3 guests each) into a fresh database
# through the Store (not through HTTP enrollment: that verifies an Argon2id password per host
# and would measure Argon2), the cloud starts on 127.0.0.1 pinned to CPU 1, and
# `mftplus-bench load` (closed loop, CONNECTIONS keep-alive connections, ~4 KiB reports,
# warm-up excluded) runs pinned to CPU 0 for DURATION seconds. The cloud's peak RSS is VmHWM
# from /proc/PID/status at the end of the run. PostgreSQL runs only when MFTPLUS_TEST_PG_URL
# (or PG_URL) is set; a fresh database is created on that server and dropped afterwards. Its
# server processes are not pinned: they share both CPUs with the cloud and the generator.
#
# Usage: bench/fleet_load.sh [DURATION]          (default 20 s)
#        SKIP_BUILD=1 MFTPLUS_BIN=/tmp/mftplus.b LIVENESS_HOSTS=1000 bench/fleet_load.sh
#        HOSTS=10000 CONNECTIONS=64 LIVENESS_HOSTS=100000 bench/fleet_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-${DURATION:-20}}"
HOSTS="${HOSTS:-10000}"
CONNECTIONS="${CONNECTIONS:-64}"
REPORT_BYTES="${REPORT_BYTES:-4096}"
LIVENESS_HOSTS="${LIVENESS_HOSTS:-100000}"
PG_URL="${MFTPLUS_TEST_PG_URL:-${PG_URL:-}}"

for tool in taskset curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "fleet_load.sh needs $tool" >&2; exit 1; }
done
if [ -n "$PG_URL" ]; then
  command -v psql >/dev/null || { echo "fleet_load.sh needs psql for PostgreSQL" >&2; exit 1; }
fi

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building release binaries"
  cargo build --release -q -p mftplus -p mftplus-bench
fi
# MFTPLUS_BIN runs another build of the cloud (an A/B of a change) against the same generator.
MFTPLUS="${MFTPLUS_BIN:-$PWD/target/release/mftplus}"
BENCH="$PWD/target/release/mftplus-bench"

work="$(mktemp -d "${TMPDIR:-/tmp}/mftplus-fleet-bench.XXXXXX")"
chmod 700 "$work"
cloud_pid=""
pg_databases=()
stop_cloud() {
  if [ -n "$cloud_pid" ]; then
    kill -TERM "$cloud_pid" 2>/dev/null || true
    # Bounded: a cloud that does not drain in 15 s is killed.
    for _ in $(seq 1 150); do kill -0 "$cloud_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$cloud_pid" 2>/dev/null || true
    wait "$cloud_pid" 2>/dev/null || true
    cloud_pid=""
  fi
}
cleanup() {
  stop_cloud
  for db in "${pg_databases[@]}"; do
    timeout 30 psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The server URL with another database name (the path), query string kept.
pg_url_for() {
  python3 - "$PG_URL" "$1" <<'PY'
import sys, urllib.parse as u
url = u.urlsplit(sys.argv[1])
print(u.urlunsplit((url.scheme, url.netloc, "/" + sys.argv[2], url.query, url.fragment)))
PY
}

# Sets `fresh_db_url`; not a `$(...)` helper, so the name reaches `pg_databases` (a command
# substitution's subshell would add it to a copy and leave the database behind).
fresh_pg_database() {
  local db="mftplus_fleet_bench_$(date +%s)_$RANDOM"
  pg_databases+=("$db")
  timeout 30 psql "$PG_URL" -q -c "CREATE DATABASE \"$db\"" >/dev/null
  fresh_db_url="$(pg_url_for "$db")"
}

printf 'mode: development\n' > "$work/server.yaml"

# run_load NAME DATABASE_URL: seed, start the cloud, load it, record its peak RSS, stop it.
run_load() {
  local name="$1" url="$2"
  echo "[$name] seeding $HOSTS hosts"
  timeout 900 "$BENCH" seed --database-url "$url" --hosts "$HOSTS" --out "$work/$name.keys" \
    > "$work/$name.seed.json"
  local port
  port="$(free_port)"
  mkdir -p "$work/blobs-$name"
  DATABASE_URL="$url" \
  JWT_SECRET="fleet-bench-secret-0123456789-0123456789-abcdef" \
  MFTPLUS__SERVER__LISTEN="127.0.0.1:$port" \
  MFTPLUS__SERVER__METRICS_LISTEN="127.0.0.1:0" \
  MFTPLUS__RATE_LIMIT__ENABLED=false \
  MFTPLUS__TRANSFERS__BLOB_PATH="$work/blobs-$name" \
  RUST_LOG=warn \
    taskset -c 1 "$MFTPLUS" cloud --config "$work/server.yaml" > "$work/$name.cloud.log" 2>&1 &
  cloud_pid=$!
  local ready=no
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then ready=yes; break; fi
    kill -0 "$cloud_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ready" != yes ]; then
    echo "[$name] the cloud did not become healthy:" >&2
    cat "$work/$name.cloud.log" >&2
    exit 1
  fi
  echo "[$name] load: ${DURATION}s, $CONNECTIONS connections, $REPORT_BYTES-byte reports"
  timeout $((DURATION + 120)) taskset -c 0 "$BENCH" load --url "http://127.0.0.1:$port" \
    --keys "$work/$name.keys" --duration "$DURATION" --connections "$CONNECTIONS" \
    --report-bytes "$REPORT_BYTES" > "$work/$name.load.json"
  awk '/VmHWM/ {print $2}' "/proc/$cloud_pid/status" > "$work/$name.hwm"
  stop_cloud
}

run_liveness() {
  local name="$1" url="$2"
  echo "[$name] liveness over $LIVENESS_HOSTS hosts"
  timeout 1800 "$BENCH" liveness --database-url "$url" --hosts "$LIVENESS_HOSTS" \
    > "$work/$name.liveness.json"
}

run_load sqlite "sqlite://$work/load.db"
if [ -n "$PG_URL" ]; then
  fresh_pg_database
  run_load postgres "$fresh_db_url"
else
  echo "[postgres] skipped: set MFTPLUS_TEST_PG_URL (or PG_URL) to a server where this role may create databases"
fi
run_liveness sqlite "sqlite://$work/liveness.db"
if [ -n "$PG_URL" ]; then
  fresh_pg_database
  run_liveness postgres "$fresh_db_url"
fi

python3 - "$work" "$HOSTS" "$LIVENESS_HOSTS" <<'PY'
import json, os, sys
work, hosts, live_hosts = sys.argv[1], sys.argv[2], sys.argv[3]
def load(path):
    p = os.path.join(work, path)
    return json.load(open(p)) if os.path.exists(p) else None
print()
print(f"fleet ingest, {hosts} hosts; cloud on CPU 1, generator on CPU 0; {os.cpu_count()} CPUs")
print(f"{'backend':10} {'reports/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>8} {'cloud RSS MiB':>14} {'gen CPU':>8} {'seed writes/s':>14}")
for name in ("sqlite", "postgres"):
    run, seed = load(f"{name}.load.json"), load(f"{name}.seed.json")
    if run is None:
        continue
    hwm = open(os.path.join(work, f"{name}.hwm")).read().strip()
    errors = sum(run["errors"].values())
    cpu = run["generator_cpu_percent"]
    print(f"{name:10} {run['reports_per_s']:>10.0f} {run['p50_ms']:>8.2f} {run['p90_ms']:>8.2f} {run['p99_ms']:>8.2f} {run['max_ms']:>8.2f} {errors:>8} {int(hwm) / 1024:>14.0f} {('%.0f%%' % cpu) if cpu is not None else '?':>8} {seed['writes_per_s']:>14.0f}")
    if run["errors"]:
        print(f"{'':10} errors by status: {run['errors']}")
print()
print(f"liveness pass over {live_hosts} hosts")
print(f"{'backend':10} {'all → stale ms':>15} {'no change ms':>13} {'transitions':>12}")
for name in ("sqlite", "postgres"):
    live = load(f"{name}.liveness.json")
    if live is None:
        continue
    print(f"{name:10} {live['first_pass_ms']:>15.0f} {live['second_pass_ms']:>13.0f} {live['first_transitions']:>6}/{live['second_transitions']}")
    # Where each pass spent its time, statement by statement, as the store measured it.
    for which in ("first", "second"):
        for statement in live.get(f"{which}_pass_statements", []):
            print(f"{'':10}   {which:6} {statement['ms']:>9.1f} ms {statement['count']:>3}x {statement['sql'][:70]}")
PY
