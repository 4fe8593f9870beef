#!/usr/bin/env bash
# The host agent's own cost and its speed at running an operator's edit, beside what a user
# would script instead, all on this machine in one run:
#
#  1. Idle cost per report cycle: the release `mftplus-agent` (AGENT="…/mftplus agent" measures
#     the all-in-one binary instead) against a local `mftplus dev`
#     cloud whose envelope asks for a report every second; CPU (utime+stime from
#     /proc/PID/stat) and VmRSS/VmHWM (/proc/PID/status) over a window, divided by the
#     reports the cloud recorded in it. Once with no guest, once with GUESTS containers.
#     Peer: one cycle of a shell "agent" — `docker ps` of the same containers plus a `curl`
#     POST of a report — timed by /usr/bin/time (user+sys, max RSS of the biggest process).
#  2. Edit → container running: `mftctl desired set` of a new guest, until Docker says it
#     runs; alternating with the peer, `docker create` + `docker start` of the same image.
#     The agent waits for its next poll (POLL seconds) before it acts, so the expected figure
#     is about half a poll interval plus the container start.
#
# Usage: bench/agent.sh                 (ROUNDS=7 WINDOW=30 GUESTS=3 POLL=1; SKIP_BUILD=1 uses
#        the release binaries as they are)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-7}"
WINDOW="${WINDOW:-30}"
GUESTS="${GUESTS:-3}"
POLL="${POLL:-1}"

need=()
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v bc >/dev/null || need+=(bc)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
docker info >/dev/null 2>&1 || { echo "no Docker Engine: nothing to measure" >&2; exit 1; }

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building release binaries"
  cargo build --release -q -p mftplus -p mftctl -p mftplus-agent
fi
MFTPLUS="$PWD/target/release/mftplus"
# The agent as boxes install it (the slim binary; `mftplus agent` runs the same code).
AGENT="${AGENT:-$PWD/target/release/mftplus-agent}"
MFTCTL="$PWD/target/release/mftctl"

work="$(mktemp -d "${TMPDIR:-/tmp}/mftplus-agent-bench.XXXXXX")"
chmod 700 "$work"
tag="bench$$"
image="mftplus-bench-guest:$tag"
cloud_pid=""
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "$cloud_pid" ] && kill "$cloud_pid" 2>/dev/null && wait "$cloud_pid" 2>/dev/null
  docker ps -aq --filter "label=io.mftplus.guest" --filter "name=$tag" | xargs -r docker rm -f >/dev/null
  docker ps -aq --filter "name=peer-$tag" | xargs -r docker rm -f >/dev/null
  docker rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap 'cleanup || true' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }

# --- a guest image built here (no registry): a static binary that sleeps until SIGTERM ------
mkdir -p "$work/image"
cat >"$work/image/sleeper.c" <<'C'
#include <signal.h>
#include <unistd.h>
static void leave(int sig) { (void)sig; _exit(0); }
int main(void) { signal(SIGTERM, leave); signal(SIGINT, leave); for (;;) pause(); }
C
gcc -static -Os -o "$work/image/sleeper" "$work/image/sleeper.c"
printf 'FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT ["/sleeper"]\n' >"$work/image/Dockerfile"
docker build -q -t "$image" "$work/image" >/dev/null

# --- the cloud --------------------------------------------------------------------------------
port=$(free_port)
MFTPLUS__FLEET__POLL_INTERVAL_SECONDS="$POLL" RUST_LOG=warn "$MFTPLUS" dev --no-hub --no-agent \
  --data-dir "$work/cloud" --listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 >"$work/cloud.out" 2>&1 &
cloud_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 200); do grep -q "API key:" "$work/cloud.out" 2>/dev/null && break; sleep 0.05; done
key=$(awk '/API key:/ {print $3}' "$work/cloud.out")
export MFTPLUS_SERVER="$url" MFTPLUS_API_KEY="$key"
password="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
curl -sf -X POST "$url/api/v1/customers" -H "X-API-Key: $key" -H 'Content-Type: application/json' \
  -d "{\"id\":\"bench\",\"name\":\"Bench\",\"email\":\"b@example.com\",\"retrieval_password\":\"$password\"}" >/dev/null
