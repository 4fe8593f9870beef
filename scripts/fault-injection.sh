#!/usr/bin/env bash
# The fault-injection suite's long run (docs/fault-injection.md): the same test as the short run
# in CI (crates/mftplus/tests/fault_injection.rs), built in release, with more runs (each on a
# fresh lab with its own seed), more episodes per run and more reporters. Needs root, iproute2,
# iptables and faketime (installed by scripts/install-test-deps.sh). Prints each episode, one
# summary line per run and one for all; the whole output goes to a log as well.
#
# Usage: [RUNS=10] [EPISODES=8] [REPORTERS=16] [SEED=n] [LOG=file] scripts/fault-injection.sh
#   RUNS       runs, each with one fault of every kind plus EPISODES random ones
#   SEED       the first run's seed (later runs derive theirs); a failing run prints its own
#              MFTPLUS_FAULT_SEED, and SEED=<that> RUNS=1 with the same EPISODES replays it
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

export MFTPLUS_TEST_REQUIRE_NETNS=1
export MFTPLUS_FAULT_RUNS="${RUNS:-10}"
export MFTPLUS_FAULT_EPISODES="${EPISODES:-8}"
export MFTPLUS_FAULT_REPORTERS="${REPORTERS:-16}"
if [ -n "${SEED:-}" ]; then
  export MFTPLUS_FAULT_SEED="$SEED"
fi
log="${LOG:-target/fault-injection-$(date -u +%Y%m%dT%H%M%SZ).log}"
mkdir -p "$(dirname "$log")"

echo "== fault injection: runs $MFTPLUS_FAULT_RUNS, extra episodes $MFTPLUS_FAULT_EPISODES," \
  "reporters $MFTPLUS_FAULT_REPORTERS; log $log"
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load:$(uptime | sed 's/.*load average//')"
cargo test --release --locked -p mftplus --test fault_injection -- --nocapture 2>&1 | tee "$log"
echo "== done $(date -u '+%Y-%m-%d %H:%M UTC'), load:$(uptime | sed 's/.*load average//')"
