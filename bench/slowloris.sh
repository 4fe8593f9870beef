#!/usr/bin/env bash
# A slowloris against each listener beside legitimate traffic, in one run on one machine
# (issue 13): the cloud, the hub in front of it, and nginx as the peer.
#   the cloud: `mftplus dev --no-hub --no-agent`, plain HTTP, default `server.limits` (30 s head
#              deadline, 1,024 connections per client address, 20,000 overall);
#   the hub:   `mftplus hub` registered with a deploy key from that cloud, proxying to it;
#   nginx:     one worker, `client_header_timeout 30s` (the same head deadline),
#              `location = /api/v1/health { return 200 '{...}'; }` with the cloud's own answer.
# Per target, `mftplus-bench slowloris`: legitimate `GET /api/v1/health` at LEGIT_RATE per second
# (open loop, LEGIT_CONNECTIONS keep-alive connections from LEGIT_SOURCE, latency from each
# request's scheduled time) for BASELINE_SECONDS alone, then for ATTACK_SECONDS beside
# ATTACK_CONNECTIONS connections from ATTACK_SOURCE that send `GET / HTTP/1.1`, `Host` and one
# more header line every TRICKLE_SECONDS, never ending the head, and reconnect 1 s after the
# server closes them. The targets alternate for ROUNDS rounds; the table shows medians.
# The servers have CPU 1 (nginx `worker_processes 1`; the cloud and the hub under
# `taskset -c 1`, so their runtimes are single-threaded); the bench tool has CPU 0.
# Everything listens on 127.0.0.1 and is stopped by the EXIT trap; nginx is a non-daemon child
# with its own configuration in the temporary folder (the system's nginx is never touched).
#
# Usage: bench/slowloris.sh [attack seconds] [attack connections] [rounds]
#        bench/slowloris.sh 60 2000 3                    (the defaults)
#        SKIP_BUILD=1 bench/slowloris.sh 10 500 1        (a quick check with the built binaries)
#        BASELINE_SECONDS=20 LEGIT_RATE=200 LEGIT_CONNECTIONS=8 TRICKLE_SECONDS=5 (the defaults)
#        RESULTS_DIR=/tmp/slowloris bench/slowloris.sh    (also keep each run's JSON there)
#        ATTACK_SOURCE=127.0.0.10,127.0.0.11 bench/slowloris.sh   (the attack from two addresses,
#                                                  round-robin: under the per-address cap each)
set -euo pipefail
cd "$(dirname "$0")/.."
ATTACK_SECONDS="${1:-60}"
ATTACK_CONNECTIONS="${2:-2000}"
ROUNDS="${3:-3}"
BASELINE_SECONDS="${BASELINE_SECONDS:-20}"
LEGIT_RATE="${LEGIT_RATE:-200}"
LEGIT_CONNECTIONS="${LEGIT_CONNECTIONS:-8}"
TRICKLE_SECONDS="${TRICKLE_SECONDS:-5}"
ATTACK_SOURCE="${ATTACK_SOURCE:-127.0.0.1}"
LEGIT_SOURCE="${LEGIT_SOURCE:-127.0.0.2}"
HEAD_DEADLINE=30 # the serve loop's default `header_read`, and nginx's client_header_timeout here
PAUSE="${PAUSE:-5}" # seconds between two runs, for the previous run's sockets to go

for tool in taskset curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "slowloris.sh needs $tool" >&2; exit 1; }
done
if ! command -v nginx >/dev/null; then
  echo "installing: nginx-light"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
