#!/usr/bin/env bash
# The agents' file outbox and inbox (decision 0030) beside `rsync` over ssh, in one run:
#   a real `mftplus cloud` (release build, SQLite, fleet poll interval 1 s, two boxes per
#   customer) on 127.0.0.1; box A with an outbox rule sending to `host:<B>` (settle 1 s, check
#   interval 1 s), box B with an inbox (check interval 1 s); both `driver: none`, enrolled with
#   the customer's retrieval password like a real box.
#   (1) SMALL files of 1-8 KiB (random sizes and bytes), each copied beside A's outbox with its
#       `<name>.done` marker (so the settle wait does not apply), untimed, then renamed into the
#       outbox (file, then marker); timed from the first rename until all of them are in B's
#       inbox (the inbox counted every 0.1 s). (Until 2026-12-07 the copies were made inside
#       the timed part, ~1.5 s of file creation rsync's pre-existing source never pays.) The
#       time until the last one left A's outbox (moved to `sent/`) is recorded beside it.
#   (2) One LARGE random file (LARGE_MIB, default 1 GiB), dropped into A's outbox as a hard link
#       (no copy) with its marker; timed until it is in B's inbox.
#   The peer: `rsync -a -e "ssh -c aes256-gcm@openssh.com …"` of the same folder / the same file
#   to this script's own sshd on 127.0.0.1, cold (destination absent), followed by an fsync of
#   what it wrote (`sync FILE…`): the agent's inbox fsyncs every file before linking it into
#   place, so both are timed to the same durability. rsync's time before that fsync is shown too.
#
# Every received file is compared with its source (outside the timed part). Rounds alternate
# which goes first; per-round times, medians, ratios and the load average are printed. The
# agents, the cloud and the sshd are the script's own and are stopped by the EXIT trap.
#
# Usage: bench/agent_files.sh                   (1,000 small files, 1 GiB, 3 rounds)
#        SMALL_FILES=1000 LARGE_MIB=1024 ROUNDS=5 bench/agent_files.sh
#        BENCH_DIR=/some/disk bench/agent_files.sh   (where the temporary folder goes)
#        SKIP_BUILD=1 bench/agent_files.sh            (target/release as built)
#        SKIP_BUILD=1 MFTPLUS_BIN=/tmp/mftplus.before bench/agent_files.sh   (another build)
#        KEEP_WORK=1 bench/agent_files.sh             (keep the folder: logs, cloud.db)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
SMALL_FILES="${SMALL_FILES:-1000}"
LARGE_MIB="${LARGE_MIB:-1024}"
WAIT_SECONDS="${WAIT_SECONDS:-900}" # the longest one phase may take before the run fails
CIPHER="aes256-gcm@openssh.com"

# --- tools ------------------------------------------------------------------------------------
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v rsync >/dev/null || need+=(rsync)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
for tool in curl python3 ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "agent_files.sh needs $tool" >&2; exit 1; }
done

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "building release binaries"
  nice -n 10 cargo build --release -q -p mftplus -p mftctl
