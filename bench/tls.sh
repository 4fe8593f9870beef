#!/usr/bin/env bash
# The cloud's TLS listener beside nginx, in one run on one machine. Both serve TLS 1.3 only,
# with the same EC P-256 certificate and key (a CA and a server leaf for 127.0.0.1, made here
# with the `openssl` command), the same suites and groups in the same order (both follow the
# client's suite order: rustls does unless told otherwise, nginx is set to), HTTP/1.1:
#   the cloud: `mftplus dev --no-hub --no-agent` with `tls.enabled: true`, `GET /api/v1/health`;
#   nginx:     one worker, `location = /api/v1/health { return 200 '{...}'; }`, a body of the
#              cloud's shape and size.
# Three measurements per target, the targets alternating for ROUNDS rounds; medians compared:
#   (1a) full handshakes: HANDSHAKE_CLIENTS parallel `openssl s_time -new -www /api/v1/health`
#        (a fresh session every connection, never resumed; HTTP/1.0, so one request each);
#   (1b) short connections with wrk: `-H 'Connection: close'`, CONNECTIONS connections, each
#        request on a new connection. wrk keeps its OpenSSL session across reconnects, so it
#        resumes (PSK with a fresh ECDHE, no certificate signature) where the server allows;
#        the script checks whether each server resumes a session and prints it;
#   (2)  keep-alive requests: wrk, CONNECTIONS connections, no new handshakes after the first;
#        also against a second cloud without TLS and an nginx server without TLS (same answer),
#        so the table separates what TLS adds per request from what the handler costs; and the
#        cloud's `GET /health` over TLS (the same answer without the database ping that
#        `/api/v1/health` makes on tokio's blocking pool).
# The server under test has CPU 1 (nginx `worker_processes 1`, the cloud under `taskset -c 1`,
# so its runtime sees one CPU and is single-threaded); every client has CPU 0. The server's CPU
# time (utime+stime from /proc) is read around each run, so the table also shows how busy the
# server was and its CPU cost per connection or request: when the client's CPU is the limit
# (the server below ~100%), the cost per operation is the fairer comparison.
# Everything listens on 127.0.0.1 and is stopped by the EXIT trap; nginx is a non-daemon child
# with its own configuration in the temporary folder (the system's nginx is never touched).
#
# Usage: bench/tls.sh [seconds per run] [connections] [rounds]
#        HANDSHAKE_CLIENTS=4 bench/tls.sh 10 32 3        (the defaults)
#        SKIP_BUILD=1 bench/tls.sh 3 32 1                (a quick check with the built binary)
#        PERF_DIR=/tmp/tls-perf bench/tls.sh             (then one profiled run of each kind)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
ROUNDS="${3:-3}"
HANDSHAKE_CLIENTS="${HANDSHAKE_CLIENTS:-4}"
SUITES="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

for tool in taskset curl python3 timeout openssl; do
  command -v "$tool" >/dev/null || { echo "tls.sh needs $tool" >&2; exit 1; }
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

if [ "${SKIP_BUILD:-0}" != 1 ]; then # SKIP_BUILD=1: use target/release/mftplus as built
  echo "building the release binary"
  cargo build --release -q --locked -p mftplus
fi
MFTPLUS="$PWD/target/release/mftplus"