NGINX="$(command -v nginx)"
for source in $LEGIT_SOURCE ${ATTACK_SOURCE//,/ }; do
  python3 -c "import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0))" "$source" 2>/dev/null \
    || { echo "cannot bind $source (on Linux all of 127.0.0.0/8 is loopback)" >&2; exit 1; }
done

if [ "${SKIP_BUILD:-0}" != 1 ]; then # SKIP_BUILD=1: use the release binaries already built (in CARGO_TARGET_DIR if set)
  echo "building release binaries"
  cargo build --release -q --locked -p mftplus -p mftplus-bench
fi
MFTPLUS="${CARGO_TARGET_DIR:-$PWD/target}/release/mftplus"
BENCH="${CARGO_TARGET_DIR:-$PWD/target}/release/mftplus-bench"

# Both ends of every attacking connection live in processes started here: room for all of them
# (nginx, which has no per-address cap, holds every one).
want_files=$(( ATTACK_CONNECTIONS * 2 + 4096 ))
[ "$want_files" -lt 16384 ] && want_files=16384
hard="$(ulimit -Hn)"
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want_files" ]; then
  echo "note: the hard limit on open files is $hard, below the $want_files wanted" >&2
  want_files="$hard"
fi
ulimit -n "$want_files"

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mftplus-slowloris.XXXXXX")"
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
child_of() { # the process `timeout` (pid $1) runs
  local c=""
  for _ in $(seq 1 50); do c="$(pgrep -P "$1" || true)"; [ -n "$c" ] && break; sleep 0.1; done
  echo "$c"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- the cloud --------------------------------------------------------------------------------
mkdir -p "$work/cloud" && chmod 700 "$work/cloud"
# Rate limits above the legitimate load; `server.limits` stays at its defaults (what is tested).
cat > "$work/cloud/server.yaml" <<YAML
mode: development
rate_limit:
  per_credential_per_minute: 100000000
  per_address_per_minute: 100000000
YAML
cloud_port="$(free_port)"
RUST_LOG=warn timeout 7200 taskset -c 1 "$MFTPLUS" dev --no-hub --no-agent --data-dir "$work/cloud" \
  --listen "127.0.0.1:$cloud_port" --metrics-listen 127.0.0.1:0 >"$work/cloud.out" 2>"$work/cloud.err" &
pids+=($!)
cloud_pid="$(child_of "${pids[-1]}")"
for _ in $(seq 1 300); do grep -q "API key:" "$work/cloud.out" 2>/dev/null && break; sleep 0.1; done
admin_key="$(awk '/API key:/ {print $3}' "$work/cloud.out")"
[ -n "$admin_key" ] || { echo "the cloud did not start:"; cat "$work/cloud.err"; exit 1; }
cloud="http://127.0.0.1:$cloud_port"
wait_for "$cloud/api/v1/health" 100

# --- the hub in front of it, registered with a deploy key -------------------------------------
deploy_key="$(curl -fsS -H "X-API-Key: $admin_key" -H 'Content-Type: application/json' \
  -d '{"label":"slowloris"}' "$cloud/api/v1/hubs/deploy-keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
hub_port="$(free_port)"
mkdir -p "$work/hub-data"
CLOUD_API_URL="$cloud/api" HUB_REGISTRATION_KEY="$deploy_key" HUB_PORT="$hub_port" HUB_LISTEN_ADDR=127.0.0.1 \
  HUB_DATA_DIR="$work/hub-data" DIAGNOSE_DISK_PATH="$work" RUST_LOG=warn \
  timeout 7200 taskset -c 1 "$MFTPLUS" hub >"$work/hub.out" 2>"$work/hub.err" &
pids+=($!)
hub_pid="$(child_of "${pids[-1]}")"
hub="http://127.0.0.1:$hub_port"
wait_for "$hub/health" 100
for _ in $(seq 1 100); do
  curl -fsS "$hub/hub/diagnose" | grep -q '"registered":true' && break; sleep 0.1
done
curl -fsS "$hub/hub/diagnose" | grep -q '"registered":true' || { echo "the hub did not register"; cat "$work/hub.err"; exit 1; }
wait_for "$hub/api/v1/health" 50

# --- nginx with the same answer and the same head deadline ------------------------------------
body="$(curl -fsS "$cloud/api/v1/health")"
nginx_port="$(free_port)"
mkdir -p "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $want_files;
daemon off;
master_process off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $(( want_files / 2 )); }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  # The serve loop's head deadline; it also closes a keep-alive connection idle that long.
  client_header_timeout ${HEAD_DEADLINE}s;
  keepalive_timeout ${HEAD_DEADLINE}s;
  # hyper has no per-connection request limit; nginx's default (1000) would add reconnects.
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /api/v1/health {
      default_type application/json;
      return 200 '$body';
    }
  }
}
CONF
timeout 7200 taskset -c 1 "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)
nginx_pid="$(child_of "${pids[-1]}")"
via_nginx="http://127.0.0.1:$nginx_port"
wait_for "$via_nginx/api/v1/health" 50

# --- the runs ---------------------------------------------------------------------------------
run() { # name, port, server pid, round, processes to watch (the server's and its upstream's)
  local name="$1" port="$2" pid="$3" round="$4" watch="$5"
  taskset -c 0 "$BENCH" slowloris --target "127.0.0.1:$port" --path /api/v1/health \
    --attack-connections "$ATTACK_CONNECTIONS" --attack-source "$ATTACK_SOURCE" \
    --legit-source "$LEGIT_SOURCE" --legit-rate "$LEGIT_RATE" --legit-connections "$LEGIT_CONNECTIONS" \
    --baseline-seconds "$BASELINE_SECONDS" --attack-seconds "$ATTACK_SECONDS" \
    --trickle-seconds "$TRICKLE_SECONDS" --server-pid "$pid" --watch-pid "$watch" \
    >"$work/$round.$name.json" 2>"$work/$round.$name.err" \
    || { echo "the slowloris run against $name failed:"; cat "$work/$round.$name.err"; exit 1; }
  echo "    $name: $(tail -1 "$work/$round.$name.err" | sed 's/^[0-9.:]*: //')"
  echo "$name $round $work/$round.$name.json" >> "$work/runs"
  if [ -n "${RESULTS_DIR:-}" ]; then mkdir -p "$RESULTS_DIR" && cp "$work/$round.$name.json" "$RESULTS_DIR/"; fi
}

