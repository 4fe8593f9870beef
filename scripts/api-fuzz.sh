#!/usr/bin/env bash
# Fuzzes the whole API from its own OpenAPI document (/api/v1/openapi.json) with schemathesis
# (from PyPI, pinned, in its own virtualenv under target/): starts a cloud on embedded SQLite
# (`mftplus dev --no-hub --no-agent`, rate limits off so every request reaches its handler),
# creates a customer and a user for path parameters to hit, then runs the coverage and fuzzing
# phases with an admin API key. Fails on any 5xx, any answer that does not match the document
# (status, content type, body schema), a request that breaks the document yet is accepted, or a
# schemathesis error.
# Usage: scripts/api-fuzz.sh [max examples per operation, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-${API_FUZZ_EXAMPLES:-100}}"
schemathesis_version="4.32.5"
venv="target/api-fuzz-venv"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${API_FUZZ_KEEP:-}" ] && trap - EXIT

if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$schemathesis_version"; then
  echo "api-fuzz: installing schemathesis $schemathesis_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version" >&2
fi

cargo build --quiet --locked -p mftplus
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
MFTPLUS__RATE_LIMIT__ENABLED=false target/debug/mftplus dev --no-hub --no-agent \
  --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/dev.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  grep -q "API key:" "$work/dev.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/dev.log" >&2; exit 1; }
  sleep 0.2
done
key="$(awk '/API key:/ {print $3}' "$work/dev.log")"
[ -n "$key" ] || { echo "api-fuzz: the dev cloud printed no API key" >&2; cat "$work/dev.log" >&2; exit 1; }
auth="Authorization: Bearer $key"

# Real resources, so operations on one reach past the 404.
customer="$(curl -fsS -H "$auth" -H 'content-type: application/json' \
  -d '{"id":"fuzz","name":"Fuzz Kft","email":"fuzz@example.com"}' "$base/api/v1/customers" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["customer"]["id"])')"
curl -fsS -o /dev/null -H "$auth" -H 'content-type: application/json' \
  -d '{"email":"fuzz-target@example.com","name":"Fuzz Target"}' "$base/api/v1/users"
export API_FUZZ_CUSTOMER="$customer" API_FUZZ_USER="fuzz-target@example.com"

# The operations that retire the caller's own credential (rotate or delete its API key, log
# out, revoke tokens) run last, each pass with a fresh key, so they cannot starve the others.
self_retiring='^(apikeys_rotate|apikeys_delete|auth_logout|tokens_revoke|user_tokens_revoke)$'
run() {
  "$venv/bin/st" --config-file scripts/api-fuzz.toml run "$base/api/v1/openapi.json" \
    --max-examples "$examples" --workers 1 --seed 1 --phases examples,coverage,fuzzing \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
    ${API_FUZZ_ARGS:-} "$@"
}
echo "api-fuzz: $examples examples per operation against $base" >&2
run -H "$auth" --exclude-operation-id-regex "$self_retiring"
second="$(curl -fsS -H "$auth" -H 'content-type: application/json' -d '{"name":"fuzz second key"}' \
  "$base/api/v1/apikeys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
run -H "Authorization: Bearer $second" --include-operation-id-regex "$self_retiring"
