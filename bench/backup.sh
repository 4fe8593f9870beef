#!/usr/bin/env bash
# Backup and restore of a large SQLite deployment (docs/benchmarks.md, "Backup and restore"),
# with release binaries, each figure beside a peer in the same run:
#
# (a) time and MiB/s of `mftplus admin backup --nice 0` of an idle SIZE_MIB database, beside
#     `sqlite3 <db> ".backup <out>"` and `cp` + `sync <file>` (the disk's own pace), and of
#     `mftplus admin restore` (hash checks, copy, migrations, audit chain, counts) beside
#     `cp` + `sync`; all at the default priority; ROUNDS alternating rounds, medians;
# (b) the write rate clients see — `mftplus-bench load`, closed-loop host reports over HTTP
#     (CONNECTIONS connections, REPORT_BYTES-byte reports) against `mftplus cloud` pinned to
#     CPU 1, the generator pinned to CPU 0 — with nothing else running, with `mftplus admin
#     backup` running back to back for the whole run (as shipped: nice 10), the same with
#     `--nice 0`, and `sqlite3 .backup` back to back under `nice -n 10`; ROUNDS alternating
#     rounds of DURATION seconds, medians and ratios to the idle rate. Rows the load added are
#     deleted after each run so the database stays at its size.
#
# The database: `mftplus cloud init` (schema and the first administrator), `mftplus-bench seed`
# (HOSTS hosts and their keys, for the load), then ~4 KiB host_reports rows inserted by the
# sqlite3 CLI, 20,000 per transaction (a recursive CTE with randomblob padding), until the file
# reaches SIZE_MIB (about a minute for 1 GiB here).
#
# Usage: bench/backup.sh                        (SIZE_MIB=1024 ROUNDS=3 DURATION=20)
#        SIZE_MIB=256 ROUNDS=2 DURATION=10 SKIP_BUILD=1 bench/backup.sh
# Needs: sqlite3 (Debian package sqlite3), taskset, curl, python3, timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-1024}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-20}"
HOSTS="${HOSTS:-1000}"
CONNECTIONS="${CONNECTIONS:-32}"
REPORT_BYTES="${REPORT_BYTES:-1024}"

for tool in sqlite3 taskset curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "backup.sh needs $tool" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building release binaries"
  cargo build --release -q -p mftplus -p mftplus-bench
fi
MFTPLUS="${MFTPLUS_BIN:-$PWD/target/release/mftplus}"
BENCH="${BENCH_BIN:-$PWD/target/release/mftplus-bench}"

work="$(mktemp -d "${TMPDIR:-/tmp}/mftplus-backup-bench.XXXXXX")"
chmod 700 "$work"
cloud_pid=""
loop_pid=""
stop_loop() {
  if [ -n "$loop_pid" ]; then
    touch "$work/stop"
    # A `sqlite3 .backup` under write load may never finish (it restarts when another
    # connection writes between its steps): the loop's current child is ended too.
    pkill -TERM -P "$loop_pid" 2>/dev/null || true
    wait "$loop_pid" 2>/dev/null || true
    loop_pid=""
    rm -f "$work/stop"
  fi
}
stop_cloud() {
  if [ -n "$cloud_pid" ]; then
    kill -TERM "$cloud_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$cloud_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$cloud_pid" 2>/dev/null || true
    wait "$cloud_pid" 2>/dev/null || true
    cloud_pid=""
  fi
}
cleanup() { stop_loop; stop_cloud; rm -rf "$work"; }
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

export JWT_SECRET="backup-bench-secret-0123456789-0123456789-abcdef"
export RUST_LOG=warn
db="$work/cloud.db"
export DATABASE_URL="sqlite://$db"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$work/server.yaml" <<EOF
server:
  listen: 127.0.0.1:$port
  metrics_listen: 127.0.0.1:0
rate_limit:
  enabled: false
transfers:
  blob_path: $work/blobs
certificates:
  authority:
    dir: $work/ca
EOF
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now() { echo "$EPOCHREALTIME"; }
size_mib() { python3 -c "import os,sys; print(os.path.getsize(sys.argv[1]) / 1048576)" "$1"; }

echo "load average at start: $(loadavg)" | tee "$work/loadavg"
printf 'a sufficiently long password\n' > "$work/password"
chmod 600 "$work/password"
"$MFTPLUS" cloud init --config "$work/server.yaml" --admin-email admin@example.com \
  --password-file "$work/password" > /dev/null