echo "uptime before: $(uptime)"
uptime > "$work/uptime.before"
echo "$ATTACK_CONNECTIONS attacking connections from $ATTACK_SOURCE for ${ATTACK_SECONDS}s (a header line every ${TRICKLE_SECONDS}s)," \
  "after ${BASELINE_SECONDS}s without; legitimate: $LEGIT_RATE req/s over $LEGIT_CONNECTIONS connections from $LEGIT_SOURCE;"
echo "bench tool on CPU 0, servers on CPU 1, x $ROUNDS rounds"
: > "$work/runs"
: > "$work/rounds"
for round in $(seq 1 "$ROUNDS"); do
  echo "  round $round/$ROUNDS (load average $(loadavg))"
  echo "$round $(loadavg)" >> "$work/rounds"
  # Alternate the order, so no target always follows the same one.
  order=(cloud hub nginx); [ $((round % 2)) = 0 ] && order=(nginx hub cloud)
  for name in "${order[@]}"; do
    case "$name" in
      cloud) run cloud "$cloud_port" "$cloud_pid" "$round" "$cloud_pid" ;;
      hub) run hub "$hub_port" "$hub_pid" "$round" "$hub_pid,$cloud_pid" ;;
      nginx) run nginx "$nginx_port" "$nginx_pid" "$round" "$nginx_pid" ;;
    esac
    sleep "$PAUSE"
  done
done
echo "uptime after: $(uptime)"
uptime > "$work/uptime.after"
for who in cloud hub; do
  warnings="$(grep -c -i -E 'warn|error' "$work/$who.err" || true)"
  [ "$warnings" = 0 ] || { echo "$who logged $warnings warnings or errors; the last ones:"; tail -5 "$work/$who.err"; }
done
[ -s "$work/nginx/error.log" ] && { echo "nginx's error log, the last lines:"; tail -5 "$work/nginx/error.log"; }

# --- the table --------------------------------------------------------------------------------
echo
echo "$(nproc) CPUs; $(uname -r); nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
python3 - "$work" "$ROUNDS" "$HEAD_DEADLINE" <<'PY'
import json, statistics as st, sys
d, rounds, deadline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
runs = {}
for line in open(f"{d}/runs"):
    name, _, path = line.split()
    runs.setdefault(name, []).append(json.load(open(path)))
ok = lambda b: "PASS" if b else "FAIL"
med = lambda name, f: st.median(f(r) for r in runs[name])
first = next(iter(runs.values()))[0]
print("load average per round: " + "; ".join(
    f"{l.split()[0]}: {' '.join(l.split()[1:])}" for l in open(f"{d}/rounds")))
print("uptime before: " + open(f"{d}/uptime.before").read().strip())
print("uptime after:  " + open(f"{d}/uptime.after").read().strip())
a = first["attack"]
print(f"\nlegitimate GET {first['path']} at {first['legit_rate']:.0f} req/s over {first['legit_connections']} "
      f"connections; {a['connections']} attacking connections for {a['seconds']:.0f} s; medians of {rounds} rounds")
print(f"{'target':6} | {'baseline p50':>12} {'p99':>7} {'req/s':>6} | {'attacked p50':>12} {'p99':>7} {'max':>7} "
      f"{'req/s':>6} {'errors':>6} | {'lifetime p50':>12} {'max':>6} {'refused':>7} {'held avg':>8} | "
      f"{'server CPU':>11} | p99 under attack per round (service p99)")
