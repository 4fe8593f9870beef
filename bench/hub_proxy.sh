#!/usr/bin/env bash
# Edge hub overhead, in one run on one machine:
#   (1) small proxied GETs: the cloud's `GET /api/v1/health` hit directly, through `mftplus hub`
#       and through nginx configured as a keep-alive reverse proxy to the same cloud, with wrk.
#       Throughput at CONNECTIONS connections, and latency at 1 connection (an unloaded
#       request's p50/p99: under saturation p50 is queueing, not proxy cost). The cloud and the
#       proxy share CPU 1 (nginx with one worker; the hub's runtime sees one CPU); wrk has CPU 0.
#       The three targets alternate for ROUNDS rounds; medians are compared.
#   (2) WS_CONNECTIONS upgraded (WebSocket-style) connections held through a second, fresh hub
#       whose upstream is `mftplus-bench ws-echo` (answers 101, then echoes), each pinged every
#       5 s by `mftplus-bench ws-hold`; the hub's VmRSS while they are open and its VmHWM.
#       The echo answers phone-home calls with 503, so this hub keeps retrying registration; the
#       proxy path is open meanwhile (only a missing configuration or a refused key closes it).
#   (3) a SIZE_MIB file sent and received with mftctl three ways, alternating for TRANSFER_ROUNDS
#       rounds (SIZE_MIB=0 skips it; setup as bench/transfer.sh): `direct` to the cloud; `hub`
#       through the hub's proxy (the recipient was last seen directly, so the cloud stores the
#       bytes); `site` through the hub with the recipient last seen behind it, so the transfer
#       is site-local (decision 0012) and the bytes stay in the hub's data directory.
# Everything listens on 127.0.0.1 and is stopped by the EXIT trap; nginx is a non-daemon child
# with its own configuration in the temporary folder (the system's nginx is never touched).
#
# Usage: bench/hub_proxy.sh [seconds per throughput run] [connections] [rounds]
#        WS_CONNECTIONS=1000 WS_HOLD=20 SIZE_MIB=1024 TRANSFER_ROUNDS=3 bench/hub_proxy.sh
#        SIZE_MIB=0 bench/hub_proxy.sh 3 32 1        (a quick check, no transfer)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
ROUNDS="${3:-3}"
LATENCY_DURATION="${LATENCY_DURATION:-5}"
WS_CONNECTIONS="${WS_CONNECTIONS:-1000}"
WS_HOLD="${WS_HOLD:-20}"
SIZE_MIB="${SIZE_MIB:-1024}"
TRANSFER_ROUNDS="${TRANSFER_ROUNDS:-3}"

for tool in taskset curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "hub_proxy.sh needs $tool" >&2; exit 1; }
done
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx)"

if [ "${SKIP_BUILD:-0}" != 1 ]; then # SKIP_BUILD=1: use the release binaries already built
  echo "building release binaries"
  cargo build --release -q --locked -p mftplus -p mftplus-bench -p mftctl
fi
MFTPLUS="$PWD/target/release/mftplus"
BENCH="$PWD/target/release/mftplus-bench"
MFTCTL="$PWD/target/release/mftctl"

# Both ends of every held connection live in processes started here: room for all of them.
ulimit -n "$(( $(ulimit -Hn) < 16384 ? $(ulimit -Hn) : 16384 ))"

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mftplus-hub-bench.XXXXXX")"
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
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# --- the cloud --------------------------------------------------------------------------------
mkdir -p "$work/cloud" && chmod 700 "$work/cloud"
cat > "$work/cloud/server.yaml" <<YAML
mode: development
rate_limit:
  per_credential_per_minute: 100000000
  per_address_per_minute: 100000000
YAML
cloud_port="$(free_port)"
RUST_LOG=warn timeout 3600 taskset -c 1 "$MFTPLUS" dev --no-hub --no-agent --data-dir "$work/cloud" --listen "127.0.0.1:$cloud_port" \
  --metrics-listen 127.0.0.1:0 >"$work/cloud.out" 2>"$work/cloud.err" &
pids+=($!)
for _ in $(seq 1 300); do grep -q "API key:" "$work/cloud.out" 2>/dev/null && break; sleep 0.1; done
admin_key="$(awk '/API key:/ {print $3}' "$work/cloud.out")"
[ -n "$admin_key" ] || { echo "the cloud did not start:"; cat "$work/cloud.err"; exit 1; }
cloud="http://127.0.0.1:$cloud_port"

