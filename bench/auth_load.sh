#!/usr/bin/env bash
# Load run: an authenticated GET (API key, and JWT) against an unauthenticated GET of the same
# size, on one `mftplus dev` cloud, in the same run, with wrk. Prints requests/s and p99.
# Usage: bench/auth_load.sh [seconds per run] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-64}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p mftplus

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
RUST_LOG=warn target/release/mftplus dev --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/out.txt" 2>"$work/err.txt" &
pid=$!
for _ in $(seq 1 100); do grep -q "API key:" "$work/out.txt" 2>/dev/null && break; sleep 0.1; done
key="$(awk '/API key:/ {print $3}' "$work/out.txt")"
password="$(awk '/Password:/ {print $2}' "$work/out.txt")"
base="http://127.0.0.1:$port"
token="$(curl -fsS -H 'Content-Type: application/json' -d "{\"email\":\"admin@example.com\",\"password\":\"$password\"}" "$base/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

run() { # name, path, extra wrk args...
  local name="$1" path="$2"; shift 2
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$base$path" > "$work/$name.txt"
  local rps p99
  rps="$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")"
  p99="$(awk '$1 == "99%" {print $2}' "$work/$name.txt")"
  printf '%-28s %12s req/s   p99 %s\n' "$name" "$rps" "$p99"
  echo "$rps" > "$work/$name.rps"
}
echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s against mftplus dev (SQLite), $(nproc) cores"
run public_health /health
run apikey_whoami /api/v1/auth/whoami -H "X-API-Key: $key"
run jwt_whoami /api/v1/auth/whoami -H "Authorization: Bearer $token"
python3 - "$work" <<'PY'
import sys
d = sys.argv[1]
base = float(open(f"{d}/public_health.rps").read())
for name in ("apikey_whoami", "jwt_whoami"):
    rps = float(open(f"{d}/{name}.rps").read())
    print(f"{name}: {rps / base * 100:.1f}% of unauthenticated throughput (auth cost {100 - rps / base * 100:.1f}%)")
PY
