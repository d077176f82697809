//! A structured workload (appends, syncs, rotations through tiny segments, compactions,
//! reopens), a crash point and a power-cut transform, run on the simulated storage: the
//! recovered disk satisfies the contract's invariants (the crash harness's check).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnwal_fuzz::bodies::torn_workload(data));
