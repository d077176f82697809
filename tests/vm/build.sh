#!/usr/bin/env bash
# Builds what the tier-3 VM tests need (tests/vm_powercut.rs runs this first), under target/vm/:
#
#   cargo/…/turnwal   the project's CLI, statically linked (its own target dir: the normal build
#                     cache is not disturbed)
#   feeder            tests/vm/feeder.rs, statically linked: the guest's workload
#   initrd-<key>.gz   busybox-static + the virtio modules of the Debian cloud kernel + both
#                     programs + tests/vm/init.sh as /init; <key> hashes every input
#   base-<key>.img    an empty 64 MiB ext4 image (4 KiB blocks, the mke2fs defaults otherwise)
#   env               KEY=VALUE lines naming the above, the kernel and the tools, for the test
#
# It installs the Debian packages it needs (apt-get, quiet, only what is missing) and finds the
# kernel under /boot by glob. Everything is rebuilt only when an input changed. Exit 1 with a
# message naming what is missing when something cannot be had.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/target/vm
mkdir -p "$OUT"
say() { echo "vm build: $*" >&2; }
die() {
	say "$*"
	exit 1
}

# --- Debian packages ------------------------------------------------------------------------
PACKAGES=(qemu-system-x86 linux-image-cloud-amd64 busybox-static e2fsprogs cpio)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	[ "$(id -u)" = 0 ] || die "need root to install ${missing[*]} (or install them first)"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
		> "$OUT/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed: see $OUT/apt.log"
fi
for tool in qemu-system-x86_64 mkfs.ext4 e2fsck debugfs cpio gzip rustc cargo; do
	command -v "$tool" > /dev/null || die "$tool not found"
done
BUSYBOX=$(dpkg-query -L busybox-static | grep -E '/bin/busybox$' | head -n 1)
[ -x "$BUSYBOX" ] || die "busybox-static installed but no busybox binary found"

# --- kernel and its modules -----------------------------------------------------------------
KERNEL=$(ls /boot/vmlinuz-*-cloud-amd64 2> /dev/null | sort -V | tail -n 1)
[ -n "$KERNEL" ] || die "no /boot/vmlinuz-*-cloud-amd64 (package linux-image-cloud-amd64)"
KVER=${KERNEL#/boot/vmlinuz-}
MODDIR=/lib/modules/$KVER
[ -f "$MODDIR/modules.dep" ] || die "no $MODDIR/modules.dep"
# The modules virtio-blk on PCI needs, dependencies first; anything built in needs no file.
declare -a MODS=()
add_module() { # $1: module path relative to $MODDIR, as in modules.dep
	local m=$1 dep
	for have in "${MODS[@]:-}"; do [ "$have" = "$m" ] && return 0; done
	for dep in $(grep -E "^$m:" "$MODDIR/modules.dep" | cut -d: -f2-); do add_module "$dep"; done
	MODS+=("$m")
}
for name in virtio_pci virtio_blk; do
	path=$(grep -E "(^|/)$name\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | cut -d: -f1 || true)
	if [ -z "$path" ]; then
		grep -qE "^CONFIG_${name^^}=y" "/boot/config-$KVER" 2> /dev/null ||
			die "$name is neither a module of $KVER nor built in"
		continue
	fi
	add_module "$path"
done
for m in "${MODS[@]}"; do
	case "$m" in *.ko) ;; *) die "compressed module $m: not supported by this script" ;; esac
done

# --- the static programs --------------------------------------------------------------------
TRIPLE=x86_64-unknown-linux-gnu
say "cargo build --release (static) ..."
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release \
	--target "$TRIPLE" --bin turnwal --target-dir "$OUT/cargo" ||
	die "static build of turnwal failed"
TURNWAL=$OUT/cargo/$TRIPLE/release/turnwal
FEEDER=$OUT/feeder
if [ ! -x "$FEEDER" ] || [ tests/vm/feeder.rs -nt "$FEEDER" ]; then
	rustc --edition 2024 -C opt-level=2 -C strip=symbols -C target-feature=+crt-static \
		--target "$TRIPLE" tests/vm/feeder.rs -o "$FEEDER.tmp" || die "feeder build failed"
	mv "$FEEDER.tmp" "$FEEDER"
fi
for bin in "$TURNWAL" "$FEEDER"; do
	file -b "$bin" 2> /dev/null | grep -qE "static(-pie)? linked" ||
		ldd "$bin" 2>&1 | grep -qE "statically linked|not a dynamic executable" ||
		die "$bin is not statically linked"
done

# --- initramfs ------------------------------------------------------------------------------
KEY=$({
	sha256sum "$BUSYBOX" "$TURNWAL" "$FEEDER" tests/vm/init.sh
	for m in "${MODS[@]}"; do sha256sum "$MODDIR/$m"; done
} | sha256sum | cut -c1-16)
INITRD=$OUT/initrd-$KEY.gz
if [ ! -f "$INITRD" ]; then
	say "initramfs $INITRD"
	STAGE=$(mktemp -d "$OUT/initrd.XXXXXX")
	mkdir -p "$STAGE"/{bin,dev,proc,sys,mnt,tmp,lib/modules}
	cp "$BUSYBOX" "$STAGE/bin/busybox"
	cp "$TURNWAL" "$FEEDER" "$STAGE/bin/"
	cp tests/vm/init.sh "$STAGE/init"
	chmod 755 "$STAGE/init"
	for m in "${MODS[@]}"; do
		cp "$MODDIR/$m" "$STAGE/lib/modules/"
		basename "$m" .ko >> "$STAGE/lib/modules/load"
	done
	(cd "$STAGE" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 > "$INITRD.tmp")
	mv "$INITRD.tmp" "$INITRD"
	rm -rf "$STAGE"
	# Older keys are stale once nobody can be using them (a run copies what it boots).
	find "$OUT" -maxdepth 1 -name 'initrd-*.gz' ! -name "initrd-$KEY.gz" -mmin +1440 -delete
fi

# --- the empty disk -------------------------------------------------------------------------
MKE2FS_VERSION=$(mkfs.ext4 -V 2>&1 | head -n 1 | tr -cd 'A-Za-z0-9.')
BASE=$OUT/base-$(echo "$MKE2FS_VERSION 64M 4096" | sha256sum | cut -c1-12).img
if [ ! -f "$BASE" ]; then
	say "disk image $BASE"
	rm -f "$BASE.tmp"
	truncate -s 64M "$BASE.tmp"
	mkfs.ext4 -q -F -b 4096 -T default -E nodiscard -L turnwal "$BASE.tmp" ||
		die "mkfs.ext4 failed"
	mv "$BASE.tmp" "$BASE"
fi

cat > "$OUT/env.tmp" << EOF
KERNEL=$KERNEL
INITRD=$INITRD
BASE_IMG=$BASE
TURNWAL=$TURNWAL
FEEDER=$FEEDER
QEMU=$(command -v qemu-system-x86_64)
E2FSCK=$(command -v e2fsck)
DEBUGFS=$(command -v debugfs)
EOF
mv "$OUT/env.tmp" "$OUT/env"
say "ready: $OUT/env"
