#!/usr/bin/env bash
# Transfer throughput and memory: the same random file sent and received with mftctl through a
# local `mftplus dev` cloud (release build) over plain HTTP and through a second one with
# `--tls` (HTTPS, TLS 1.3, its own CA), with `scp -c aes256-gcm@openssh.com` and with
# `rsync -e ssh` against this script's own sshd on loopback, next to the raw `dd conv=fsync`
# write rate of the same disk.
#
# Everything runs in one temporary folder on one disk. Every timed copy ends with an fsync of
# its output (`sync FILE`), so tools that do not sync (scp, rsync) are timed to the same
# durability as mftctl and the cloud, which sync themselves. The page cache is not dropped
# (that needs root and would disturb everyone else on the machine): instead every tool reads
# the same file, warmed once before the first run, so all of them read from memory alike.
#
# The plain and the TLS cloud alternate which goes first from round to round (writeback from
# one phase can slow the next).
#
# Peak RSS: mftctl from `/usr/bin/time -v` ("Maximum resident set size"); the cloud from
# VmHWM in /proc/PID/status, reset before each phase through /proc/PID/clear_refs when the
# kernel allows it (otherwise the figure is the peak so far, and the table says so).
#
# Usage: bench/transfer.sh            (1 GiB, 3 rounds; medians are reported)
#        SIZE_MIB=10240 ROUNDS=1 bench/transfer.sh
#        BENCH_DIR=/some/disk bench/transfer.sh   (where the temporary folder goes)
#        SKIP_BUILD=1 bench/transfer.sh            (with target/release as built)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-1024}"
ROUNDS="${ROUNDS:-3}"
CIPHER="aes256-gcm@openssh.com"

# --- (a) tools ------------------------------------------------------------------------------
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null && command -v scp >/dev/null || need+=(openssh-client)
command -v rsync >/dev/null || need+=(rsync)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- (c) binaries -----------------------------------------------------------------------------
# shellcheck source=bench/lib/dev_cloud.sh
. bench/lib/dev_cloud.sh # bench_build, bench_start_cloud, free_port, now
bench_build # SKIP_BUILD=1: use target/release as built

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mftplus-bench.XXXXXX")"
sshd_pid=""
cloud_pid=""
tls_pid=""
cleanup() {
  [ -n "$cloud_pid" ] && kill "$cloud_pid" 2>/dev/null && wait "$cloud_pid" 2>/dev/null
  [ -n "$tls_pid" ] && kill "$tls_pid" 2>/dev/null && wait "$tls_pid" 2>/dev/null
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
  rm -rf "$work"
}
trap 'cleanup || true' EXIT

# --- (b) our own sshd -------------------------------------------------------------------------
ssh_dir="$work/ssh"
mkdir -p "$ssh_dir" "$work/remote" "$work/local"
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
Subsystem sftp internal-sftp
CONF
# As root, sshd insists on its privilege-separation folder; packages create it at boot.
if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
  echo "creating /run/sshd (sshd's privilege-separation folder)"
  mkdir -p /run/sshd && chmod 755 /run/sshd
fi
/usr/sbin/sshd -D -e -f "$ssh_dir/sshd_config" 2>"$ssh_dir/sshd.log" &
sshd_pid=$!
# ssh takes the port as -p, scp as -P; everything else is shared.
COMMON_OPTS=(-i "$ssh_dir/client_key" -o BatchMode=yes -o StrictHostKeyChecking=no
  -o UserKnownHostsFile="$ssh_dir/known_hosts" -o Compression=no -c "$CIPHER" -o LogLevel=ERROR)
SSH_OPTS=(-p "$ssh_port" "${COMMON_OPTS[@]}")
SCP_OPTS=(-P "$ssh_port" "${COMMON_OPTS[@]}")
for _ in $(seq 1 100); do ssh "${SSH_OPTS[@]}" 127.0.0.1 true 2>/dev/null && break; sleep 0.1; done
ssh "${SSH_OPTS[@]}" 127.0.0.1 true
RSYNC_SSH="ssh ${SSH_OPTS[*]}"

# --- (c) our own cloud, a sender and a recipient ----------------------------------------------
bench_start_cloud </dev/null
rss_started="$(awk '/VmRSS/ {print $2}' "/proc/$cloud_pid/status")"
export MFTPLUS_SERVER="$server"
password="bench-password-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
for who in sender recipient; do
  mkdir -p "$work/home-$who"
  printf '%s\n' "$password" | MFTPLUS_API_KEY="$admin_key" HOME="$work/home-$who" \
    "$MFTCTL" users create --email "$who@example.com" --role user --password-stdin >/dev/null
  printf '%s\n' "$password" | HOME="$work/home-$who" \
    "$MFTCTL" login --email "$who@example.com" --password-stdin >/dev/null 2>&1
done

rss_users="$(awk '/VmRSS/ {print $2}' "/proc/$cloud_pid/status")"