fi
# MFTPLUS_BIN runs another build (the cloud and both agents) for an A/B of a change.
MFTPLUS="${MFTPLUS_BIN:-$PWD/target/release/mftplus}"

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mftplus-agent-files.XXXXXX")"
chmod 700 "$work"
pids=() # cloud, agents, sshd: all started here, stopped in reverse order
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { echo "$EPOCHREALTIME"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average at start: $(loadavg)"

# --- our own sshd (as bench/transfer.sh) --------------------------------------------------------
ssh_dir="$work/ssh"
mkdir -p "$ssh_dir" "$work/peer"
chmod 700 "$ssh_dir"
ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/client_key"
cp "$ssh_dir/client_key.pub" "$ssh_dir/authorized_keys"
ssh_port="$(free_port)"
cat > "$ssh_dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $ssh_port
HostKey $ssh_dir/host_key
AuthorizedKeysFile $ssh_dir/authorized_keys
PidFile $ssh_dir/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Ciphers $CIPHER
CONF
if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
  mkdir -p /run/sshd && chmod 755 /run/sshd # sshd's privilege-separation folder
fi
/usr/sbin/sshd -D -e -f "$ssh_dir/sshd_config" 2>"$ssh_dir/sshd.log" &
pids+=($!)
SSH_OPTS=(-p "$ssh_port" -i "$ssh_dir/client_key" -o BatchMode=yes -o StrictHostKeyChecking=no
  -o UserKnownHostsFile="$ssh_dir/known_hosts" -o Compression=no -c "$CIPHER" -o LogLevel=ERROR)
for _ in $(seq 1 100); do ssh "${SSH_OPTS[@]}" 127.0.0.1 true 2>/dev/null && break; sleep 0.1; done
ssh "${SSH_OPTS[@]}" 127.0.0.1 true
RSYNC_SSH="ssh ${SSH_OPTS[*]}"

# --- the cloud ----------------------------------------------------------------------------------
export JWT_SECRET="agent-files-bench-secret-0123456789-0123456789"
export DATABASE_URL="sqlite://$work/cloud.db"
port="$(free_port)"
cloud="http://127.0.0.1:$port"
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
fleet:
  poll_interval_seconds: 1
  max_hosts_per_customer: 2
EOF
umask 077
python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$work/admin-password"
python3 -c 'import secrets; print("bench-" + secrets.token_urlsafe(18))' > "$work/retrieval-password"
umask 022
RUST_LOG=warn "$MFTPLUS" cloud init --config "$work/server.yaml" --admin-email admin@example.com \
  --password-file "$work/admin-password" > /dev/null
RUST_LOG=warn "$MFTPLUS" cloud --config "$work/server.yaml" > "$work/cloud.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do curl -fsS -o /dev/null "$cloud/health" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$cloud/health" || { echo "the cloud did not start:" >&2; cat "$work/cloud.log" >&2; exit 1; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
token="$(python3 -c 'import json,sys; print(json.dumps({"email": "admin@example.com", "password": open(sys.argv[1]).read().strip()}))' "$work/admin-password" \
  | curl -fsS -H 'Content-Type: application/json' --data-binary @- "$cloud/api/v1/auth/login" | json access_token)"
python3 -c 'import json,sys; print(json.dumps({"id": "bench", "name": "Bench", "email": "it@bench.example.com", "retrieval_password": open(sys.argv[1]).read().strip()}))' "$work/retrieval-password" \
  | curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data-binary @- \
    "$cloud/api/v1/customers" > /dev/null

# --- the two boxes ------------------------------------------------------------------------------
inbox="$work/b/inbox"
outbox="$work/a/outbox"
box_config() { # DIR, FILES-YAML
  mkdir -p "$1"
  cat > "$1/agent.yaml" <<EOF
server:
  url: $cloud
  timeout: 60s
state_dir: $1/state
driver: none
poll:
  min_interval: 1s
backoff:
  initial: 1s
  max: 2s
disk_path: $1
$2
EOF
}
enroll() { # DIR, HOSTNAME: prints the host id
  local out
  out="$("$MFTPLUS" agent enroll --config "$1/agent.yaml" --customer bench \
    --password-file "$work/retrieval-password" --hostname "$2" 2>&1)" || { echo "$out" >&2; return 1; }
  awk '/^Enrolled host / {print $3}' <<<"$out"
}
box_config "$work/b" "files:
  inbox: $inbox
  check_interval: 1s"
host_b="$(enroll "$work/b" box-b)"
box_config "$work/a" "files:
  check_interval: 1s
  outbox:
    - watch: $outbox
      to: [\"host:$host_b\"]
      settle: 1s"
host_a="$(enroll "$work/a" box-a)"
[ -n "$host_a" ] && [ -n "$host_b" ] || { echo "enrollment printed no host id" >&2; exit 1; }
for box in b a; do
  RUST_LOG=info "$MFTPLUS" agent --config "$work/$box/agent.yaml" > "$work/$box/agent.log" 2>&1 &
  pids+=($!)
done
key_ready=no
for _ in $(seq 1 300); do
  if curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$cloud/api/v1/hosts/$host_b/transfer-key" 2>/dev/null; then
    key_ready=yes; break
  fi
  sleep 0.1
done
[ "$key_ready" = yes ] || { echo "B's transfer key was not registered:" >&2; cat "$work/b/agent.log" >&2; exit 1; }
echo "cloud $cloud; box A $host_a (outbox), box B $host_b (inbox)"

# --- the data -----------------------------------------------------------------------------------
small="$work/small"
large="$work/large.bin"
python3 - "$small" "$SMALL_FILES" <<'PY'
import os, random, sys
folder, count = sys.argv[1], int(sys.argv[2])
os.makedirs(folder)
rng = random.Random(18)
for i in range(count):
    with open(os.path.join(folder, f"file-{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(rng.randint(1024, 8192)))
PY
head -c "$((LARGE_MIB << 20))" /dev/urandom > "$large"
sync "$large"
cat "$large" > /dev/null # warm: both sides read it from the page cache
small_kib="$(du -sk --apparent-size "$small" | cut -f1)"
echo "data: $SMALL_FILES small files (${small_kib} KiB in all), one file of $LARGE_MIB MiB"

# Drops the files into the outbox and waits for them in the inbox: prints the seconds until the
# sender had sent them all (moved to sent/) and until all were in the inbox.
#   agent_drop small PREFIX    copies every small file as PREFIX-NAME, then its marker
#   agent_drop large NAME      hard-links the large file as NAME, then its marker
agent_drop() {
  python3 - "$1" "$2" "$small" "$large" "$outbox" "$inbox" "$WAIT_SECONDS" <<'PY'
import os, shutil, sys, time
mode, tag, small, large, outbox, inbox, wait = sys.argv[1:8]
def count(folder):
    try:
        return sum(1 for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))
    except FileNotFoundError:
        return 0
if mode == "small":
    # The copies and their markers are made beside the outbox first (untimed), as rsync's
    # source exists before its clock starts; the clock runs from the first rename into the
    # outbox. Creating 2,000 files takes ~1.5 s here by itself (ext4 inode allocation).
    staging = os.path.join(os.path.dirname(outbox), f"staging-{tag}")
    os.mkdir(staging)
    names = sorted(os.listdir(small))
    for name in names:
        shutil.copyfile(os.path.join(small, name), os.path.join(staging, f"{tag}-{name}"))
        open(os.path.join(staging, f"{tag}-{name}.done"), "wb").close()
    start = time.monotonic()
    for name in names:
        for suffix in ("", ".done"):  # the file first: a marker never precedes its file
            os.rename(os.path.join(staging, f"{tag}-{name}{suffix}"),
                      os.path.join(outbox, f"{tag}-{name}{suffix}"))
    os.rmdir(staging)
    expected = len(names)
else:
    start = time.monotonic()
    os.link(large, os.path.join(outbox, tag))
    open(os.path.join(outbox, tag + ".done"), "wb").close()
    expected = 1
sent_at = None
while True:
    if sent_at is None and count(os.path.join(outbox, "sent")) >= expected:
        sent_at = time.monotonic() - start
    if count(inbox) >= expected:
        done = time.monotonic() - start
        print(f"{sent_at if sent_at is not None else done:.3f} {done:.3f}")
        break
    if time.monotonic() - start > float(wait):
        sys.exit(f"timed out: {count(inbox)} of {expected} in the inbox after {wait} s")
    time.sleep(0.1)
PY
}

verify_small() { # PREFIX: every inbox file equals its source, and nothing else is there
  python3 - "$small" "$inbox" "$1" <<'PY'
import filecmp, os, sys
small, inbox, prefix = sys.argv[1:4]
got = sorted(e.name for e in os.scandir(inbox) if not e.name.startswith("."))
want = sorted(f"{prefix}-{n}" for n in os.listdir(small))
assert got == want, f"inbox holds {len(got)} files, expected {len(want)}: {sorted(set(got) ^ set(want))[:5]}"
for n in os.listdir(small):
    assert filecmp.cmp(os.path.join(small, n), os.path.join(inbox, f"{prefix}-{n}"), shallow=False), n
PY
}

clear_boxes() {
  find "$inbox" -mindepth 1 -maxdepth 1 ! -name '.*' -delete
  rm -rf "$outbox/sent"
  [ ! -e "$outbox/failed" ] || { echo "files in the outbox's failed/:" >&2; ls "$outbox/failed" >&2; exit 1; }
}

agent_small() { # ROUND
  local times cpu
  cpu="$(cpu_now)"
  times="$(agent_drop small "r$1")" || { tail -20 "$work/a/agent.log" "$work/b/agent.log" >&2; exit 1; }
  cpu="$(cpu_spent "$cpu")"
  verify_small "r$1"
  clear_boxes
  echo "agent_small $1 $times $cpu" >> "$results"
}
agent_large() {
  local times cpu
  cpu="$(cpu_now)"
  times="$(agent_drop large "large-r$1.bin")" || { tail -20 "$work/a/agent.log" "$work/b/agent.log" >&2; exit 1; }
  cpu="$(cpu_spent "$cpu")"
  cmp -s "$large" "$inbox/large-r$1.bin" || { echo "the large file arrived different" >&2; exit 1; }
  clear_boxes
  echo "agent_large $1 $times $cpu" >> "$results"
}
rsync_small() {
  local dest="$work/peer/small-r$1" t0 t1 t2
  t0=$(now)
  rsync -a -e "$RSYNC_SSH" "$small/" "127.0.0.1:$dest/"
  t1=$(now)
  find "$dest" -type f -exec sync {} +
  t2=$(now)
  diff -r -q "$small" "$dest" > /dev/null || { echo "rsync's copy differs" >&2; exit 1; }
  rm -rf "$dest"
  echo "rsync_small $1 $(python3 -c "print(f'{$t1 - $t0:.3f} {$t2 - $t0:.3f}')")" >> "$results"
}
rsync_large() {
  local dest="$work/peer/large-r$1.bin" t0 t1 t2
  t0=$(now)
  rsync -a -e "$RSYNC_SSH" "$large" "127.0.0.1:$dest"
  t1=$(now)
  sync "$dest"
  t2=$(now)
  cmp -s "$large" "$dest" || { echo "rsync's copy of the large file differs" >&2; exit 1; }
  rm -f "$dest"
  echo "rsync_large $1 $(python3 -c "print(f'{$t1 - $t0:.3f} {$t2 - $t0:.3f}')")" >> "$results"
}

# CPU seconds (user + system) the cloud, the sending and the receiving agent have used so far,
# from /proc: each agent phase records what it cost them, steadier than wall time here.
cloud_pid="${pids[1]}"; receiver_pid="${pids[2]}"; sender_pid="${pids[3]}"
cpu_now() {
  local p
  for p in "$cloud_pid" "$sender_pid" "$receiver_pid"; do
    awk '{printf "%d ", $14 + $15}' "/proc/$p/stat"
  done
}
cpu_spent() { # BEFORE (as cpu_now printed it): seconds per process since then
  python3 -c 'import sys
before, after, tck = sys.argv[1].split(), sys.argv[2].split(), int(sys.argv[3])
print(" ".join(f"{(int(a) - int(b)) / tck:.2f}" for a, b in zip(after, before)))' "$1" "$(cpu_now)" "$(getconf CLK_TCK)"
}

# --- the rounds ---------------------------------------------------------------------------------
results="$work/results"
: > "$results"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    agent_small "$r"; rsync_small "$r"; agent_large "$r"; rsync_large "$r"
  else
    rsync_small "$r"; agent_small "$r"; rsync_large "$r"; agent_large "$r"
  fi
  echo "round $r/$ROUNDS: $(grep " $r " "$results" | tr '\n' ';')  load $(loadavg)"
done
warnings="$(cat "$work/a/agent.log" "$work/b/agent.log" | grep -c -E ' (WARN|ERROR) ' || true)"

echo
echo "$SMALL_FILES small files (${small_kib} KiB), one of $LARGE_MIB MiB; $ROUNDS round(s); $(nproc) CPUs; load average at the end: $(loadavg)"
echo "agent warnings and errors in the two logs: $warnings"
python3 - "$results" "$SMALL_FILES" "$LARGE_MIB" <<'PY'
import statistics, sys
rows, cpu = {}, {}
for line in open(sys.argv[1]):
    name, rnd, first, second, *spent = line.split()
    rows.setdefault(name, {})[int(rnd)] = (float(first), float(second))
    if spent:
        cpu.setdefault(name, {})[int(rnd)] = [float(x) for x in spent]
files, mib = int(sys.argv[2]), float(sys.argv[3])
med = statistics.median
rounds = sorted(rows["agent_small"])
print()
print("seconds per round (agent: last file sent / last file in the inbox; rsync: transfer / with fsync)")
print(f"{'round':>5}  {'agent small':>17}  {'rsync small':>17}  {'agent large':>17}  {'rsync large':>17}")
for r in rounds:
    cell = lambda n: "{:7.2f} / {:7.2f}".format(*rows[n][r])
    print(f"{r:>5}  {cell('agent_small')}  {cell('rsync_small')}  {cell('agent_large')}  {cell('rsync_large')}")
a_s = med(rows["agent_small"][r][1] for r in rounds)
a_s_sent = med(rows["agent_small"][r][0] for r in rounds)
p_s = med(rows["rsync_small"][r][1] for r in rounds)
p_s_raw = med(rows["rsync_small"][r][0] for r in rounds)
a_l = med(rows["agent_large"][r][1] for r in rounds)
a_l_sent = med(rows["agent_large"][r][0] for r in rounds)
p_l = med(rows["rsync_large"][r][1] for r in rounds)
p_l_raw = med(rows["rsync_large"][r][0] for r in rounds)
ratio_s = med(rows["rsync_small"][r][1] / rows["agent_small"][r][1] for r in rounds)
ratio_l = med(rows["rsync_large"][r][1] / rows["agent_large"][r][1] for r in rounds)
print()
print("medians")
print(f"small: agent {a_s:.2f} s = {files / a_s:.0f} files/s (all sent after {a_s_sent:.2f} s); "
      f"rsync {p_s:.2f} s = {files / p_s:.0f} files/s ({p_s_raw:.2f} s = {files / p_s_raw:.0f} files/s before the fsync)")
print(f"large: agent {a_l:.2f} s = {mib / a_l:.0f} MiB/s (sent after {a_l_sent:.2f} s); "
      f"rsync {p_l:.2f} s = {mib / p_l:.0f} MiB/s ({p_l_raw:.2f} s = {mib / p_l_raw:.0f} MiB/s before the fsync)")
ok = lambda b: "PASS" if b else "FAIL"
print(f"agent/rsync files/s: {ratio_s:.2f}x (median of per-round ratios; target >= 0.5x: {ok(ratio_s >= 0.5)})")
print(f"agent/rsync MiB/s:   {ratio_l:.2f}x (median of per-round ratios; target >= 1.0x: {ok(ratio_l >= 1.0)})")
print()
print("CPU seconds of each agent phase (median of the rounds): cloud / sending agent / receiving agent")
for name, per, unit in (("agent_small", files, "ms per file"), ("agent_large", mib / 1024, "s per GiB")):
    parts = [med(cpu[name][r][i] for r in rounds) for i in range(3)]
    scale = 1000 / per if unit == "ms per file" else 1 / per
    print(f"{name[6:]:>5}: " + " / ".join(f"{p:.2f}" for p in parts)
          + f" s = {sum(parts):.2f} s; " + " / ".join(f"{p * scale:.2f}" for p in parts)
          + f" = {sum(parts) * scale:.2f} {unit}")
PY
