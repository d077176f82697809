//! Arbitrary bytes as a segment, or appended to a valid segment (torn and garbage tails):
//! replay never panics, returns a prefix of the valid records, and a writer's recovery (which
//! cuts a proven torn tail) followed by a second replay gives the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnwal_fuzz::bodies::replay_segment(data));
