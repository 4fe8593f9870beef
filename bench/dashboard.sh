#!/usr/bin/env bash
# Dashboard render times (issue 15): the hosts page over a fleet of HOSTS hosts and the
# transfers page over TRANSFERS transfers, each beside nginx serving a saved copy of the same
# page as a static file (the floor for sending those bytes over HTTP here), and the time from a
# host report to the open hosts page showing it.
#
# The fleet and the transfers are written straight through the Store (`mftplus-bench seed`,
# `seed-transfers`): enrollment over HTTP would measure Argon2id. The cloud (release build)
# runs pinned to CPU 1, nginx (one worker) pinned to CPU 1 as well, and `mftplus-bench pages`
# on CPU 0 times both over keep-alive connections in alternating rounds.
#
# Needs nginx (Debian's nginx-light), curl, python3, taskset.
#
# Usage: bench/dashboard.sh                 HOSTS=10000 TRANSFERS=100000 ROUNDS=31
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS="${HOSTS:-10000}"
TRANSFERS="${TRANSFERS:-100000}"
ROUNDS="${ROUNDS:-31}"
EMAIL="bench-admin@example.com"

for tool in nginx curl python3 taskset timeout; do
  command -v "$tool" >/dev/null || { echo "dashboard.sh needs $tool" >&2; exit 1; }
done

echo "building release binaries"
cargo build --release -q -p mftplus -p mftplus-bench
MFTPLUS="$PWD/target/release/mftplus"
BENCH="$PWD/target/release/mftplus-bench"

work="$(mktemp -d "${TMPDIR:-/tmp}/mftplus-dashboard-bench.XXXXXX")"
chmod 700 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work" "${www:-}"
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

db="sqlite://$work/cloud.db"
echo "seeding $HOSTS hosts and $TRANSFERS transfers"
timeout 900 "$BENCH" seed --database-url "$db" --hosts "$HOSTS" --guests 3 --out "$work/hosts.keys" >/dev/null
timeout 900 "$BENCH" seed-transfers --database-url "$db" --transfers "$TRANSFERS" >/dev/null

printf 'mode: development\n' > "$work/server.yaml"
umask 077
python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$work/password"
umask 022
cloud_env=(
  DATABASE_URL="$db"
  JWT_SECRET="dashboard-bench-secret-0123456789-0123456789"
  MFTPLUS__RATE_LIMIT__ENABLED=false
  MFTPLUS__TRANSFERS__BLOB_PATH="$work/blobs"
  RUST_LOG=warn
)
env "${cloud_env[@]}" "$MFTPLUS" cloud --config "$work/server.yaml" init \
  --admin-email "$EMAIL" --password-file "$work/password" >/dev/null

port="$(free_port)"
env "${cloud_env[@]}" MFTPLUS__SERVER__LISTEN="127.0.0.1:$port" \
  MFTPLUS__SERVER__METRICS_LISTEN="127.0.0.1:0" \
  taskset -c 1 "$MFTPLUS" cloud --config "$work/server.yaml" > "$work/cloud.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$url/health" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$url/health" || { cat "$work/cloud.log" >&2; exit 1; }

# The peer's files: the very pages the cloud renders, saved once.
cookie="$(curl -sS -o /dev/null -D - -X POST "$url/login" -H "origin: $url" \
  -H 'sec-fetch-site: same-origin' --data-urlencode "email=$EMAIL" \
  --data-urlencode "password=$(cat "$work/password")" --data-urlencode 'next=/' \
  | awk -F'[ ;]' 'tolower($1) == "set-cookie:" {print $2}')"
# nginx's worker runs as another user: its files live outside the private work folder.
www="$(mktemp -d "${TMPDIR:-/tmp}/mftplus-dashboard-www.XXXXXX")"
chmod 755 "$www"
curl -fsS -H "cookie: $cookie" "$url/hosts" > "$www/hosts.html"
curl -fsS -H "cookie: $cookie" "$url/transfers" > "$www/transfers.html"
chmod 644 "$www"/*.html

nginx_port="$(free_port)"
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    root $www;
    default_type text/html;
  }
}
EOF
taskset -c 1 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
for _ in $(seq 1 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:$nginx_port/hosts.html" 2>/dev/null && break
  sleep 0.1
done

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c 0 "$BENCH" pages --url "$url" --email "$EMAIL" --password-file "$work/password" \
  --rounds "$ROUNDS" \
  --page "hosts page ($HOSTS hosts)|/hosts|data-host=" \
  --page "nginx: the same bytes|http://127.0.0.1:$nginx_port/hosts.html|data-host=" \
  > "$work/hosts.json"
taskset -c 0 "$BENCH" pages --url "$url" --email "$EMAIL" --password-file "$work/password" \
  --rounds "$ROUNDS" \
  --page "transfers page ($TRANSFERS transfers)|/transfers|<table" \
  --page "nginx: the same bytes|http://127.0.0.1:$nginx_port/transfers.html|<table" \
  > "$work/transfers.json"
taskset -c 0 "$BENCH" report-to-page --url "$url" --email "$EMAIL" \
  --password-file "$work/password" --keys "$work/hosts.keys" --rounds 21 > "$work/live.json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$work/hosts.json" "$work/transfers.json" "$work/live.json"
