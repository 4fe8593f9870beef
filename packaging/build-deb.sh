#!/usr/bin/env bash
# Builds the Debian packages mftplus, mftctl and mftplus-agent with dpkg-deb from staged trees
# (decision 0020, docs/packages.md).
#
# Usage: packaging/build-deb.sh [--profile release|debug] [--out DIR] [--bin-dir DIR]
#                               [--revision N] [--compress xz|gzip|none]
#   --profile   cargo profile to build (default release); ignored with --bin-dir
#   --bin-dir   take mftplus, mftctl (and mftplus-agent, when there) from DIR, build nothing
#   --out       where the .deb files go (default target/debian)
#   --revision  Debian revision appended to the workspace version (default 1)
#   --compress  dpkg-deb compression (default xz for release, gzip for debug)
# Needs dpkg-deb; dpkg-shlibdeps (dpkg-dev) computes Depends when present, else the glibc
# version the binaries need is read with objdump. Prints the paths of the packages built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/packaging"

profile=release out="" bin_dir="" revision=1 compress=""
while [ $# -gt 0 ]; do
  case $1 in
    --profile) profile=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --revision) revision=$2; shift 2 ;;
    --compress) compress=$2; shift 2 ;;
    *) echo "unknown argument: $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
case $profile in
  release) profile_dir=release ;;
  debug | dev) profile=dev profile_dir=debug ;;
  *) echo "--profile must be release or debug" >&2; exit 2 ;;
esac
[ -n "$compress" ] || { [ "$profile" = release ] && compress=xz || compress=gzip; }
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=${out:-$target_dir/debian}
for tool in dpkg-deb dpkg gzip strip; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

if [ -z "$bin_dir" ]; then
  (cd "$root" && cargo build --locked --profile "$profile" -p mftplus -p mftctl -p mftplus-agent >&2)
  bin_dir=$target_dir/$profile_dir
fi
for bin in mftplus mftctl; do
  [ -x "$bin_dir/$bin" ] || { echo "missing: $bin_dir/$bin (cargo build -p $bin)" >&2; exit 1; }
done

