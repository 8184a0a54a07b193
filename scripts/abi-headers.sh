#!/usr/bin/env bash
# Installs the sanitized uapi headers of Linux 6.12 for x86, arm64, s390 and powerpc under .cache/abi/headers/<arch>/,
# built from Debian's linux-source-6.12 package (bookworm-security) with `make headers_install`.
# Each arch is cached by a stamp file, so later runs only print the headers' location.
# Usage: scripts/abi-headers.sh [ARCH...]   (default: x86 arm64 s390 powerpc)
set -euo pipefail

PACKAGE=linux-source-6.12
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache/abi"
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(x86 arm64 s390 powerpc)

missing=()
for arch in "${arches[@]}"; do
  [ -f "$cache/headers/$arch/.installed" ] || missing+=("$arch")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "abi-headers: cached in $cache/headers (${arches[*]})"
  exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq && apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
    { echo "abi-headers: apt-get could not install: $*" >&2; exit 1; }
}

# Tools that headers_install needs (a host C compiler builds scripts/unifdef; rsync copies the tree).
need=()
command -v rsync >/dev/null || need+=(rsync)
{ command -v gcc >/dev/null && command -v make >/dev/null; } || need+=(build-essential)
command -v xz >/dev/null || need+=(xz-utils)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

mkdir -p "$cache/download"
deb="$(ls "$cache/download/${PACKAGE}"_*.deb 2>/dev/null | head -n1 || true)"
if [ -z "$deb" ]; then
  echo "abi-headers: downloading $PACKAGE (about 150 MB)"
  [ -n "$apt_updated" ] || { as_root apt-get update -qq && apt_updated=1; }
  # apt-get download drops privileges to _apt; a world-writable staging dir keeps that from failing.
  chmod 0777 "$cache/download"
  (cd "$cache/download" && apt-get download -qq "$PACKAGE") ||
    { echo "abi-headers: apt could not get the Debian package $PACKAGE (it is in bookworm-security)" >&2; exit 1; }
  deb="$(ls "$cache/download/${PACKAGE}"_*.deb | head -n1)"
fi

src="$cache/src"
if [ ! -f "$src/.unpacked" ]; then
  echo "abi-headers: unpacking $(basename "$deb")"
  rm -rf "$src" && mkdir -p "$src"
  # The .deb holds one source tarball; only the build system, includes and arch trees are needed for headers.
  dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
    tar -xJ -C "$src" --strip-components=1 \
      --exclude='*/drivers' --exclude='*/Documentation' --exclude='*/sound' --exclude='*/fs' --exclude='*/net' \
      --exclude='*/tools/testing' --exclude='*/lib' --exclude='*/crypto' --exclude='*/samples'
  touch "$src/.unpacked"
fi

version="$(make -s -C "$src" kernelversion)"
for arch in "${missing[@]}"; do
  out="$cache/headers/$arch"
  echo "abi-headers: make headers_install ARCH=$arch ($version)"
  rm -rf "$out"
  make -s -C "$src" ARCH="$arch" O="$cache/build/$arch" INSTALL_HDR_PATH="$out" headers_install
  echo "$version" >"$out/.installed"
done
rm -rf "$cache/build"
echo "abi-headers: installed in $cache/headers (${arches[*]})"
