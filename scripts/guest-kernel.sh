#!/usr/bin/env bash
# Unpacks Debian's current kernel package (the linux-image-6.1.0-NN-amd64 that
# linux-image-amd64 depends on) into the project's cache, for the QEMU test guest
# (test/support/qemu.ts, docs/testing.md). The package is downloaded and unpacked with
# dpkg-deb -x, never installed: the host's own kernel and /lib/modules are not touched.
# Also unpacks the kernel image itself (boot/vmlinux-<release>): QEMU boots it much faster.
# Idempotent and fast when the kernel is already there. Prints the directory.
#   KST_GUEST_KERNEL_CACHE  where kernels go (default /var/cache/kube-service-tunnel/guest-kernel)
set -euo pipefail
cache=${KST_GUEST_KERNEL_CACHE:-/var/cache/kube-service-tunnel/guest-kernel}
[[ $(dpkg --print-architecture) == amd64 ]] || { echo "guest-kernel: only amd64 is supported" >&2; exit 1; }

package=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
if [[ -z $package ]]; then
  # No package lists yet (a fresh machine): fetch them once.
  [[ $(id -u) -eq 0 ]] && apt-get update -q >/dev/null
  package=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
fi
[[ -n $package ]] || { echo "guest-kernel: apt-cache cannot resolve linux-image-amd64" >&2; exit 1; }
release=${package#linux-image-}
dir=$cache/$release
if [[ -f $dir/.complete && -f $dir/boot/vmlinux-$release ]]; then echo "$dir"; exit 0; fi

# Under QEMU's TCG the kernel's own xz decompressor takes 5-18 s of every boot; QEMU boots
# the uncompressed ELF (PVH entry, CONFIG_PVH=y) in well under a second. The bzImage's setup
# header says where the compressed payload is (boot protocol: setup_sects at 0x1f1,
# payload_offset at 0x248, payload_length at 0x24c); its last 4 bytes are the unpacked size.
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
extract_vmlinux() {
  local bz=$1 out=$2 setup offset length size
  setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$bz" | tr -d ' ')
  offset=$(( (setup + 1) * 512 + $(u32 "$bz" $((0x248))) ))
  length=$(u32 "$bz" $((0x24c)))
  size=$(u32 "$bz" $((offset + length - 4)))
  # xz reports the size trailer as an unexpected end: the size check below is what counts.
  tail -c +$((offset + 1)) "$bz" | head -c "$length" | xz -dc > "$out.tmp" 2>/dev/null || true
  if [[ $(stat -c %s "$out.tmp") != "$size" || $(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ') != 7f454c46 ]]; then
    echo "guest-kernel: could not unpack $bz (wanted an ELF of $size bytes); QEMU will boot the compressed kernel, slowly" >&2
    rm -f "$out.tmp"
    return 0
  fi
  mv "$out.tmp" "$out"
}

if [[ -f $dir/.complete && ! -f $dir/boot/vmlinux-$release ]]; then
  # Unpacked by an earlier version of this script.
  extract_vmlinux "$dir/boot/vmlinuz-$release" "$dir/boot/vmlinux-$release"
  echo "$dir"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.unpack-$release-XXXXXX")
trap 'rm -rf "$work"' EXIT
# As root, apt downloads as _apt: let it write the work directory.
chmod 0777 "$work"
(cd "$work" && apt-get download -q "$package" >/dev/null </dev/null)
deb=$(ls "$work"/*.deb)
mkdir "$work/root"
dpkg-deb -x "$deb" "$work/root"
[[ -f $work/root/boot/vmlinuz-$release && -d $work/root/lib/modules/$release/kernel ]] \
  || { echo "guest-kernel: $deb has no vmlinuz-$release or lib/modules/$release" >&2; exit 1; }
# modules.dep is made by the package's postinst, which never runs here: depmod on the unpacked tree.
depmod -b "$work/root" "$release"
# Only the kernel and its modules are kept: boot/ and lib/modules/<release>.
rm -rf "$dir"
mkdir -p "$dir/lib/modules"
mv "$work/root/boot" "$dir/boot"
mv "$work/root/lib/modules/$release" "$dir/lib/modules/$release"
dpkg-deb -f "$deb" Version > "$dir/package-version"
extract_vmlinux "$dir/boot/vmlinuz-$release" "$dir/boot/vmlinux-$release"
touch "$dir/.complete"
echo "$dir"
