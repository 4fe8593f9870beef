#!/usr/bin/env bash
# Runs the whole test suite: starts the local PostgreSQL the store tests need (idempotent),
# then every test of the workspace. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${MFTPLUS_TEST_PG_URL:-}" ]; then
  eval "$(scripts/pg-test-setup.sh)"
fi
export MFTPLUS_TEST_PG_URL

command -v ssh-keygen >/dev/null || { echo "ssh-keygen is required (apt-get install openssh-client)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl is required (apt-get install openssl)" >&2; exit 1; }

cargo test --workspace --locked "$@"
