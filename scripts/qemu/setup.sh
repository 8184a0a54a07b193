#!/usr/bin/env bash
# One-command setup for the QEMU backends (npm run setup:qemu [-- [-q] arm64|ppc64le ...]).
# Installs the host tools, downloads Debian's arm64 / ppc64el kernel and busybox, builds the agent and a
# gzip cpio initramfs per arch. Everything lands in .cache/qemu/<arch>/ (git-ignored); a finished arch
# (its .ready stamp) is reused, so a second run only checks. KVMSPEC_QEMU_REFRESH=1 rebuilds.
# -q: say nothing unless there is work to do (the backends run setup before every boot).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="$repo/.cache/qemu"
quiet=0
if [ "${1:-}" = -q ]; then
  quiet=1
  shift
fi
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 ppc64le)

started=$(date +%s)
step() { echo "[setup:qemu +$(($(date +%s) - started))s] $*"; }
note() { [ "$quiet" = 1 ] || step "$@"; }
die() { echo "[setup:qemu] error: $*" >&2; exit 1; }

host_packages=(qemu-system-arm qemu-system-ppc gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross cpio xz-utils kmod make gcc)

install_host_packages() {
  local missing=()
  for p in "${host_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    note "host packages present"
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "missing host packages (${missing[*]}); run as root or install them"
  step "installing host packages: ${missing[*]}"
  apt-get update -qq || die "apt-get update failed"
  for p in "${missing[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 || die "Debian package '$p' is not available from the configured apt sources"
  done
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
}

# apt for a foreign guest arch, with its own index directory so the host's lists stay untouched.
guest_apt() {
  local tool=$1 debarch=$2
  shift 2
  local dir="$cache/apt/$debarch"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  "$tool" -q -o APT::Architectures::=amd64 -o "APT::Architectures::=$debarch" \
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" "$@"
}

# Downloads a package (resolved by the index, never pinned) into $work/debs; prints the .deb path.
download() {
  local debarch=$1 package=$2
  mkdir -p "$work/debs"
  (cd "$work/debs" && guest_apt apt-get "$debarch" download "$package:$debarch" >/dev/null 2>&1) ||
    die "could not download Debian package '$package:$debarch'"
  ls -t "$work/debs/${package}_"*"_$debarch.deb" | head -n1
}

# The concrete kernel package a meta package points at (linux-image-6.12-arm64 -> linux-image-6.12.x+deb12-arm64).
resolve_meta() {
  local debarch=$1 meta=$2
  guest_apt apt-cache "$debarch" depends "$meta:$debarch" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[^ :]*\).*/\1/p' | head -n1
}

# Refreshes the guest index. A source that fails (a stale ppc64el security index) only loses its own
# packages, so this is not fatal; index_problem tells what went wrong when a package is then missing.
update_index() {
  guest_apt apt-get "$1" update -qq >/dev/null 2>"$work/apt-update.log" || true
}
index_problem() {
  grep -m1 -E '^(E|W): ' "$work/apt-update.log" || echo "apt reported no index problem"
}