printf '%s' "$password" >"$work/password"; chmod 600 "$work/password"
cat >"$work/agent.yaml" <<YAML
server:
  url: $url
state_dir: $work/agent
driver: docker
poll:
  min_interval: ${POLL}s
YAML
$AGENT enroll --config "$work/agent.yaml" --customer bench --password-file "$work/password" >"$work/enroll.out"
host=$(awk '/^Enrolled host/ {print $3}' "$work/enroll.out")
RUST_LOG=warn $AGENT --config "$work/agent.yaml" >"$work/agent.log" 2>&1 &
agent_pid=$!
reports() { curl -sf "$url/api/v1/hosts/$host/reports?limit=1000" -H "X-API-Key: $key" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
clk=$(getconf CLK_TCK)

idle_window() {
  sleep 3
  local r0 c0 r1 c1
  r0=$(reports); c0=$(ticks "$agent_pid")
  sleep "$WINDOW"
  r1=$(reports); c1=$(ticks "$agent_pid")
  local cycles=$((r1 - r0))
  awk -v c="$((c1 - c0))" -v n="$cycles" -v hz="$clk" -v rss="$(status_kb "$agent_pid" VmRSS)" \
    -v hwm="$(status_kb "$agent_pid" VmHWM)" -v what="$1" \
    'BEGIN {printf "agent, %s: %d cycles in the window, %.2f ms CPU per cycle, VmRSS %.1f MiB, VmHWM %.1f MiB\n", what, n, (c*1000/hz)/n, rss/1024, hwm/1024}'
}

desired() { # guests as "id:running" words
  {
    echo "guests:"
    for g in "$@"; do
      printf '  %s:\n    spec:\n      kind: container\n      image: %s\n      memory_mb: 32\n    run_state: running\n' "$g" "$image"
    done
  } >"$work/desired.yaml"
  "$MFTCTL" desired set "$host" "$work/desired.yaml" >/dev/null
}
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = "true" ]; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
idle_window "no guest"
guests=()
for i in $(seq "$GUESTS"); do guests+=("g$i-$tag"); done
desired "${guests[@]}"
for g in "${guests[@]}"; do for _ in $(seq 300); do running "mftplus-$g" && break; sleep 0.05; done; done
idle_window "$GUESTS guests"

# Peer cycle: what a shell agent would run each time.
peer_cycle() {
  docker ps -a --filter label=io.mftplus.agent=1 --format '{{json .}}' >/dev/null
  curl -s -o /dev/null -X POST "$url/api/v1/health" || true
}
export -f peer_cycle; export url
for _ in 1 2 3; do
  /usr/bin/time -f "%U %S %M" bash -c peer_cycle 2>>"$work/peer.times"
done
awk '{cpu=($1+$2)*1000; if (cpu>m) m=cpu; if ($3>r) r=$3} END {printf "peer shell cycle (docker ps + curl): %.0f ms CPU (max of 3), max RSS %.1f MiB\n", m, r/1024}' "$work/peer.times"

# --- edit → running, alternating with the peer ------------------------------------------------
: >"$work/agent.lat"; : >"$work/peer.lat"
for round in $(seq "$ROUNDS"); do
  g="e$round-$tag"; guests+=("$g")
  t0=$(now); desired "${guests[@]}"
  until running "mftplus-$g"; do sleep 0.02; done
  echo "$(now) - $t0" | bc >>"$work/agent.lat"
  p="peer-$tag-$round"
  t0=$(now)
  docker create --name "$p" --memory 32m --label "bench=$tag" "$image" >/dev/null
  docker start "$p" >/dev/null
  until running "$p"; do sleep 0.02; done
  echo "$(now) - $t0" | bc >>"$work/peer.lat"
done
a=$(median <"$work/agent.lat"); p=$(median <"$work/peer.lat")
echo "edit → running, median of $ROUNDS: agent ${a}s (poll ${POLL}s), docker create+start ${p}s; ratio $(echo "scale=2; $a / $p" | bc)"
echo "agent per round: $(tr '\n' ' ' <"$work/agent.lat")"
echo "peer per round:  $(tr '\n' ' ' <"$work/peer.lat")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