# The same over HTTPS: a second dev cloud with its own CA (`--tls`); mftctl trusts that CA.
mkdir -p "$work/cloud-tls" && chmod 700 "$work/cloud-tls"
cp "$work/cloud/server.yaml" "$work/cloud-tls/server.yaml"
tls_port="$(free_port)"
RUST_LOG=warn "$MFTPLUS" dev --tls --no-hub --no-agent --data-dir "$work/cloud-tls" \
  --listen "127.0.0.1:$tls_port" --metrics-listen 127.0.0.1:0 >"$work/cloud-tls.out" 2>"$work/cloud-tls.err" &
tls_pid=$!
for _ in $(seq 1 300); do grep -q "API key:" "$work/cloud-tls.out" 2>/dev/null && break; sleep 0.1; done
tls_key="$(awk '/API key:/ {print $3}' "$work/cloud-tls.out")"
tls_ca="$(awk '/CA:/ {print $2}' "$work/cloud-tls.out")"
[ -n "$tls_key" ] && [ -n "$tls_ca" ] || { echo "the TLS cloud did not start:"; cat "$work/cloud-tls.err"; exit 1; }
TLS_ENV=(MFTPLUS_SERVER="https://127.0.0.1:$tls_port" MFTPLUS_CA_FILE="$tls_ca")
for who in sender recipient; do
  mkdir -p "$work/home-tls-$who"
  printf '%s\n' "$password" | env "${TLS_ENV[@]}" MFTPLUS_API_KEY="$tls_key" HOME="$work/home-tls-$who" \
    "$MFTCTL" users create --email "$who@example.com" --role user --password-stdin >/dev/null
  printf '%s\n' "$password" | env "${TLS_ENV[@]}" HOME="$work/home-tls-$who" \
    "$MFTCTL" login --email "$who@example.com" --password-stdin >/dev/null 2>&1
done

# --- (d) the file -----------------------------------------------------------------------------
src="$work/source.bin"
echo "writing ${SIZE_MIB} MiB of random data"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$src"
cat "$src" > /dev/null # warm: every tool reads it from the page cache

# --- (e) measurements -------------------------------------------------------------------------
results="$work/results.txt" # name rate_mib_s rss_kib cloud_hwm_kib cloud_rss_at_start_kib
: > "$results"
rate() { python3 -c "print(f'{$SIZE_MIB / ($2 - $1):.1f}')"; }
max_rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
hwm_reset=yes
reset_hwm() { echo 5 > "/proc/$cloud_pid/clear_refs" 2>/dev/null || hwm_reset=no; }
cloud_hwm() { awk '/VmHWM/ {print $2}' "/proc/$cloud_pid/status"; }
cloud_rss() { awk '/VmRSS/ {print $2}' "/proc/$cloud_pid/status"; }