# --- the hub, registered with a deploy key ----------------------------------------------------
deploy_key="$(curl -fsS -H "X-API-Key: $admin_key" -H 'Content-Type: application/json' \
  -d '{"label":"bench"}' "$cloud/api/v1/hubs/deploy-keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
start_hub() { # name, cloud api url, registration key; sets hub_pid and hub_port
  local name="$1"
  hub_port="$(free_port)"
  mkdir -p "$work/$name-data"
  CLOUD_API_URL="$2" HUB_REGISTRATION_KEY="$3" HUB_PORT="$hub_port" HUB_LISTEN_ADDR=127.0.0.1 \
    HUB_DATA_DIR="$work/$name-data" DIAGNOSE_DISK_PATH="$work" RUST_LOG=warn \
    timeout 3600 taskset -c 1 "$MFTPLUS" hub >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  # `timeout` is the direct child; the hub is its child.
  for _ in $(seq 1 50); do hub_pid="$(pgrep -P "${pids[-1]}" || true)"; [ -n "$hub_pid" ] && break; sleep 0.1; done
  wait_for "http://127.0.0.1:$hub_port/health" 100
}
start_hub hub "$cloud/api" "$deploy_key"
hub="http://127.0.0.1:$hub_port"
hub_main_pid="$hub_pid"
for _ in $(seq 1 100); do
  curl -fsS "$hub/hub/diagnose" | grep -q '"registered":true' && break; sleep 0.1
done
curl -fsS "$hub/hub/diagnose" | grep -q '"registered":true' || { echo "the hub did not register"; cat "$work/hub.err"; exit 1; }
hub_rss_ready="$(status_kib "$hub_main_pid" VmRSS)"

# --- nginx as a keep-alive reverse proxy to the same cloud ------------------------------------
nginx_port="$(free_port)"
mkdir -p "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  upstream cloud {
    server 127.0.0.1:$cloud_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://cloud;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
CONF
timeout 3600 taskset -c 1 "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)
via_nginx="http://127.0.0.1:$nginx_port"
wait_for "$via_nginx/api/v1/health" 50
wait_for "$hub/api/v1/health" 50

# --- (1) small GETs ---------------------------------------------------------------------------
run() { # name, base url
  local name="$1" url="$2/api/v1/health"
  taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" > "$work/$name.load.txt"
  taskset -c 0 wrk -t1 -c1 -d"${LATENCY_DURATION}s" --latency "$url" > "$work/$name.one.txt"
  python3 - "$work" "$name" >> "$work/get.results" <<'PY'
import re, sys
d, name = sys.argv[1], sys.argv[2]
def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    def pct(p):
        v, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rps, pct(50), pct(99), int(errs.group(1)) if errs else 0
lr, l50, l99, le = parse(f"{d}/{name}.load.txt")
orps, o50, o99, oe = parse(f"{d}/{name}.one.txt")
print(name, lr, l50, l99, orps, o50, o99, le + oe)
PY
}
echo "(1) wrk -t1 -c$CONNECTIONS -d${DURATION}s and -c1 -d${LATENCY_DURATION}s (CPU 0) x $ROUNDS rounds; cloud + proxy on CPU 1"
: > "$work/get.results"
for round in $(seq 1 "$ROUNDS"); do
  echo "  round $round/$ROUNDS"
  run direct "$cloud"
  run hub "$hub"
  run nginx "$via_nginx"
done
hub_rss_after_get="$(status_kib "$hub_main_pid" VmRSS)"
hub_hwm_after_get="$(status_kib "$hub_main_pid" VmHWM)"

# --- (2) held upgraded connections ------------------------------------------------------------
echo "(2) $WS_CONNECTIONS upgraded connections held ${WS_HOLD}s through a fresh hub"
timeout 3600 "$BENCH" ws-echo --listen 127.0.0.1:0 >"$work/echo.out" 2>"$work/echo.err" &
pids+=($!)
for _ in $(seq 1 50); do [ -s "$work/echo.out" ] && break; sleep 0.1; done
echo_addr="$(head -1 "$work/echo.out")"
start_hub wshub "http://$echo_addr/api" "mft_dep_bench_echo_upstream"
ws_hub_pid="$hub_pid"
ws_rss_idle="$(status_kib "$ws_hub_pid" VmRSS)"
timeout $((WS_HOLD + 120)) "$BENCH" ws-hold --via "127.0.0.1:$hub_port" --connections "$WS_CONNECTIONS" \
  --ping-every 5 --hold "$WS_HOLD" >"$work/hold.out" 2>"$work/hold.err" &
