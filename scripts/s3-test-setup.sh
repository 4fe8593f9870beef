#!/usr/bin/env bash
# Makes sure `moto_server` (moto's S3-compatible server mode, from PyPI) is on PATH for the S3
# blob store tests, which start it themselves on 127.0.0.1. Idempotent and quiet: does nothing
# when it is already installed. The tests fail without it unless MFTPLUS_SKIP_S3=1.
set -euo pipefail

if command -v moto_server >/dev/null 2>&1 && moto_server --help >/dev/null 2>&1; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "s3-test-setup: python3 is missing (apt-get install python3 python3-pip)" >&2
  exit 1
fi

echo "s3-test-setup: installing moto[server] from PyPI" >&2
python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >&2
# pyenv puts new console scripts on PATH only through its shims, which need a rehash.
if command -v pyenv >/dev/null 2>&1; then
  pyenv rehash
fi

if ! moto_server --help >/dev/null 2>&1; then
  echo "s3-test-setup: moto installed but moto_server is not on PATH" \
    "(add $(python3 -m site --user-base)/bin or the interpreter's bin directory)" >&2
  exit 1
fi
