//! Arbitrary bytes as a JSONL snapshot: reading never panics; a snapshot that does not read
//! back whole is never used, even when it is the newest file of a journal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnwal_fuzz::bodies::snapshot_parse(data));
