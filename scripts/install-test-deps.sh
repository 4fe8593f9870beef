#!/usr/bin/env bash
# Installs the system packages the test suite runs against (real PostgreSQL, ssh-keygen,
# openssl, gcc, e2fsprogs, xfsprogs and restic for the agent's tests, iproute2, iptables and faketime for
# the fault-injection suite, chromium and chromium-driver for the dashboard's browser tests,
# debootstrap, dpkg-dev and groff-base for the package test, haproxy for the multi-replica tests, and docker-compose where a Docker
# Engine is installed, for the hub container test)
# when they are missing. Needs root for apt-get; does nothing when all are present.
set -euo pipefail
# Debian's docker-compose recommends docker.io, which would clash with an engine installed
# from elsewhere: installed on its own, without recommends.
if command -v docker >/dev/null && ! docker compose version >/dev/null 2>&1 \
  && ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: docker-compose; install it (sudo apt-get install --no-install-recommends docker-compose) and re-run" >&2
    exit 1
  fi
  echo "installing: docker-compose" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >&2
fi
need=()
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v openssl >/dev/null || need+=(openssl)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
# The agent's tests: a static guest binary for the test image, filesystems to read UUIDs from.
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
# The agent's backups: restic, driven through its JSON output.
command -v restic >/dev/null || need+=(restic)
# The fault-injection suite: network namespaces and veth pairs, iptables rules (partitions,
# NFQUEUE for delay and loss), libfaketime for skewed clocks.
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ -f /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
# The package test: a Debian root made with debootstrap, dpkg-shlibdeps for the packages'
# Depends, groff to render mftctl's man pages.
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v groff >/dev/null || need+=(groff-base)
# The multi-replica tests: HAProxy in front of three cloud replicas (packaging/replicas/).
command -v haproxy >/dev/null || need+=(haproxy)
# The dashboard's browser tests: headless Chromium driven through chromedriver (WebDriver).
command -v chromedriver >/dev/null && command -v chromium >/dev/null || need+=(chromium chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${need[*]}; install them (sudo apt-get install ${need[*]}) and re-run" >&2
  exit 1
fi
echo "installing: ${need[*]}" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