hold_pid=$!
pids+=("$hold_pid")
for _ in $(seq 1 600); do grep -q holding "$work/hold.err" 2>/dev/null && break; sleep 0.1; done
: > "$work/ws.rss"
for _ in $(seq 1 $((WS_HOLD / 2 > 1 ? WS_HOLD / 2 : 1))); do
  sleep 1; status_kib "$ws_hub_pid" VmRSS >> "$work/ws.rss"
done
ws_threads="$(status_kib "$ws_hub_pid" Threads)"
ws_fds="$(ls "/proc/$ws_hub_pid/fd" | wc -l)"
wait "$hold_pid" || { echo "ws-hold failed:"; cat "$work/hold.err"; exit 1; }
ws_hwm="$(status_kib "$ws_hub_pid" VmHWM)"
cat "$work/hold.err"

# --- (3) a large transfer direct and through the hub ------------------------------------------
if [ "$SIZE_MIB" -gt 0 ]; then
  echo "(3) ${SIZE_MIB} MiB with mftctl, direct and through the hub, x $TRANSFER_ROUNDS rounds"
  password="bench-password-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  # One login per user (each login may create the user's key pair); MFTPLUS_SERVER picks the
  # route per command, so both routes use the same session and keys.
  for who in sender recipient; do
    mkdir -p "$work/home-$who"
    printf '%s\n' "$password" | MFTPLUS_SERVER="$cloud" MFTPLUS_API_KEY="$admin_key" HOME="$work/home-$who" \
      "$MFTCTL" users create --email "$who@example.com" --role user --password-stdin >/dev/null
    printf '%s\n' "$password" | MFTPLUS_SERVER="$cloud" HOME="$work/home-$who" \
      "$MFTCTL" login --email "$who@example.com" --password-stdin >/dev/null 2>&1
  done
  src="$work/source.bin"
  head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$src"
  cat "$src" > /dev/null # every run reads it from the page cache alike
  now() { date +%s.%N; }
  : > "$work/transfer.results"
  hub_hwm_reset=yes
  for round in $(seq 1 "$TRANSFER_ROUNDS"); do
    echo "  round $round/$TRANSFER_ROUNDS"
    for route in direct hub site; do
      server="$cloud"; [ "$route" != direct ] && server="$hub"
      # Where the recipient was last seen decides whether the hub keeps the transfer.
      seen="$cloud"; [ "$route" = site ] && seen="$hub"
      MFTPLUS_SERVER="$seen" HOME="$work/home-recipient" "$MFTCTL" transfers list >/dev/null 2>&1
      echo 5 > "/proc/$hub_main_pid/clear_refs" 2>/dev/null || hub_hwm_reset=no
      t0=$(now)
      id="$(MFTPLUS_SERVER="$server" HOME="$work/home-sender" "$MFTCTL" send "$src" recipient@example.com 2>"$work/send.err")" \
        || { cat "$work/send.err"; exit 1; }
      t1=$(now)
      send_hwm="$(status_kib "$hub_main_pid" VmHWM)"
      echo 5 > "/proc/$hub_main_pid/clear_refs" 2>/dev/null || hub_hwm_reset=no
      mkdir -p "$work/recv"
      t2=$(now)
      MFTPLUS_SERVER="$server" HOME="$work/home-recipient" "$MFTCTL" receive "$id" --dir "$work/recv" >/dev/null 2>"$work/recv.err" \
        || { cat "$work/recv.err"; exit 1; }
      t3=$(now)
      recv_hwm="$(status_kib "$hub_main_pid" VmHWM)"
      cmp -s "$src" "$work/recv/source.bin" || { echo "received file differs ($route)"; exit 1; }
      rm -rf "$work/recv"
      site_of="$(MFTPLUS_SERVER="$cloud" HOME="$work/home-sender" "$MFTCTL" transfers show "$id" --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin).get("site") or "cloud")')"
      case "$route:$site_of" in
        site:cloud | direct:hub_* | hub:hub_*) echo "the $route transfer was kept by: $site_of" >&2; exit 1 ;;
      esac
      MFTPLUS_SERVER="$cloud" HOME="$work/home-sender" "$MFTCTL" transfers cancel "$id" >/dev/null
      rm -rf "$work/cloud/blobs"/*/"$id" "$work/hub-data/site/$id"
      python3 -c "print('$route', $SIZE_MIB / ($t1 - $t0), $SIZE_MIB / ($t3 - $t2), $send_hwm, $recv_hwm)" >> "$work/transfer.results"
    done
  done
fi

# --- the tables -------------------------------------------------------------------------------
echo
echo "$(nproc) CPUs; $(uname -r); nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
python3 - "$work" "$hub_rss_ready" "$hub_rss_after_get" "$hub_hwm_after_get" "$ws_rss_idle" "$ws_hwm" \
  "$ws_threads" "$ws_fds" "$SIZE_MIB" "${hub_hwm_reset:-n/a}" <<'PY'
import json, os, statistics as st, sys
d = sys.argv[1]
rss_ready, rss_get, hwm_get, ws_idle, ws_hwm, ws_threads, ws_fds = (int(x) for x in sys.argv[2:9])
size_mib, hwm_reset = int(sys.argv[9]), sys.argv[10]
ok = lambda b: "PASS" if b else "FAIL"
rows = {}
for line in open(f"{d}/get.results"):
    name, *vals = line.split()
    rows.setdefault(name, []).append([float(v) for v in vals])
med = lambda name, i: st.median(r[i] for r in rows[name])
print("\n(1) GET /api/v1/health, medians")
print(f"{'target':8} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'1-conn req/s':>12} {'p50 ms':>7} {'p99 ms':>7} | errors | req/s runs")
for name in ("direct", "hub", "nginx"):
    runs = " ".join(f"{r[0]:.0f}" for r in rows[name])
    errors = sum(int(r[6]) for r in rows[name])
    print(f"{name:8} {med(name,0):9.0f} {med(name,1):7.3f} {med(name,2):7.3f} | {med(name,3):12.0f} "
          f"{med(name,4):7.3f} {med(name,5):7.3f} | {errors:6} | {runs}")
ratio = med("hub", 0) / med("nginx", 0)
added = med("hub", 4) - med("direct", 4)
added_nginx = med("nginx", 4) - med("direct", 4)
print(f"hub throughput {ratio:.2f}x nginx (target >= 0.8x: {ok(ratio >= 0.8)}); "
      f"{med('hub', 0) / med('direct', 0):.2f}x direct")
print(f"added p50 at 1 connection: hub {added:.3f} ms, nginx {added_nginx:.3f} ms (target hub < 0.3 ms: {ok(added < 0.3)})")
print(f"hub VmRSS {rss_ready / 1024:.1f} MiB when registered, {rss_get / 1024:.1f} MiB after the load (VmHWM {hwm_get / 1024:.1f} MiB)")

hold = json.loads(open(f"{d}/hold.out").read())
rss = [int(x) for x in open(f"{d}/ws.rss").read().split()]
print(f"\n(2) {hold['opened']}/{hold['requested']} upgraded connections opened in {hold['open_seconds']:.2f} s, "
      f"{hold['alive_at_end']} alive at the end, {hold['pings_ok']} pings echoed, {hold['ping_failures']} failed")
print(f"hub VmRSS {ws_idle / 1024:.1f} MiB idle; with them open: median {st.median(rss) / 1024:.1f} MiB, "
      f"max {max(rss) / 1024:.1f} MiB; VmHWM {ws_hwm / 1024:.1f} MiB; {ws_threads} threads, {ws_fds} fds "
      f"(target <= 32 MiB: {ok(ws_hwm <= 32 * 1024 and hold['alive_at_end'] == hold['requested'])})")

if size_mib > 0:
    t = {}
    for line in open(f"{d}/transfer.results"):
        route, *vals = line.split()
        t.setdefault(route, []).append([float(v) for v in vals])
    tm = lambda route, i: st.median(r[i] for r in t[route])
    print(f"\n(3) {size_mib} MiB with mftctl, medians (hub VmHWM reset per phase: {hwm_reset})")
    print(f"{'route':8} {'send MiB/s':>10} {'receive MiB/s':>13} {'hub HWM send':>12} {'hub HWM recv':>12}  send runs / receive runs")
    for route in ("direct", "hub", "site"):
        runs = " ".join(f"{r[0]:.0f}" for r in t[route]) + " / " + " ".join(f"{r[1]:.0f}" for r in t[route])
        hwm = lambda i: f"{max(r[i] for r in t[route]) / 1024:.1f}" if route != "direct" else "-"
        print(f"{route:8} {tm(route,0):10.1f} {tm(route,1):13.1f} {hwm(2):>12} {hwm(3):>12}  {runs}")
    for route in ("hub", "site"):
        for i, what in ((0, "send"), (1, "receive")):
            r = tm(route, i) / tm("direct", i)
            print(f"{what} via {route}: {r:.2f}x direct (target >= 0.9x: {ok(r >= 0.9)})")
PY