"$BENCH" seed --database-url "$DATABASE_URL" --hosts "$HOSTS" --out "$work/keys" > /dev/null
echo "filling $db to $SIZE_MIB MiB"
fill_started="$(now)"
while python3 -c "import os,sys; sys.exit(0 if os.path.getsize(sys.argv[1]) < int(sys.argv[2]) * 1048576 else 1)" "$db" "$SIZE_MIB"; do
  sqlite3 "$db" "PRAGMA busy_timeout = 10000; BEGIN;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
    INSERT INTO host_reports (host_id, customer_id, received_at_ms, applied_generation,
        cpu_percent, memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes,
        guests_total, guests_running, report_json)
    SELECT h.id, h.customer_id, CAST(strftime('%s', 'now') AS INTEGER) * 1000 - n.i, 1, 12.5,
        1073741824, 4294967296, 10737418240, 107374182400, 3, 3,
        '{\"pad\":\"' || hex(randomblob(1900)) || '\"}'
    FROM n, (SELECT id, customer_id FROM hosts ORDER BY id LIMIT 1) AS h;
    COMMIT;" > /dev/null
done
fill_seconds="$(python3 -c "print($(now) - $fill_started)")"
rows="$(sqlite3 "$db" 'SELECT count(*) FROM host_reports')"
echo "filled: $(size_mib "$db") MiB, $rows host_reports rows, in ${fill_seconds}s"
echo "$(size_mib "$db") $rows $fill_seconds" > "$work/fill"

# --- (a) backup and restore of the idle database -------------------------------------------
: > "$work/times"
timed() { # NAME ROUND COMMAND...: appends "NAME ROUND seconds"
  local name="$1" round="$2"; shift 2
  local started; started="$(now)"
  "$@" > "$work/last.out" 2>&1 || { echo "$name failed:" >&2; cat "$work/last.out" >&2; exit 1; }
  echo "$name $round $(python3 -c "print($(now) - $started)")" >> "$work/times"
}
ours_backup() { "$MFTPLUS" admin backup --config "$work/server.yaml" --out "$work/a/ours" --nice 0; }
peer_backup() { sqlite3 "$db" ".backup '$work/a/peer.db'"; }
cp_backup() { cp "$db" "$work/a/cp.db" && sync "$work/a/cp.db"; }
mkdir -p "$work/a"
"$MFTPLUS" admin backup --config "$work/server.yaml" --out "$work/keep" > "$work/keep.out"
cat > "$work/restore.yaml" <<EOF
transfers:
  blob_path: $work/r/blobs
certificates:
  authority:
    dir: $work/ca
EOF
ours_restore() {
  rm -rf "$work/r"; mkdir -p "$work/r"
  DATABASE_URL="sqlite://$work/r/cloud.db" "$MFTPLUS" admin restore \
    --config "$work/restore.yaml" --from "$work/keep"
}
cp_restore() { rm -rf "$work/r"; mkdir -p "$work/r"; cp "$work/keep/database.sqlite3" "$work/r/cloud.db" && sync "$work/r/cloud.db"; }
for round in $(seq 1 "$ROUNDS"); do
  echo "[a] round $round/$ROUNDS (load average $(loadavg))"
  if [ $((round % 2)) -eq 1 ]; then order="ours peer cp"; else order="cp peer ours"; fi
  for who in $order; do
    timed "backup-$who" "$round" "${who}_backup"
    rm -rf "$work/a/ours" "$work/a/peer.db" "$work/a/cp.db"
  done
  if [ $((round % 2)) -eq 1 ]; then order="ours cp"; else order="cp ours"; fi
  for who in $order; do timed "restore-$who" "$round" "${who}_restore"; done
done
echo "after (a): $(loadavg)" >> "$work/loadavg"

