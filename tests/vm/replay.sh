#!/usr/bin/env bash
# Replays a failure the VM tier kept: tests/vm/replay.sh target/vm/failures/<name>
#
#   kill-*   boots the kept disk image once more (the state a power cut left), lets the guest
#            recover and report on the chain, and checks the report against the same floor
#   state-*  rebuilds the replayed state from base.img + log.bin and the state in failure.json,
#            checks it is the kept state.img, runs e2fsck and the host's turnwal, checks again
#
# failure.json says what failed (why, seed, cycle, chain, plan, floor, acknowledgements).
set -euo pipefail
[ $# -eq 1 ] && [ -f "$1/failure.json" ] || {
	echo "usage: $0 target/vm/failures/<name>  (a directory holding failure.json)" >&2
	exit 2
}
dir=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
TURNWAL_VM_REPLAY=$dir exec cargo test --release --test vm_powercut -- --nocapture --exact \
	vm_powercut