ulimit -n "$(( $(ulimit -Hn) < 16384 ? $(ulimit -Hn) : 16384 ))"

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mftplus-tls-bench.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap 'cleanup' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # url, tries of 0.1 s
  for _ in $(seq 1 "$2"); do
    curl -fsS --cacert "$pki/ca.crt" -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1
  done
  echo "nothing answered at $1" >&2; return 1
}
child_of() { # the process `timeout` (pid $1) runs
  local c=""
  for _ in $(seq 1 50); do c="$(pgrep -P "$1" || true)"; [ -n "$c" ] && break; sleep 0.1; done
  echo "$c"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- certificates: an EC P-256 CA and a server leaf for 127.0.0.1 ----------------------------
pki="$work/pki"
mkdir -p "$pki" && chmod 700 "$pki"
(
  cd "$pki"
  umask 077
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj /CN=mftplus-bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  openssl ecparam -name prime256v1 -genkey -noout -out server.key
  openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
    -days 1 -extfile server.ext 2>/dev/null
  chmod 644 ca.crt server.crt
) >/dev/null

# --- the cloud over TLS -----------------------------------------------------------------------
mkdir -p "$work/cloud" && chmod 700 "$work/cloud"
cat > "$work/cloud/server.yaml" <<YAML
mode: development
rate_limit:
  per_credential_per_minute: 100000000
  per_address_per_minute: 100000000
tls:
  enabled: true
  min_version: TLSv1.3
  max_version: TLSv1.3
  certificate:
    cert: $pki/server.crt
    key: $pki/server.key
  client_auth:
    mode: noClientCert
  cipher_suites:
    - TLS_AES_128_GCM_SHA256
    - TLS_AES_256_GCM_SHA384
    - TLS_CHACHA20_POLY1305_SHA256
  curve_preferences:
    - X25519
    - secp256r1
    - secp384r1
YAML
cloud_port="$(free_port)"
RUST_LOG=warn timeout 3600 taskset -c 1 "$MFTPLUS" dev --no-hub --no-agent --data-dir "$work/cloud" \
  --listen "127.0.0.1:$cloud_port" --metrics-listen 127.0.0.1:0 >"$work/cloud.out" 2>"$work/cloud.err" &
pids+=($!)
cloud_pid="$(child_of "${pids[-1]}")"
for _ in $(seq 1 300); do grep -q "API key:" "$work/cloud.out" 2>/dev/null && break; sleep 0.1; done
grep -q "API key:" "$work/cloud.out" || { echo "the cloud did not start:"; cat "$work/cloud.err"; exit 1; }
# The dev banner prints http:// URLs; with tls.enabled the listener speaks HTTPS only.
cloud="https://127.0.0.1:$cloud_port"
wait_for "$cloud/api/v1/health" 100

# The same cloud without TLS (its own data folder), a reference for the keep-alive run only:
# the difference is what TLS adds per request once the connection is up.
mkdir -p "$work/plain" && chmod 700 "$work/plain"
sed '/^tls:/,$d' "$work/cloud/server.yaml" > "$work/plain/server.yaml"
plain_port="$(free_port)"
RUST_LOG=warn timeout 3600 taskset -c 1 "$MFTPLUS" dev --no-hub --no-agent --data-dir "$work/plain" \
  --listen "127.0.0.1:$plain_port" --metrics-listen 127.0.0.1:0 >"$work/plain.out" 2>"$work/plain.err" &
pids+=($!)
cloud_plain_pid="$(child_of "${pids[-1]}")"
cloud_plain="http://127.0.0.1:$plain_port"
wait_for "$cloud_plain/api/v1/health" 300

# --- nginx over TLS with the same certificate -------------------------------------------------
# The same body shape and length as the cloud's answer, so both write as many bytes.
body="$(curl -fsS --cacert "$pki/ca.crt" "$cloud/api/v1/health")"
nginx_port="$(free_port)"
nginx_plain_port="$(free_port)"
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
  # hyper has no per-connection request limit; nginx's default (1000) would add handshakes
  # to the keep-alive run.
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $pki/server.crt;
    ssl_certificate_key $pki/server.key;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites $SUITES;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    # rustls follows the client's suite order unless told otherwise; so does this.
    ssl_prefer_server_ciphers off;
    location = /api/v1/health {
      default_type application/json;
      return 200 '$body';
    }
  }
  # The same answer without TLS: the keep-alive reference.
  server {
    listen 127.0.0.1:$nginx_plain_port;
    location = /api/v1/health {
      default_type application/json;
      return 200 '$body';
    }
  }
}
CONF
timeout 3600 taskset -c 1 "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)
nginx_pid="$(child_of "${pids[-1]}")"
nginx_plain_pid="$nginx_pid"
via_nginx="https://127.0.0.1:$nginx_port"
wait_for "$via_nginx/api/v1/health" 50
nginx_plain="http://127.0.0.1:$nginx_plain_port"
wait_for "$nginx_plain/api/v1/health" 50

