#!/usr/bin/env bash
# The agent's backup beside plain restic: the same guest data (SIZE_MIB of random files) backed
# up by `mftplus agent backup run` (release build; what the scheduled backup runs: the probe,
# the repository-id check, restic with the agent's tags and excludes) and by `restic backup` of
# the same folder, each into a fresh repository of its own, then once more unchanged (the
# incremental case, where the agent's fixed costs weigh most). Rounds alternate which goes
# first; medians and the median of per-round ratios are printed with the load average.
#
# The agent's state comes from `mftplus-bench agent-fixture` (an identity and a desired state
# with a daily policy on the data's filesystem; no cloud: the escrow stays owed, which `backup
# run` does not need).
#
# Usage: bench/agent_backup.sh              (1 GiB, 5 rounds)
#        SIZE_MIB=256 ROUNDS=3 bench/agent_backup.sh
#        SKIP_BUILD=1 bench/agent_backup.sh (target/release as built)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-1024}"
ROUNDS="${ROUNDS:-5}"
command -v restic >/dev/null || { echo "restic is needed (apt-get install restic)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p mftplus -p mftplus-bench
fi
MFTPLUS="$PWD/target/release/mftplus"
BENCH="$PWD/target/release/mftplus-bench"

WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/mft-backup-bench.XXXXXX")"
# The data sits on its own ext4 "drive" (an image on a loop device, a UUID of our choosing): the
# storage target the policy names, as a customer's data disk would be. Needs root.
UUID="6d3c1f0e-5b2a-4c9d-8e7f-0a1b2c3d4e5f"
truncate -s "$((SIZE_MIB + 256))M" "$WORK/drive.img"
mkfs.ext4 -q -F -U "$UUID" "$WORK/drive.img"
mkdir -p "$WORK/drive"
mount -o loop "$WORK/drive.img" "$WORK/drive"
trap 'umount -l "$WORK/drive" 2>/dev/null; rm -rf "$WORK"' EXIT
GUESTS="$WORK/drive/guests"
DATA="$GUESTS/web"
mkdir -p "$DATA"
# 1 MiB to 16 MiB files, random (incompressible), to SIZE_MIB in all.
left=$SIZE_MIB i=0
while [ "$left" -gt 0 ]; do
  n=$(( (i % 16) + 1 )); [ "$n" -gt "$left" ] && n=$left
  head -c "$((n << 20))" /dev/urandom > "$DATA/file-$i.bin"
  left=$((left - n)); i=$((i + 1))
done
printf 'recovery-code-for-the-benchmark' > "$WORK/code"; chmod 600 "$WORK/code"
printf 'restic-peer-key' > "$WORK/peer.key"; chmod 600 "$WORK/peer.key"

now() { date +%s.%N; }
agent_round() { # $1 round
  local box="$WORK/box-$1" repo="$WORK/repo-agent-$1"
  mkdir -p "$box"
  cat > "$box/agent.yaml" <<EOF
server:
  url: http://127.0.0.1:9
  timeout: 2s
state_dir: $box/state
driver: none
guests_dir: $GUESTS
backup:
  repository: $repo
EOF
  "$BENCH" agent-fixture --state-dir "$box/state" --target "$UUID" --guest web
  "$MFTPLUS" agent backup init --config "$box/agent.yaml" --recovery-code-file "$WORK/code" > /dev/null
  local t0 t1 t2
  t0=$(now); "$MFTPLUS" agent backup run --config "$box/agent.yaml" > /dev/null 2>> "$WORK/agent.log"
  t1=$(now); "$MFTPLUS" agent backup run --config "$box/agent.yaml" > /dev/null 2>> "$WORK/agent.log"
  t2=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc)"
}
restic_round() { # $1 round
  local repo="$WORK/repo-restic-$1"
  export RESTIC_REPOSITORY="$repo" RESTIC_PASSWORD_FILE="$WORK/peer.key" RESTIC_CACHE_DIR="$WORK/cache-$1"
  restic init -q > /dev/null
  local t0 t1 t2
  t0=$(now); restic backup -q --one-file-system --host bench "$DATA" > /dev/null
  t1=$(now); restic backup -q --one-file-system --host bench "$DATA" > /dev/null
  t2=$(now)
  unset RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_CACHE_DIR
  echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc)"
}

echo "data: ${SIZE_MIB} MiB in $i files; rounds: $ROUNDS; restic $(restic version | cut -d' ' -f2)"
results="$WORK/results"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then a=$(agent_round "$r"); p=$(restic_round "$r"); else p=$(restic_round "$r"); a=$(agent_round "$r"); fi
  echo "$r $a $p" | tee -a "$results"
  rm -rf "$WORK/repo-agent-$r" "$WORK/repo-restic-$r" "$WORK/box-$r" "$WORK/cache-$r"
done
python3 - "$results" "$SIZE_MIB" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split()[1:])) for l in open(sys.argv[1])]
size = float(sys.argv[2])
med = lambda xs: statistics.median(xs)
for name, ai, pi in (("full", 0, 2), ("unchanged", 1, 3)):
    a = med([r[ai] for r in rows]); p = med([r[pi] for r in rows])
    ratio = med([r[ai] / r[pi] for r in rows])
    extra = f"  ({size / a:.0f} vs {size / p:.0f} MiB/s)" if name == "full" else ""
    print(f"{name:10s} agent {a:6.2f} s   restic {p:6.2f} s   agent/restic {ratio:.2f}x{extra}")
EOF
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