mftctl_plain() {
  reset_hwm; base=$(cloud_rss)
  t0=$(now)
  id="$(HOME="$work/home-sender" /usr/bin/time -v -o "$work/time-send.txt" "$MFTCTL" send "$src" recipient@example.com 2>"$work/send.err")" \
    || { cat "$work/send.err"; exit 1; }
  t1=$(now)
  echo "mftctl_send $(rate "$t0" "$t1") $(max_rss "$work/time-send.txt") $(cloud_hwm) $base" >> "$results"

  reset_hwm; base=$(cloud_rss)
  mkdir -p "$work/recv"
  t0=$(now)
  HOME="$work/home-recipient" /usr/bin/time -v -o "$work/time-recv.txt" "$MFTCTL" receive "$id" --dir "$work/recv" >/dev/null 2>"$work/recv.err" \
    || { cat "$work/recv.err"; exit 1; }
  t1=$(now)
  echo "mftctl_receive $(rate "$t0" "$t1") $(max_rss "$work/time-recv.txt") $(cloud_hwm) $base" >> "$results"
  cmp -s "$src" "$work/recv/source.bin" || { echo "received file differs"; exit 1; }
  rm -rf "$work/recv"
  # Free the disk for the next round (large sizes); the sweeper would do it after expiry.
  HOME="$work/home-sender" "$MFTCTL" transfers cancel "$id" >/dev/null
  rm -rf "$work/cloud/blobs"/*/"$id"

}

mftctl_tls() {
  # Over HTTPS: the same commands against the TLS cloud.
  t0=$(now)
  id="$(env "${TLS_ENV[@]}" HOME="$work/home-tls-sender" "$MFTCTL" send "$src" recipient@example.com 2>"$work/send.err")" \
    || { cat "$work/send.err"; exit 1; }
  t1=$(now)
  echo "mftctl_send_tls $(rate "$t0" "$t1") - - -" >> "$results"
  mkdir -p "$work/recv"
  t0=$(now)
  env "${TLS_ENV[@]}" HOME="$work/home-tls-recipient" "$MFTCTL" receive "$id" --dir "$work/recv" >/dev/null 2>"$work/recv.err" \
    || { cat "$work/recv.err"; exit 1; }
  t1=$(now)
  echo "mftctl_receive_tls $(rate "$t0" "$t1") - - -" >> "$results"
  cmp -s "$src" "$work/recv/source.bin" || { echo "received file differs (TLS)"; exit 1; }
  rm -rf "$work/recv"
  env "${TLS_ENV[@]}" HOME="$work/home-tls-sender" "$MFTCTL" transfers cancel "$id" >/dev/null
  rm -rf "$work/cloud-tls/blobs"/*/"$id"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  t0=$(now); dd if=/dev/zero of="$work/dd.bin" bs=1M count="$SIZE_MIB" conv=fsync status=none; t1=$(now)
  echo "dd $(rate "$t0" "$t1") - - -" >> "$results"; rm -f "$work/dd.bin"

  t0=$(now); scp -q "${SCP_OPTS[@]}" "$src" "127.0.0.1:$work/remote/scp.bin"; sync "$work/remote/scp.bin"; t1=$(now)
  echo "scp_up $(rate "$t0" "$t1") - - -" >> "$results"
  t0=$(now); scp -q "${SCP_OPTS[@]}" "127.0.0.1:$work/remote/scp.bin" "$work/local/scp.bin"; sync "$work/local/scp.bin"; t1=$(now)
  echo "scp_down $(rate "$t0" "$t1") - - -" >> "$results"; rm -f "$work/remote/scp.bin" "$work/local/scp.bin"

  t0=$(now); rsync -q -e "$RSYNC_SSH" "$src" "127.0.0.1:$work/remote/rsync.bin"; sync "$work/remote/rsync.bin"; t1=$(now)
  echo "rsync_up $(rate "$t0" "$t1") - - -" >> "$results"
  t0=$(now); rsync -q -e "$RSYNC_SSH" "127.0.0.1:$work/remote/rsync.bin" "$work/local/rsync.bin"; sync "$work/local/rsync.bin"; t1=$(now)
  echo "rsync_down $(rate "$t0" "$t1") - - -" >> "$results"; rm -f "$work/remote/rsync.bin" "$work/local/rsync.bin"

  if [ $((round % 2)) = 1 ]; then mftctl_plain; mftctl_tls; else mftctl_tls; mftctl_plain; fi
done

# --- (f) the table ----------------------------------------------------------------------------
echo
echo "size ${SIZE_MIB} MiB, ${ROUNDS} round(s), medians; $(nproc) CPUs; cloud VmHWM reset per phase: $hwm_reset"
echo "cloud VmRSS: $((rss_started / 1024)) MiB when ready, $((rss_users / 1024)) MiB after creating and logging in two users (before any transfer)"
python3 - "$results" "$SIZE_MIB" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rate, rss, hwm, base = line.split()
    rows.setdefault(name, []).append((float(rate), rss, hwm, base))
def med(name): return statistics.median(r[0] for r in rows[name])
def peak(name, i):
    vals = [int(r[i]) for r in rows[name] if r[i] != "-"]
    return f"{max(vals) / 1024:.1f}" if vals else "-"
dd = med("dd")
print(f"{'what':16} {'MiB/s':>8} {'vs scp':>7} {'vs dd':>6} {'RSS MiB':>8} {'cloud MiB':>9} {'(at start)':>10}  runs")
for name, scp in [("dd", None), ("scp_up", None), ("scp_down", None), ("rsync_up", "scp_up"),
                  ("rsync_down", "scp_down"), ("mftctl_send", "scp_up"), ("mftctl_receive", "scp_down"),
                  ("mftctl_send_tls", "scp_up"), ("mftctl_receive_tls", "scp_down")]:
    m = med(name)
    vs_scp = f"{m / med(scp):.2f}x" if scp else "-"
    runs = " ".join(f"{r[0]:.0f}" for r in rows[name])
    print(f"{name:16} {m:8.1f} {vs_scp:>7} {m / dd * 100:5.0f}% {peak(name, 1):>8} {peak(name, 2):>9} {peak(name, 3):>10}  {runs}")
print()
ok = lambda b: "PASS" if b else "FAIL"
for name, scp in [("mftctl_send", "scp_up"), ("mftctl_receive", "scp_down")]:
    r = med(name) / med(scp)
    d = med(name) / dd
    rss = max(int(x[1]) for x in rows[name]) / 1024
    hwm = max(int(x[2]) for x in rows[name]) / 1024
    print(f"{name}: {r:.2f}x scp (target >= 1.5x: {ok(r >= 1.5)}), {d * 100:.0f}% of dd "
          f"(target >= 70%: {ok(d >= 0.7)}), mftctl RSS {rss:.1f} MiB and cloud {hwm:.1f} MiB "
          f"(target <= 64 MiB: {ok(rss <= 64 and hwm <= 64)})")
for name, plain, scp in [("mftctl_send_tls", "mftctl_send", "scp_up"),
                         ("mftctl_receive_tls", "mftctl_receive", "scp_down")]:
    r = med(name) / med(plain)
    s = med(name) / med(scp)
    print(f"{name}: {r:.2f}x the same over plain HTTP (target >= 0.9x: {ok(r >= 0.9)}), "
          f"{s:.2f}x scp (target >= 1.5x: {ok(s >= 1.5)})")
PY
