#!/usr/bin/env bash
# Load run: the same handler reached without credentials, with an API key and with a JWT, on
# one `mftplus dev` cloud, in the same run, with wrk. The binary is built with the
# `bench-routes` feature, which adds /bench/public and /bench/authenticated (same handler as
# /health). The server is pinned to CPU 1 and wrk to CPU 0 so the server's CPU is what is
# measured and the two do not steal from each other. Prints requests/s and p99.
# The three targets alternate for ROUNDS rounds and the medians are compared, so warm-up and
# drift on a noisy machine hit all three alike.
# Usage: bench/auth_load.sh [seconds per run] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"
ROUNDS="${3:-3}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p mftplus --features bench-routes

work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/data" && chmod 700 "$work/data"
# Rate limiting stays on (its cost is part of the measurement) with limits above the load.
cat > "$work/data/server.yaml" <<YAML
mode: development
rate_limit:
  per_credential_per_minute: 100000000
  per_address_per_minute: 100000000
YAML
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=warn taskset -c 1 target/release/mftplus dev --no-hub --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/out.txt" 2>"$work/err.txt" &
pid=$!
for _ in $(seq 1 100); do grep -q "API key:" "$work/out.txt" 2>/dev/null && break; sleep 0.1; done
key="$(awk '/API key:/ {print $3}' "$work/out.txt")"
password="$(awk '/Password:/ {print $2}' "$work/out.txt")"
base="http://127.0.0.1:$port"
token="$(curl -fsS -H 'Content-Type: application/json' -d "{\"email\":\"admin@example.com\",\"password\":\"$password\"}" "$base/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

run() { # name, path, extra wrk args...
  local name="$1" path="$2"; shift 2
  taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$base$path" > "$work/$name.txt"
  awk '/Requests\/sec/ {print $2}' "$work/$name.txt" >> "$work/$name.rps"
  awk '$1 == "99%" {print $2}' "$work/$name.txt" >> "$work/$name.p99"
}
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s (CPU 0) x $ROUNDS rounds against mftplus dev on SQLite (CPU 1)"
for _ in $(seq 1 "$ROUNDS"); do
  run public /bench/public
  run api_key /bench/authenticated -H "X-API-Key: $key"
  run jwt /bench/authenticated -H "Authorization: Bearer $token"
done
python3 - "$work" <<'PY'
import statistics, sys
d = sys.argv[1]
def rps(name): return [float(x) for x in open(f"{d}/{name}.rps").read().split()]
def p99(name): return open(f"{d}/{name}.p99").read().split()
base = statistics.median(rps("public"))
for name in ("public", "api_key", "jwt"):
    med = statistics.median(rps(name))
    print(f"{name:16} median {med:10.0f} req/s  runs {' '.join(f'{x:.0f}' for x in rps(name))}  p99 {' '.join(p99(name))}")
for name in ("api_key", "jwt"):
    share = statistics.median(rps(name)) / base * 100
    print(f"{name}: {share:.1f}% of unauthenticated throughput (authentication costs {100 - share:.1f}%)")
PY
