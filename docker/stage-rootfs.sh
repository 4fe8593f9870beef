#!/usr/bin/env bash
# Stages the hub image's whole filesystem in DIR/rootfs, for a `FROM scratch` runtime stage:
#   /mftplus                            the binary
#   the exact shared libraries it loads  at the paths ldd reports (glibc, libgcc_s, libm and the
#                                        dynamic loader), so no distro base image is needed
#   /etc/nsswitch.conf                  hosts from /etc/hosts first, then DNS, as on the host
#                                        (glibc's built-in default asks DNS first and only
#                                        falls back to /etc/hosts when DNS is unreachable)
#   /etc/ssl/certs/ca-certificates.crt  the CA bundle, for tools that read the system store (the
#                                        hub itself trusts the webpki roots compiled into it)
# and an empty DIR/data, which the Dockerfiles copy to /app/data owned by UID 65532 (it is kept
# out of rootfs because COPY --chown does not re-own a directory an earlier COPY created).
# Used by the Dockerfile's builder stage and by the container test (docker/Dockerfile.local).
# Usage: docker/stage-rootfs.sh BINARY DIR
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY DIR" >&2
  exit 2
fi
bin=$1
out=$2/rootfs
mkdir -p "$out/etc/ssl/certs" "$2/data"
install -m 0755 "$bin" "$out/mftplus"
# Every absolute path ldd prints: the libraries and the loader (the vDSO has none). -L copies
# the file a symlink points at, under the symlink's own path, which is where the loader looks.
libs=$(ldd "$bin" | grep -o '/[^ )]*' || true)
if [ -z "$libs" ]; then
  echo "$bin links no shared library (static build): nothing to copy" >&2
fi
for lib in $libs; do
  cp -L --parents "$lib" "$out"
done
# glibc 2.34+ has the files and dns name-service modules inside libc.so.6: no libnss_* to copy.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$out/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/"
else
  echo "warning: no /etc/ssl/certs/ca-certificates.crt to copy" >&2
fi