arch=$(dpkg --print-architecture)
version="$("$bin_dir/mftplus" --version | awk '{print $2}')-$revision"
maintainer=${DEB_MAINTAINER:-"MFTPlus maintainers <maintainers@mftplus.invalid>"}
# Reproducible timestamps: the last commit's time when there is one.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
work=$(mktemp -d "${TMPDIR:-/tmp}/mftplus-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# `Depends:` for the shared libraries of the given binaries.
shlib_depends() {
  local depends glibc
  if command -v dpkg-shlibdeps >/dev/null; then
    mkdir -p "$work/shlibs/debian"
    printf 'Source: mftplus\n\nPackage: mftplus\nArchitecture: any\n' >"$work/shlibs/debian/control"
    # Its warning that the binaries are not in debian/<package> yet is expected: kept aside.
    depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$@" 2>"$work/shlibdeps.log" \
      | sed -n 's/^shlibs:Depends=//p') || cat "$work/shlibdeps.log" >&2
  else
    glibc=$(objdump -T "$@" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
    depends=${glibc:+"libc6 (>= $glibc)"}
  fi
  [ -n "$depends" ] || { echo "cannot tell the shared libraries $* needs" >&2; return 1; }
  echo "$depends"
}

# A staged binary, stripped like Debian's own.
put_bin() { # SRC STAGE
  install -D -m 0755 "$1" "$2/usr/bin/$(basename "$1")"
  strip --strip-unneeded "$2/usr/bin/$(basename "$1")"
}

put_doc() { # PACKAGE STAGE DOCS...: copyright, then each doc gzip -9n
  local package=$1 stage=$2 doc
  shift 2
  install -d -m 0755 "$stage/usr/share/doc/$package"
  sed "s/@PACKAGE@/$package/" "$here/debian/copyright" >"$stage/usr/share/doc/$package/copyright"
  for doc in "$@"; do
    gzip -9nc "$root/$doc" >"$stage/usr/share/doc/$package/$(basename "$doc").gz"
  done
}

put_man() { # STAGE PAGES...: gzip -9n into section 1
  local stage=$1 page
  shift
  install -d -m 0755 "$stage/usr/share/man/man1"
  for page in "$@"; do
    gzip -9nc "$page" >"$stage/usr/share/man/man1/$(basename "$page").gz"
  done
}

# Writes DEBIAN/control and builds STAGE into $out.
finish() { # PACKAGE STAGE DEPENDS SECTION DESCRIPTION_FILE
  local package=$1 stage=$2 depends=$3 section=$4 description=$5 size deb
  size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
  install -d -m 0755 "$stage/DEBIAN"
  {
    printf 'Package: %s\nVersion: %s\nArchitecture: %s\n' "$package" "$version" "$arch"
    printf 'Maintainer: %s\nInstalled-Size: %s\n' "$maintainer" "$size"
    printf 'Depends: %s\nSection: %s\nPriority: optional\n' "$depends" "$section"
    cat "$description"
  } >"$stage/DEBIAN/control"
  find "$stage" -type d -exec chmod 0755 {} +
  deb="$out/${package}_${version}_${arch}.deb"
  dpkg-deb --root-owner-group -Z"$compress" --build "$stage" "$deb" >/dev/null
  echo "$deb"
}

build_mftplus() {
  local stage=$work/mftplus unit etc depends
  put_bin "$bin_dir/mftplus" "$stage"
  for unit in mftplus-cloud mftplus-hub; do
    install -D -m 0644 "$here/systemd/$unit.service" "$stage/usr/lib/systemd/system/$unit.service"
  done
  install -d -m 0755 "$stage/etc/mftplus" "$stage/var/lib/mftplus"
  install -m 0644 "$here/etc/server.yaml" "$stage/etc/mftplus/server.yaml"
  install -m 0600 "$here/etc/cloud.env" "$here/etc/hub.env" "$stage/etc/mftplus/"
  "$here/help-to-man.sh" "$stage/usr/bin/mftplus" mftplus 1 "$work/mftplus.1"
  put_man "$stage" "$work/mftplus.1"
  put_doc mftplus "$stage" docs/packages.md docs/configuration.md docs/hub.md
  install -d -m 0755 "$stage/DEBIAN"
  for etc in server.yaml cloud.env hub.env; do echo "/etc/mftplus/$etc"; done >"$stage/DEBIAN/conffiles"
  install -m 0755 "$here/debian/mftplus/postinst" "$here/debian/mftplus/prerm" \
    "$here/debian/mftplus/postrm" "$stage/DEBIAN/"
  depends=$(shlib_depends "$stage/usr/bin/mftplus")
  finish mftplus "$stage" "$depends, adduser" net "$here/debian/mftplus/description"
}

build_mftctl() {
  local stage=$work/mftctl shell depends
  put_bin "$bin_dir/mftctl" "$stage"
  install -d -m 0755 "$stage/usr/share/bash-completion/completions" \
    "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
  "$stage/usr/bin/mftctl" completions bash >"$stage/usr/share/bash-completion/completions/mftctl"
  "$stage/usr/bin/mftctl" completions zsh >"$stage/usr/share/zsh/vendor-completions/_mftctl"
  "$stage/usr/bin/mftctl" completions fish >"$stage/usr/share/fish/vendor_completions.d/mftctl.fish"
  for shell in "$stage"/usr/share/*/*completion*/*; do chmod 0644 "$shell"; done
  "$stage/usr/bin/mftctl" man --out "$work/man-mftctl" >&2
  put_man "$stage" "$work/man-mftctl"/*.1
  put_doc mftctl "$stage"
  depends=$(shlib_depends "$stage/usr/bin/mftctl")
  finish mftctl "$stage" "$depends" net "$here/debian/mftctl/description"
}

build_agent() {
  local stage=$work/mftplus-agent depends
  put_bin "$bin_dir/mftplus-agent" "$stage"
  install -D -m 0644 "$here/systemd/mftplus-agent.service" \
    "$stage/usr/lib/systemd/system/mftplus-agent.service"
  "$here/help-to-man.sh" "$stage/usr/bin/mftplus-agent" mftplus-agent 1 "$work/mftplus-agent.1"
  put_man "$stage" "$work/mftplus-agent.1"
  put_doc mftplus-agent "$stage" docs/agent.md docs/packages.md
  install -d -m 0755 "$stage/DEBIAN"
  install -m 0755 "$here/debian/mftplus-agent/postinst" "$here/debian/mftplus-agent/prerm" \
    "$here/debian/mftplus-agent/postrm" "$stage/DEBIAN/"
  depends=$(shlib_depends "$stage/usr/bin/mftplus-agent")
  finish mftplus-agent "$stage" "$depends" net "$here/debian/mftplus-agent/description"
}

umask 022
build_mftplus
build_mftctl
if [ -x "$bin_dir/mftplus-agent" ]; then
  build_agent
else
  echo "note: no $bin_dir/mftplus-agent, the mftplus-agent package is not built" >&2
fi
