#!/usr/bin/env bash
# Edge hub offline queue: accepted writes per second while the cloud is unreachable, in one run
# on one machine:
#   (1) over HTTP: HOSTS seeded hosts report through `mftplus hub` once while the cloud is up
#       (that fills the hub's auth cache), then the cloud is killed (CLOUD_API_URL now points at
#       a closed loopback port) and `mftplus-bench load` posts REPORT_BYTES host reports on
#       CONNECTIONS keep-alive connections for DURATION seconds, ROUNDS times. Every one is
#       authenticated from the cache, sealed, committed to hub.db and answered 200 with
#       `x-hub-offline: queued`. The hub has CPU 1 to itself; the generator has CPU 0.
#   (2) the queue without HTTP: `mftplus-bench hub-enqueue` pushes the same reports through the
#       hub's `queue::Enqueuer` (seal, group-commit writer) from CONNECTIONS producers, on CPU 1.
#   (3) the peer: the system's sqlite3 inserting rows of the same shape into a table of the same
#       schema, 16 KiB pages, WAL + synchronous=NORMAL as hub.db, on CPU 1: 512 rows per transaction (the
#       storage ceiling the group commit aims for) and one row per transaction (a naive queue).
# Everything listens on 127.0.0.1 and is stopped by the EXIT trap.
#
# Usage: bench/hub_queue.sh [seconds per run] [connections] [rounds]
#        HOSTS=1000 REPORT_BYTES=4096 bench/hub_queue.sh 10 64 3
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-64}"
ROUNDS="${3:-3}"
HOSTS="${HOSTS:-1000}"
REPORT_BYTES="${REPORT_BYTES:-4096}"

for tool in taskset curl python3 timeout sqlite3; do
  command -v "$tool" >/dev/null || { echo "hub_queue.sh needs $tool" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then # SKIP_BUILD=1: use the release binaries already built
  echo "building release binaries"
  cargo build --release -q --locked -p mftplus -p mftplus-bench
fi
MFTPLUS="$PWD/target/release/mftplus"
BENCH="$PWD/target/release/mftplus-bench"

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mftplus-hub-queue.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap 'cleanup' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # url, tries of 0.1 s
  for _ in $(seq 1 "$2"); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing answered at $1" >&2; return 1
}

# --- the cloud, with HOSTS hosts ---------------------------------------------------------------
mkdir -p "$work/cloud" && chmod 700 "$work/cloud"
cat > "$work/cloud/server.yaml" <<YAML
mode: development
rate_limit:
  per_credential_per_minute: 100000000
  per_address_per_minute: 100000000
YAML
cloud_port="$(free_port)"
RUST_LOG=warn timeout 3600 taskset -c 1 "$MFTPLUS" dev --data-dir "$work/cloud" --listen "127.0.0.1:$cloud_port" \
  --metrics-listen 127.0.0.1:0 >"$work/cloud.out" 2>"$work/cloud.err" &
cloud_timeout_pid=$!
pids+=("$cloud_timeout_pid")
for _ in $(seq 1 300); do grep -q "API key:" "$work/cloud.out" 2>/dev/null && break; sleep 0.1; done
admin_key="$(awk '/API key:/ {print $3}' "$work/cloud.out")"
[ -n "$admin_key" ] || { echo "the cloud did not start:"; cat "$work/cloud.err"; exit 1; }
cloud="http://127.0.0.1:$cloud_port"
echo "seeding $HOSTS hosts"
timeout 900 "$BENCH" seed --database-url "sqlite://$work/cloud/mftplus.db" --hosts "$HOSTS" \
  --out "$work/hosts.keys" >/dev/null

# --- the hub ------------------------------------------------------------------------------------
deploy_key="$(curl -fsS -H "X-API-Key: $admin_key" -H 'Content-Type: application/json' \
  -d '{"label":"bench"}' "$cloud/api/v1/hubs/deploy-keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
hub_port="$(free_port)"
mkdir -p "$work/hub-data"
CLOUD_API_URL="$cloud/api" HUB_REGISTRATION_KEY="$deploy_key" HUB_PORT="$hub_port" HUB_LISTEN_ADDR=127.0.0.1 \
  HUB_DATA_DIR="$work/hub-data" HUB_QUEUE_MAX=100000000 DIAGNOSE_DISK_PATH="$work" RUST_LOG=error \
  timeout 3600 taskset -c 1 "$MFTPLUS" hub >"$work/hub.out" 2>"$work/hub.err" &
pids+=($!)
hub="http://127.0.0.1:$hub_port"
wait_for "$hub/health" 100
for _ in $(seq 1 100); do
  curl -fsS "$hub/hub/diagnose" | grep -q '"registered":true' && break; sleep 0.1
done
curl -fsS "$hub/hub/diagnose" | grep -q '"registered":true' || { echo "the hub did not register"; cat "$work/hub.err"; exit 1; }

# Online: every host reports through the hub at least once, so its key is in the auth cache.
echo "online: every host reports once through the hub"
timeout 300 taskset -c 0 "$BENCH" load --url "$hub" --keys "$work/hosts.keys" --duration 3 --warmup 0 \
  --connections "$CONNECTIONS" --report-bytes "$REPORT_BYTES" >"$work/online.json"
python3 - "$work/online.json" "$HOSTS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ok"] >= int(sys.argv[2]), f"only {s['ok']} online reports for {sys.argv[2]} hosts: {s}"
PY