for name in ("cloud", "hub", "nginx"):
    if name not in runs:
        continue
    rs = runs[name]
    errors = sum(r["baseline"]["error_count"] + r["under_attack"]["error_count"] for r in rs)
    cpu = lambda phase: med(name, lambda r: r[phase]["server_cpu_percent"] or 0.0)
    per_round = " ".join(f"{r['under_attack']['p99_ms']:.2f} ({r['under_attack']['service_p99_ms']:.2f})" for r in rs)
    closed = any(r["attack"]["held_closed"] for r in rs)
    life = lambda f: f"{med(name, lambda r: r['attack'][f]):.1f}" if closed else "-"
    print(f"{name:6} | {med(name, lambda r: r['baseline']['p50_ms']):9.2f} ms {med(name, lambda r: r['baseline']['p99_ms']):7.2f} "
          f"{med(name, lambda r: r['baseline']['rate_per_s']):6.1f} | "
          f"{med(name, lambda r: r['under_attack']['p50_ms']):9.2f} ms {med(name, lambda r: r['under_attack']['p99_ms']):7.2f} "
          f"{med(name, lambda r: r['under_attack']['max_ms']):7.1f} {med(name, lambda r: r['under_attack']['rate_per_s']):6.1f} "
          f"{errors:6} | {life('lifetime_p50_s'):>10} s {life('lifetime_max_s'):>5}s "
          f"{med(name, lambda r: r['attack']['refused_at_once']):7.0f} {med(name, lambda r: r['attack']['held_avg']):8.0f} | "
          f"{cpu('baseline'):4.0f}% → {cpu('under_attack'):3.0f}% | {per_round}")
print("\nwhere the time went under attack, per round: CPU 0 / CPU 1 busy (every process), the server's and the "
      "bench tool's own CPU, the tool's p99 / max lateness in sending on an idle connection")
for name in ("cloud", "hub", "nginx"):
    for r in runs.get(name, []):
        u = r["under_attack"]
        busy = " / ".join(f"{b:.0f}%" for b in u["cpu_busy_percent"])
        print(f"{name:6} CPUs {busy}; server {u['server_cpu_percent'] or 0:.0f}%, tool {u['generator_cpu_percent']:.0f}%; "
              f"late p99 {u['wake_late_p99_ms']:.2f} ms, max {u['wake_late_max_ms']:.1f} ms; service max {u['service_max_ms']:.1f} ms")
        # The slowest request (all of them when p99 missed): whether the server ran, waited for
        # a CPU held by another process, or neither (it slept, or waited on its upstream).
        for slow in u["slowest"] if u["p99_ms"] >= 50 else u["slowest"][:1]:
            sched = "; ".join(f"{'server' if i == 0 else 'upstream'} ran {x['ran_ms']:.1f} ms, waited for a CPU "
                              f"{x['waited_ms']:.1f} ms in {x['window_ms']:.0f} ms" for i, x in enumerate(slow["sched"]))
            print(f"         slowest: at {slow['at_s']:.2f} s into the attack, {slow['latency_ms']:.1f} ms "
                  f"(service {slow['service_ms']:.1f} ms, sent {slow['wake_late_ms']:.1f} ms late); {sched}")
print("\nthe attack per target (medians): opened, closed by the server, refused at once (< 1 s), answers to the "
      "closed ones, still open at the end (oldest), most held at once, slowest connect, server fds / RSS at most")
for name in ("cloud", "hub", "nginx"):
    if name not in runs:
        continue
    answers = {}
    for r in runs[name]:
        for k, v in r["attack"]["answers"].items():
            answers.setdefault(k, []).append(v)
    answers = ", ".join(f"{k}: {st.median(v):.0f}" for k, v in sorted(answers.items()))
    m = lambda f: med(name, lambda r: r["attack"][f] or 0)
    print(f"{name:6} opened {m('opened'):.0f}, closed {m('closed_by_server'):.0f}, refused at once {m('refused_at_once'):.0f}, "
          f"answers [{answers}], open at end {m('open_at_end'):.0f} (oldest {m('open_at_end_oldest_s'):.1f} s), "
          f"held max {m('held_max'):.0f}, connect max {m('connect_max_ms'):.0f} ms, "
          f"server fds max {m('server_fds_max'):.0f}, RSS max {m('server_rss_max_kib') / 1024:.1f} MiB "
          f"(at the end of the baseline {med(name, lambda r: r['baseline']['server_rss_kib'] or 0) / 1024:.1f} MiB)")
    errs = {}
    for r in runs[name]:
        for phase in ("baseline", "under_attack"):
            for k, v in r[phase]["errors"].items():
                errs[f"{phase}:{k}"] = errs.get(f"{phase}:{k}", 0) + v
    if errs:
        print(f"       legitimate errors over all rounds: {errs}")
print()
for name in ("cloud", "hub"):
    if name not in runs:
        continue
    worst = max(r["under_attack"]["p99_ms"] for r in runs[name])
    oldest = max(max(r["attack"]["lifetime_max_s"], r["attack"]["open_at_end_oldest_s"]) for r in runs[name])
    print(f"{name}: p99 under attack < 50 ms in every round (worst {worst:.2f} ms): {ok(worst < 50)}; "
          f"attacking connections closed within the {deadline:.0f} s head deadline (+1 s measuring slack; "
          f"longest {oldest:.1f} s): {ok(oldest <= deadline + 1)}")
PY
