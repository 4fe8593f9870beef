#!/usr/bin/env bash
# Installs the .deb packages in a minimal Debian made here, booted with systemd as PID 1 in a
# Docker container: no image registry, no network inside the container. The checks
# themselves are packaging/test-deb-inside.sh. Run by crates/mftplus/tests/deb_package.rs.
#
# Usage: packaging/test-deb.sh (--bin-dir DIR | --debs DIR) [--work DIR] [--cache DIR] [--keep]
#   --bin-dir  build the packages from the mftplus, mftctl (and mftplus-agent) built in DIR
#   --debs     test the packages already in DIR (packaging/build-deb.sh --out DIR)
#   --work     scratch directory for the packages (default target/deb-test)
#   --cache    where the debootstrap tarball is kept between runs (target/debootstrap-cache)
#   --keep     leave the container running for a look inside (docker rm -f it afterwards)
# The root file system is Debian's minbase for this host's release (VERSION_CODENAME) plus
# systemd, dbus, adduser and man-db, made once with debootstrap from the mirror apt here is
# configured with (or MFTPLUS_DEBOOTSTRAP_MIRROR), then imported with `docker import`.
# Needs root, debootstrap, dpkg-deb and a Docker Engine (see the `docker run` below for what
# the container is allowed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin_dir="" debs="" work="$target_dir/deb-test" cache="$target_dir/debootstrap-cache" keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --debs) debs=$(cd "$2" && pwd); shift 2 ;;
    --work) work=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$bin_dir$debs" ] || { echo "usage: $0 (--bin-dir DIR | --debs DIR) [--work DIR] [--cache DIR] [--keep]" >&2; exit 2; }

step() { echo "== $(date +%T) $*" >&2; }

suite=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
arch=$(dpkg --print-architecture)
includes=systemd,systemd-sysv,dbus,adduser,man-db
tag="$suite-$arch-$(printf '%s' "$includes" | sha256sum | cut -c1-12)"
tarball="$cache/minbase-$tag.tar"
image="mftplus-deb-test:$tag"

# The mirror of this host's own apt sources that serves $suite (deb822 or one-line format).
mirror_url() {
  if [ -n "${MFTPLUS_DEBOOTSTRAP_MIRROR:-}" ]; then echo "$MFTPLUS_DEBOOTSTRAP_MIRROR"; return; fi
  local url
  url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v suite="$suite" '
    /^[[:space:]]*$/ { if (found && uri) { print uri; exit } uri = ""; found = 0; next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
    END { if (found && uri) print uri }' | head -1)
  if [ -z "$url" ]; then
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed 's/\[[^]]*\]//' | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }')
  fi
  [ -n "$url" ] || { echo "no apt source for $suite in /etc/apt; set MFTPLUS_DEBOOTSTRAP_MIRROR" >&2; return 1; }
  echo "$url"
}

# The root file system tarball and its image, made once (under a lock: tests may run at once).
prepare_image() {
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -s "$tarball" ]; then
    local rootfs="$cache/rootfs-$tag.$$" mirror
    mirror=$(mirror_url)
    step "debootstrap --variant=minbase $suite (first run only; cached in $tarball)"
    rm -rf "$rootfs"
    timeout 900 debootstrap --variant=minbase --include="$includes" "$suite" "$rootfs" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; rm -rf "$rootfs"; return 1; }
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*_Packages
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    docker rmi -f "$image" >/dev/null 2>&1 || true
  fi
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    step "docker import $tarball as $image"
    docker import "$tarball" "$image" >/dev/null
  fi
  flock -u 9
}

name="mftplus-deb-test-$$" built=""
cleanup() {
  if [ "$keep" = 1 ]; then
    echo "kept: docker exec -it $name bash; docker rm -f $name${built:+; rm -r $built}" >&2
    return
  fi
  docker rm -f "$name" >/dev/null 2>&1 || true
  [ -z "$built" ] || rm -rf "$built"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

if [ -z "$debs" ]; then
  mkdir -p "$work"
  debs="$work/debs-$$" built="$work/debs-$$"
  step "building the packages from $bin_dir"
  "$root/packaging/build-deb.sh" --bin-dir "$bin_dir" --out "$debs" --compress gzip >&2
fi
prepare_image

# systemd as PID 1 without --privileged: every capability but CAP_SYS_RESOURCE (which some
# hosts, this project's machines among them, keep out of the bounding set, and --privileged
# fails there), no seccomp or AppArmor profile (the units' own filters and namespaces must be
# set up), and a private cgroup namespace on a tmpfs where systemd mounts its own hierarchies.
step "booting $image with systemd (no network)"
docker run -d --name "$name" --network none \
  --cap-add ALL --cap-drop SYS_RESOURCE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  --cgroupns private --tmpfs /sys/fs/cgroup \
  --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 -e container=docker \
  -v "$debs:/debs:ro" -v "$root/packaging/test-deb-inside.sh:/usr/local/sbin/deb-test:ro" \
  "$image" /lib/systemd/systemd >/dev/null
# Until systemd listens on its bus, systemctl fails at once: ask again until it answers.
deadline=$((SECONDS + 90))
until state=$(timeout 60 docker exec "$name" systemctl is-system-running --wait 2>&1) \
  || [ "$state" = degraded ]; do
  if [ $SECONDS -ge $deadline ]; then
    echo "systemd did not come up: $state" >&2
    docker logs "$name" 2>&1 | tail -30 >&2
    exit 1
  fi
  sleep 0.5
done
step "systemd is up ($state)"

step "installing and checking inside the container"
if ! timeout 300 docker exec "$name" bash /usr/local/sbin/deb-test; then
  echo "---- journal of the MFTPlus units ----" >&2
  docker exec "$name" journalctl --no-pager -n 80 -u mftplus-cloud -u mftplus-hub \
    -u mftplus-agent >&2 || true
  exit 1
fi
step "done"
