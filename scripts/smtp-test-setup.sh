#!/usr/bin/env bash
# Makes sure aiosmtpd (a real SMTP server, from PyPI) is importable by python3 for the
# mftplus-notify SMTP tests, which start it themselves on 127.0.0.1. Idempotent and quiet: does
# nothing when it is already installed.
set -euo pipefail

if ! command -v python3 >/dev/null 2>&1; then
  echo "smtp-test-setup: python3 is missing (apt-get install python3 python3-pip)" >&2
  exit 1
fi

if python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  exit 0
fi

echo "smtp-test-setup: installing aiosmtpd from PyPI" >&2
python3 -m pip install --quiet --disable-pip-version-check 'aiosmtpd>=1.4,<2' >&2

if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "smtp-test-setup: aiosmtpd installed but python3 cannot import it" >&2
  exit 1
fi