# --- what each side negotiates, and whether it resumes ----------------------------------------
: > "$work/negotiated"
for name in cloud nginx; do
  port="$cloud_port"; [ "$name" = nginx ] && port="$nginx_port"
  # HTTP/1.0 and -ign_eof: read to the server's close, so the session tickets arrive.
  printf 'GET /api/v1/health HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
    -CAfile "$pki/ca.crt" -verify_return_error -ign_eof -sess_out "$work/$name.sess" >"$work/$name.s1" 2>&1 || true
  printf 'GET /api/v1/health HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
    -CAfile "$pki/ca.crt" -ign_eof -sess_in "$work/$name.sess" >"$work/$name.s2" 2>&1 || true
  python3 - "$work" "$name" >> "$work/negotiated" <<'PY'
import re, sys
d, name = sys.argv[1], sys.argv[2]
first, second = open(f"{d}/{name}.s1").read(), open(f"{d}/{name}.s2").read()
def grab(pattern, text, default="?"):
    m = re.search(pattern, text, re.M)
    return m.group(1).strip() if m else default
fields = [
    ("version", r"^New, (TLSv[\d.]+)", first),
    ("suite", r"Cipher is (\S+)", first),
    ("kx", r"Server Temp Key: (.*)$", first),
    ("sig", r"Peer signature type: (.*)$", first),
    ("verify", r"Verify return code: (.*)$", first),
    ("http", r"^(HTTP/1\.\d \d+)", first),
    ("again", r"^(New|Reused), TLSv", second),
]
v = {k: grab(p, t) for k, p, t in fields}
print(f"{name}: {v['version']} {v['suite']}, key exchange {v['kx']}, certificate {v['sig']}, "
      f"verify {v['verify']}, {v['http']}; the first session offered again: {v['again']}")
PY
done
cat "$work/negotiated"
grep -q "verify 0 (ok)" "$work/negotiated" || { echo "a server did not verify against the CA"; exit 1; }

# --- the runs -------------------------------------------------------------------------------
full() { # name, port
  local name="$1" port="$2" pid_var="${1}_pid" t0 t1 c0 c1 i failed=0 clients=()
  c0="$(cpu_ticks "${!pid_var}")"
  t0="$(date +%s.%N)"
  for i in $(seq 1 "$HANDSHAKE_CLIENTS"); do
    taskset -c 0 openssl s_time -connect "127.0.0.1:$port" -CAfile "$pki/ca.crt" -new \
      -www /api/v1/health -time "$DURATION" >"$work/stime.$i" 2>&1 &
    clients+=($!)
  done
  for i in "${clients[@]}"; do wait "$i" || failed=1; done
  t1="$(date +%s.%N)"
  c1="$(cpu_ticks "${!pid_var}")"
  [ "$failed" = 0 ] || { echo "openssl s_time failed against $name:"; cat "$work"/stime.*; exit 1; }
  python3 - "$work" "$HANDSHAKE_CLIENTS" "$name" "$t0" "$t1" "$c0" "$c1" "$(getconf CLK_TCK)" >> "$work/results" <<'PY'
import re, sys
d, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0, t1, c0, c1, hz = (float(x) for x in sys.argv[4:9])
total, bytes_per = 0, []
for i in range(1, n + 1):
    text = open(f"{d}/stime.{i}").read()
    m = re.search(r"(\d+) connections in \d+ real seconds, (\d+) bytes read per connection", text)
    if not m:
        sys.exit(f"s_time output not understood:\n{text}")
    total += int(m.group(1)); bytes_per.append(int(m.group(2)))
# A connection that read no response is an error (s_time counts it anyway).
errors = 0 if min(bytes_per) > 0 else total
print("full", name, total / (t1 - t0), "nan", "nan", errors, (c1 - c0) / hz, t1 - t0, total)
PY
}
wrk_run() { # mode (close|keepalive), name, base url[, path, server (whose CPU is read)]
  local mode="$1" name="$2" url="$3${4:-/api/v1/health}" pid_var="${5:-$2}_pid" c0 c1 t0 t1 extra=()
  [ "$mode" = close ] && extra=(-H 'Connection: close')
  c0="$(cpu_ticks "${!pid_var}")"
  t0="$(date +%s.%N)"
  taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${extra[@]}" "$url" > "$work/wrk.txt"
  t1="$(date +%s.%N)"
  c1="$(cpu_ticks "${!pid_var}")"
  python3 - "$work/wrk.txt" "$mode" "$name" "$t0" "$t1" "$c0" "$c1" "$(getconf CLK_TCK)" >> "$work/results" <<'PY'
import re, sys
path, mode, name = sys.argv[1:4]
t0, t1, c0, c1, hz = (float(x) for x in sys.argv[4:9])
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
def pct(p):
    v, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
errors = 0
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if m: errors += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m: errors += sum(int(x) for x in m.groups())
print(mode, name, rps, pct(50), pct(99), errors, (c1 - c0) / hz, t1 - t0, total)
PY
}

