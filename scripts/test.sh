#!/usr/bin/env bash
# Runs the whole test suite on this machine: installs what the tests run against if missing
# (PostgreSQL, ssh-keygen, openssl, moto's S3 server and aiosmtpd from PyPI), starts the local PostgreSQL cluster and its test role
# (idempotent), then every test of the workspace, then the API fuzzing run (scripts/api-fuzz.sh).
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
scripts/s3-test-setup.sh
scripts/smtp-test-setup.sh
if [ -z "${MFTPLUS_TEST_PG_URL:-}" ]; then
  eval "$(scripts/pg-test-setup.sh)"
fi
export MFTPLUS_TEST_PG_URL

cargo test --workspace --locked "$@"

# The API fuzzed from its own OpenAPI document (decision 0021): no 5xx, no answer off the
# document. Part of the whole suite; a run narrowed by arguments leaves it out.
if [ $# -eq 0 ]; then
  scripts/api-fuzz.sh
fi
