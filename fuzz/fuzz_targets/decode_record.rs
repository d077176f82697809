//! Arbitrary bytes as a frame: decoding never panics, and anything accepted re-encodes to the
//! same bytes (a frame is never accepted that the writer could not have written).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnwal_fuzz::bodies::decode_record(data));