echo "load average before: $(loadavg)"
echo "$(loadavg)" > "$work/load.before"
echo "(1a) $HANDSHAKE_CLIENTS x openssl s_time -new, (1b) wrk -t1 -c$CONNECTIONS -H 'Connection: close', (2) wrk -t1 -c$CONNECTIONS keep-alive;"
echo "     ${DURATION}s each, clients on CPU 0, server on CPU 1, x $ROUNDS rounds"
: > "$work/results"
: > "$work/rounds"
for round in $(seq 1 "$ROUNDS"); do
  echo "  round $round/$ROUNDS (load average $(loadavg))"
  echo "$round $(loadavg)" >> "$work/rounds"
  # Alternate which target goes first, so neither always follows the other's TIME_WAITs.
  order=(cloud nginx); [ $((round % 2)) = 0 ] && order=(nginx cloud)
  for name in "${order[@]}"; do
    port="$cloud_port"; url="$cloud"; [ "$name" = nginx ] && { port="$nginx_port"; url="$via_nginx"; }
    full "$name" "$port"
    wrk_run close "$name" "$url"
    wrk_run keepalive "$name" "$url"
  done
  for name in "${order[@]}"; do
    plain_var="${name}_plain"
    wrk_run keepalive "${name}_plain" "${!plain_var}"
  done
  wrk_run keepalive cloud_health "$cloud" /health cloud
done
echo "load average after: $(loadavg)"

# PERF_DIR=folder: after the measured rounds, one more run of each kind per TLS target under
# `perf record -e cpu-clock` on the server process (not in the table), with a flat report.
if [ -n "${PERF_DIR:-}" ]; then
  command -v perf >/dev/null || { echo "PERF_DIR needs perf" >&2; exit 1; }
  mkdir -p "$PERF_DIR"
  echo "profiling into $PERF_DIR (not counted)"
  mv "$work/results" "$work/results.measured"
  for name in cloud nginx; do
    port="$cloud_port"; url="$cloud"; [ "$name" = nginx ] && { port="$nginx_port"; url="$via_nginx"; }
    pid_var="${name}_pid"
    for mode in full close keepalive; do
      perf record -q -e cpu-clock -F 1999 -g -p "${!pid_var}" -o "$PERF_DIR/$name.$mode.data" 2>/dev/null &
      perf_pid=$!
      pids+=("$perf_pid")
      sleep 0.5
      if [ "$mode" = full ]; then full "$name" "$port"; else wrk_run "$mode" "$name" "$url"; fi
      kill -INT "$perf_pid"; wait "$perf_pid" || true
      perf report -q -i "$PERF_DIR/$name.$mode.data" --stdio --no-children --sort dso,sym -g none \
        2>/dev/null | grep -v '^$' | head -80 > "$PERF_DIR/$name.$mode.txt" || true
    done
  done
  mv "$work/results.measured" "$work/results"