# --- (b) the write rate while backups run --------------------------------------------------
mkdir -p "$work/blobs"
taskset -c 1 "$MFTPLUS" cloud --config "$work/server.yaml" > "$work/cloud.log" 2>&1 &
cloud_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/health" || { cat "$work/cloud.log" >&2; exit 1; }
backup_loop() { # WHO: back to back until $work/stop; one line per finished backup
  local who="$1" n=0
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    case "$who" in
      ours) "$MFTPLUS" admin backup --config "$work/server.yaml" --out "$work/b/ours-$n" > /dev/null 2>&1 \
              && echo "$(now)" >> "$work/b/done" ;;
      nice0) "$MFTPLUS" admin backup --config "$work/server.yaml" --out "$work/b/ours-$n" --nice 0 \
              > /dev/null 2>&1 && echo "$(now)" >> "$work/b/done" ;;
      peer) nice -n 10 sqlite3 "$db" ".backup '$work/b/peer-$n.db'" 2>/dev/null \
              && echo "$(now)" >> "$work/b/done" ;;
    esac
    rm -rf "$work/b/ours-$n" "$work/b/peer-$n.db"
  done
}
max_id="$(sqlite3 "$db" 'SELECT max(id) FROM host_reports')"
for round in $(seq 1 "$ROUNDS"); do
  case $((round % 4)) in
    1) order="idle ours nice0 peer" ;; 2) order="ours nice0 peer idle" ;;
    3) order="nice0 peer idle ours" ;; *) order="peer idle ours nice0" ;;
  esac
  for who in $order; do
    echo "[b] round $round/$ROUNDS: $who (load average $(loadavg))"
    rm -rf "$work/b"; mkdir -p "$work/b"; : > "$work/b/done"
    # (stderr of the loop's shell off: it reports the child stop_loop ends as "Terminated")
    if [ "$who" != idle ]; then backup_loop "$who" 2>/dev/null & loop_pid=$!; fi
    timeout $((DURATION + 120)) taskset -c 0 "$BENCH" load --url "http://127.0.0.1:$port" \
      --keys "$work/keys" --duration "$DURATION" --connections "$CONNECTIONS" \
      --report-bytes "$REPORT_BYTES" > "$work/load-$who-$round.json"
    stop_loop
    wc -l < "$work/b/done" > "$work/backups-$who-$round"
    # IMMEDIATE: a deferred DELETE would fail at once (SQLITE_BUSY_SNAPSHOT, no busy wait)
    # when the cloud commits between its read and its write.
    sqlite3 "$db" "PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE; DELETE FROM host_reports WHERE id > $max_id; COMMIT;" > /dev/null
  done
done
stop_cloud
echo "at the end: $(loadavg)" >> "$work/loadavg"

python3 - "$work" "$SIZE_MIB" "$ROUNDS" "$DURATION" "$CONNECTIONS" "$REPORT_BYTES" <<'PY'
import json, os, statistics, sys
work, size, rounds, duration, conns, report = sys.argv[1:7]
rounds = int(rounds)
fill_mib, rows, fill_s = open(os.path.join(work, "fill")).read().split()
times = {}
for line in open(os.path.join(work, "times")):
    name, r, s = line.split()
    times.setdefault(name, []).append(float(s))
med = lambda xs: statistics.median(xs)
mib = float(fill_mib)
print()
print(f"database: {mib:.0f} MiB, {rows} host_reports rows (filled in {float(fill_s):.0f} s); {os.cpu_count()} CPUs")
print(open(os.path.join(work, "loadavg")).read().strip())
print()
print(f"(a) idle database, {rounds} alternating rounds; seconds per round, median, MiB/s of the median")
for name in ("backup-ours", "backup-peer", "backup-cp", "restore-ours", "restore-cp"):
    xs = times.get(name, [])
    if xs:
        m = med(xs)
        print(f"  {name:14} {' '.join(f'{x:6.2f}' for x in xs)}   median {m:6.2f} s  {mib / m:7.1f} MiB/s")
b = lambda n: med(times[n])
print(f"  ratios: backup ours/sqlite3 .backup time {b('backup-ours') / b('backup-peer'):.2f}, ours/cp+sync {b('backup-ours') / b('backup-cp'):.2f}; restore ours/cp+sync {b('restore-ours') / b('restore-cp'):.2f}")
print()
print(f"(b) host-report writes over HTTP, {conns} connections, {report}-byte reports, {duration} s per run, {rounds} alternating rounds")
rates = {}
for who in ("idle", "ours", "nice0", "peer"):
    rs, done, errs, p99 = [], [], [], []
    for r in range(1, rounds + 1):
        p = os.path.join(work, f"load-{who}-{r}.json")
        if not os.path.exists(p):
            continue
        run = json.load(open(p))
        rs.append(run["reports_per_s"]); p99.append(run["p99_ms"])
        errs.append(sum(run["errors"].values()))
        done.append(int(open(os.path.join(work, f"backups-{who}-{r}")).read()))
    rates[who] = med(rs)
    label = {"idle": "no backup", "ours": "admin backup (nice 10)", "nice0": "admin backup --nice 0", "peer": "sqlite3 .backup (nice 10)"}[who]
    print(f"  {label:26} reports/s {' '.join(f'{x:7.0f}' for x in rs)}  median {med(rs):7.0f}  p99 ms median {med(p99):6.1f}  errors {sum(errs)}  backups finished per run {done}")
print(f"  ratio to no backup: admin backup {rates['ours'] / rates['idle']:.2f}, with --nice 0 {rates['nice0'] / rates['idle']:.2f}, sqlite3 .backup {rates['peer'] / rates['idle']:.2f}")
PY