# The link goes: the cloud's port is closed from now on.
kill "$(pgrep -P "$cloud_timeout_pid")" 2>/dev/null || true
wait "$cloud_timeout_pid" 2>/dev/null || true
if curl -fsS -o /dev/null "$cloud/health" 2>/dev/null; then echo "the cloud still answers"; exit 1; fi

# --- (1) accepted writes over HTTP ---------------------------------------------------------------
echo "(1) offline: ${DURATION}s x $ROUNDS rounds, $CONNECTIONS connections, $REPORT_BYTES-byte reports"
: > "$work/http.results"
for round in $(seq 1 "$ROUNDS"); do
  timeout $((DURATION + 120)) taskset -c 0 "$BENCH" load --url "$hub" --keys "$work/hosts.keys" \
    --duration "$DURATION" --warmup 2 --connections "$CONNECTIONS" --report-bytes "$REPORT_BYTES" \
    >> "$work/http.results"
done
queued="$(curl -fsS "$hub/hub/offline")"

# --- (2) the queue's writer alone ------------------------------------------------------------------
echo "(2) Enqueuer alone: ${DURATION}s x $ROUNDS rounds, $CONNECTIONS producers"
: > "$work/enqueue.results"
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$work/enqueue-data" && mkdir -p "$work/enqueue-data"
  timeout $((DURATION + 120)) taskset -c 1 "$BENCH" hub-enqueue --data-dir "$work/enqueue-data" \
    --tasks "$CONNECTIONS" --duration "$DURATION" --warmup 2 --report-bytes "$REPORT_BYTES" \
    >> "$work/enqueue.results"
done

# --- (3) the peer: plain SQLite WAL inserts ---------------------------------------------------------
echo "(3) sqlite3 $(sqlite3 --version | awk '{print $1}'): batches of 512 rows, and one row per transaction"
python3 - "$work" "$REPORT_BYTES" <<'PY'
import sys
work, size = sys.argv[1], int(sys.argv[2])
schema = """PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, route TEXT NOT NULL,
  credential BLOB NOT NULL, idempotency_key TEXT NOT NULL, body BLOB NOT NULL,
  enqueued_at_ms INTEGER NOT NULL);
"""
row = (f"('/api/v1/host-report', randomblob(88), hex(randomblob(16)), randomblob({size}), "
       "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))")
with open(f"{work}/batched.sql", "w") as f:
    f.write(schema)
    for _ in range(400):  # 204,800 rows
        f.write("BEGIN;\nWITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 512) "
                "INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms) "
                f"SELECT {row[1:-1]} FROM n;\nCOMMIT;\n")
with open(f"{work}/single.sql", "w") as f:
    f.write(schema)
    for _ in range(20000):
        f.write(f"INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms) VALUES {row};\n")
PY
: > "$work/sqlite.results"
for round in $(seq 1 "$ROUNDS"); do
  for kind in batched single; do
    rm -f "$work/peer.db" "$work/peer.db-wal" "$work/peer.db-shm"
    t0="$(date +%s.%N)"
    taskset -c 1 sqlite3 "$work/peer.db" < "$work/$kind.sql" >/dev/null
    t1="$(date +%s.%N)"
    rows="$(sqlite3 "$work/peer.db" 'SELECT COUNT(*) FROM queue')"
    python3 -c "print('$kind', $rows / ($t1 - $t0))" >> "$work/sqlite.results"
  done
done

# --- the table -----------------------------------------------------------------------------------
echo
echo "$(nproc) CPUs; $(uname -r); $HOSTS hosts; $REPORT_BYTES-byte reports; hub queue after the runs: $queued"
python3 - "$work" <<'PY'
import json, statistics as st, sys
d = sys.argv[1]
http = [json.loads(l) for l in open(f"{d}/http.results")]
enq = [json.loads(l) for l in open(f"{d}/enqueue.results")]
peer = {}
for line in open(f"{d}/sqlite.results"):
    kind, rate = line.split()
    peer.setdefault(kind, []).append(float(rate))
med = lambda xs: st.median(xs)
runs = lambda xs: " ".join(f"{x:.0f}" for x in xs)
print(f"{'what':44} {'writes/s':>9} {'p50 ms':>7} {'p99 ms':>7}  runs")
h = [r["reports_per_s"] for r in http]
errors = {}
for r in http:
    for k, v in r["errors"].items():
        errors[k] = errors.get(k, 0) + v
print(f"{'hub over HTTP, cloud down (accepted, 200)':44} {med(h):9.0f} {med(r['p50_ms'] for r in http):7.2f} "
      f"{med(r['p99_ms'] for r in http):7.2f}  {runs(h)}  (generator CPU {med(r['generator_cpu_percent'] for r in http):.0f}%, errors {errors or 0})")
e = [r["writes_per_s"] for r in enq]
print(f"{'Enqueuer alone (seal + group commit)':44} {med(e):9.0f} {med(r['p50_ms'] for r in enq):7.2f} "
      f"{med(r['p99_ms'] for r in enq):7.2f}  {runs(e)}")
print(f"{'sqlite3, 512 rows per transaction':44} {med(peer['batched']):9.0f} {'-':>7} {'-':>7}  {runs(peer['batched'])}")
print(f"{'sqlite3, 1 row per transaction':44} {med(peer['single']):9.0f} {'-':>7} {'-':>7}  {runs(peer['single'])}")
ok = "PASS" if med(h) >= 20000 else "FAIL"
print(f"hub over HTTP: {med(h) / 200:.0f}x the seed's ~200 writes/s (target >= 20,000/s: {ok}); "
      f"{med(h) / med(e):.2f}x the Enqueuer alone; {med(h) / med(peer['batched']):.2f}x sqlite3 batched")
PY