fi

# --- the table ------------------------------------------------------------------------------
echo
echo "$(nproc) CPUs; $(uname -r); $(openssl version | cut -d' ' -f1-2); nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
python3 - "$work" "$ROUNDS" "$CONNECTIONS" "$HANDSHAKE_CLIENTS" <<'PY'
import math, statistics as st, sys
d, rounds, conns, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = {}
for line in open(f"{d}/results"):
    mode, name, *vals = line.split()
    rows.setdefault((mode, name), []).append([float(v) for v in vals])
med = lambda key, i: st.median(r[i] for r in rows[key])
print("negotiated: " + "; ".join(l.strip() for l in open(f"{d}/negotiated")))
print("load average per round: " + "; ".join(
    f"{l.split()[0]}: {' '.join(l.split()[1:])}" for l in open(f"{d}/rounds")))
print("load average before / after: " + open(f"{d}/load.before").read().strip())
titles = {
    "full": f"(1a) full handshakes, {clients} x openssl s_time -new (one HTTP/1.0 GET each), connections/s",
    "close": f"(1b) wrk -c{conns} -H 'Connection: close' (new connection per request, resumed where offered), req/s",
    "keepalive": f"(2) wrk -c{conns} keep-alive, req/s (_plain: without TLS; cloud_health: the cloud's /health, no database ping)",
}
ok = lambda b: "PASS" if b else "FAIL"
for mode in ("full", "close", "keepalive"):
    print(f"\n{titles[mode]}, medians of {rounds}")
    print(f"{'target':11} {'per s':>8} {'p50 ms':>7} {'p99 ms':>7} {'server CPU':>10} {'CPU us/op':>9} {'errors':>6} | per round")
    for name in ("cloud", "nginx", "cloud_plain", "nginx_plain", "cloud_health"):
        if (mode, name) not in rows:
            continue
        r = rows[(mode, name)]
        # server CPU share of the wall time, and CPU microseconds per connection or request
        cpu = st.median(x[4] / x[5] for x in r)
        per_op = st.median(x[4] / x[6] * 1e6 for x in r)
        p50, p99 = med((mode, name), 1), med((mode, name), 2)
        lat = lambda v: "-" if math.isnan(v) else f"{v:.3f}"
        errors = sum(int(x[3]) for x in r)
        runs = " ".join(f"{x[0]:.0f}" for x in r)
        print(f"{name:11} {med((mode, name), 0):8.0f} {lat(p50):>7} {lat(p99):>7} {cpu * 100:9.0f}% "
              f"{per_op:9.1f} {errors:6} | {runs}")
    ratio = med((mode, "cloud"), 0) / med((mode, "nginx"), 0)
    cost = (st.median(x[4] / x[6] for x in rows[(mode, "nginx")])
            / st.median(x[4] / x[6] for x in rows[(mode, "cloud")]))
    print(f"cloud/nginx: {ratio:.2f}x throughput (target >= 0.8x: {ok(ratio >= 0.8)}); "
          f"{cost:.2f}x nginx's server CPU efficiency (nginx CPU per op / cloud CPU per op)")
    if mode == "keepalive":
        us = lambda name: st.median(x[4] / x[6] * 1e6 for x in rows[(mode, name)])
        print(f"what TLS adds per keep-alive request (server CPU): cloud {us('cloud') - us('cloud_plain'):.1f} us, "
              f"nginx {us('nginx') - us('nginx_plain'):.1f} us; plain HTTP cloud/nginx: "
              f"{med((mode, 'cloud_plain'), 0) / med((mode, 'nginx_plain'), 0):.2f}x")
PY
