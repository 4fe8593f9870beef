# Shared by the benchmarks that run a local cloud (bench/transfer.sh, bench/link_download.sh,
# bench/browser_upload.sh): Debian's Chromium and chromedriver when missing, the release
# binaries, a private work folder removed on exit, and a local `mftplus dev` cloud with rate
# limits out of the way.
# Source it from the repository root; it sets MFTPLUS, MFTCTL, work, server, admin_key.

# Installs the Debian packages behind the commands named as `command:package`.
bench_need() {
  local need=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

bench_build() {
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building release binaries"
    cargo build --release -q -p mftplus -p mftctl
  fi
  # MFTPLUS_BIN / MFTCTL_BIN run other builds, for an A/B of a change.
  MFTPLUS="${MFTPLUS_BIN:-$PWD/target/release/mftplus}"
  MFTCTL="${MFTCTL_BIN:-$PWD/target/release/mftctl}"
}

# A work folder under BENCH_DIR (or TMPDIR); the cloud and chromedriver are stopped and the
# folder removed on exit.
bench_workdir() {
  work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mftplus-$1.XXXXXX")"
  cloud_pid=""
  driver_pid=""
  trap 'bench_cleanup || true' EXIT
}

bench_cleanup() {
  [ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null
  [ -n "$cloud_pid" ] && kill "$cloud_pid" 2>/dev/null && wait "$cloud_pid" 2>/dev/null
  rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# `mftplus dev` (no hub, no agent) on 127.0.0.1 with its data in $work/cloud; extra YAML lines
# on standard input go into its server.yaml after the rate limits.
bench_start_cloud() {
  mkdir -p "$work/cloud" && chmod 700 "$work/cloud"
  {
    printf 'mode: development\nrate_limit:\n  per_credential_per_minute: 100000000\n'
    printf '  per_address_per_minute: 100000000\n'
    cat
  } > "$work/cloud/server.yaml"
  local port
  port="$(free_port)"
  RUST_LOG=warn "$MFTPLUS" dev --no-hub --no-agent --data-dir "$work/cloud" --listen "127.0.0.1:$port" \
    --metrics-listen 127.0.0.1:0 >"$work/cloud.out" 2>"$work/cloud.err" &
  cloud_pid=$!
  for _ in $(seq 1 300); do grep -q "API key:" "$work/cloud.out" 2>/dev/null && break; sleep 0.1; done
  admin_key="$(awk '/API key:/ {print $3}' "$work/cloud.out")"
  [ -n "$admin_key" ] || { echo "the cloud did not start:"; cat "$work/cloud.err"; exit 1; }
  server="http://127.0.0.1:$port"
}

bench_start_chromedriver() {
  driver_port="$(free_port)"
  chromedriver --port="$driver_port" >"$work/chromedriver.log" 2>&1 &
  driver_pid=$!
}

# ROUNDS rounds of the two round functions, alternating which goes first; each appends its
# `name rate` line to $work/results.txt.
bench_alternate() {
  local first="$1" second="$2" round
  : > "$work/results.txt"
  for round in $(seq 1 "$ROUNDS"); do
    echo "round $round/$ROUNDS"
    if [ $((round % 2)) = 1 ]; then "$first"; "$second"; else "$second"; "$first"; fi
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