# Copies the modules named in $@ (and what they depend on) out of the unpacked kernel tree, decompressed,
# writing their load order to $initrd/modules.order. A module in modules.builtin needs nothing.
collect_modules() {
  local root=$1
  shift
  local moddir
  moddir=$(echo "$root"/lib/modules/*)
  [ -d "$moddir" ] || die "kernel package has no lib/modules"
  local -a order=()
  add_module() {
    local name=$1 file dep
    # Module names use '_' where file names may use '-' (kvm_hv is kvm-hv.ko).
    file=$(find "$moddir/kernel" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" -o -name "${name//-/_}.ko*" \) | head -n1)
    if [ -z "$file" ]; then
      grep -qE "/(${name//-/_}|${name//_/-})\.ko\$" "$moddir/modules.builtin" ||
        die "kernel module '$name' is neither built in nor shipped by the kernel package"
      return 0
    fi
    for dep in $(modinfo -F depends "$file" | tr ',' ' '); do add_module "$dep"; done
    for seen in "${order[@]:-}"; do [ "$seen" = "$file" ] && return 0; done
    order+=("$file")
  }
  for m in "$@"; do add_module "$m"; done
  mkdir -p "$initrd/lib/modules"
  : >"$initrd/modules.order"
  for file in "${order[@]:-}"; do
    [ -n "$file" ] || continue
    local out
    out="$initrd/lib/modules/$(basename "${file%%.ko*}").ko"
    case "$file" in
      *.xz) xz -dc "$file" >"$out" ;; # Debian compresses 6.12's modules; busybox insmod wants plain ones
      *) cp "$file" "$out" ;;
    esac
    basename "$out" >>"$initrd/modules.order"
  done
}

setup_arch() {
  local arch=$1 debarch kernel_meta fallback_meta modules
  case "$arch" in
    arm64)
      debarch=arm64 kernel_meta=linux-image-6.12-arm64 fallback_meta=""
      modules=(virtio_pci virtio_console)
      ;;
    ppc64le)
      debarch=ppc64el kernel_meta=linux-image-6.12-powerpc64le fallback_meta=linux-image-powerpc64le
      modules=(virtio_pci virtio_console kvm kvm-hv)
      ;;
    *) die "unknown arch '$arch' (expected arm64 or ppc64le)" ;;
  esac
  local out="$cache/$arch"
  initrd="$out/initrd"
  if [ -f "$out/.ready" ] && [ -d "$initrd" ] && [ "${KVMSPEC_QEMU_REFRESH:-0}" != 1 ]; then
    if [ "$(cat "$out/.agent" 2>/dev/null)" = "$(agent_fingerprint)" ]; then
      note "$arch: cached ($(cat "$out/.ready"))"
    else
      step "$arch: the agent or /init changed; rebuilding the initramfs"
      pack_initramfs "$arch"
      step "$arch: ready"
    fi
    return
  fi
  work="$cache/work/$arch"
  rm -rf "$work" "$out"
  mkdir -p "$work" "$out" "$initrd"/{bin,dev,proc,sys}

  step "$arch: updating the $debarch package index"
  local kernel_pkg
  update_index "$debarch"
  kernel_pkg=$(resolve_meta "$debarch" "$kernel_meta" || true)
  if [ -z "$kernel_pkg" ] && [ -n "$fallback_meta" ]; then
    step "$arch: $kernel_meta unusable ($(index_problem)); falling back to $fallback_meta"
    kernel_pkg=$(resolve_meta "$debarch" "$fallback_meta" || true)
    [ -n "$kernel_pkg" ] || die "neither '$kernel_meta' nor '$fallback_meta' is available for $debarch"
  fi
  [ -n "$kernel_pkg" ] || die "Debian package '$kernel_meta' ($debarch) is not available ($(index_problem))"

  step "$arch: downloading $kernel_pkg and busybox-static"
  local kernel_deb busybox_deb
  kernel_deb=$(download "$debarch" "$kernel_pkg")
  busybox_deb=$(download "$debarch" busybox-static)

  step "$arch: unpacking"
  local root="$work/root" image
  mkdir -p "$root"
  dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$root" --wildcards './boot/*' './lib/modules/*' ||
    die "could not unpack $kernel_pkg"
  image=$(ls "$root"/boot/vmlinu[xz]-* 2>/dev/null | head -n1 || true)
  [ -n "$image" ] || die "$kernel_pkg contains no kernel image"
  cp "$image" "$out/kernel"
  dpkg-deb --fsys-tarfile "$busybox_deb" | tar -x -C "$work" ./bin/busybox || die "could not unpack busybox-static"
  cp "$work/bin/busybox" "$initrd/bin/busybox"
  collect_modules "$root" "${modules[@]}"

  step "$arch: building the agent and the initramfs"
  pack_initramfs "$arch"

  local version loaded
  version=$(basename "$(echo "$root"/lib/modules/*)")
  loaded=$(tr '\n' ' ' <"$initrd/modules.order")
  echo "$kernel_pkg $version" >"$out/.ready"
  rm -rf "$work"
  step "$arch: ready (kernel $version; modules loaded at boot: ${loaded:-none})"
}

# What the initramfs takes from the repository; a change to any of it means a new initramfs.
agent_fingerprint() {
  cat "$repo"/agent/*.c "$repo"/agent/*.h "$repo/agent/Makefile" "$repo/scripts/qemu/init.sh" | sha256sum | cut -c1-16
}

# Builds the agent into the kept initramfs tree ($initrd: busybox and modules) and packs it.
pack_initramfs() {
  local arch=$1 out="$cache/$1"
  make -s -C "$repo/agent" "$arch" BUILD="$cache/agent" || die "agent build for $arch failed"
  cp "$cache/agent/$arch/kvmspec-agent" "$initrd/kvmspec-agent"
  cp "$repo/scripts/qemu/init.sh" "$initrd/init"
  chmod 755 "$initrd/init" "$initrd/bin/busybox" "$initrd/kvmspec-agent"
  (cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -9) >"$out/initramfs.cpio.gz"
  agent_fingerprint >"$out/.agent"
}

# One setup at a time per cache: a test run and a CLI run may both start one.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 600 9 || die "another setup:qemu has held $cache/.lock for 10 minutes"
install_host_packages
for arch in "${arches[@]}"; do setup_arch "$arch"; done
rmdir "$cache/work" 2>/dev/null || true
note "done"
