//! Arbitrary bytes as one `turnwal append` input line: a clear error naming a field, or an
//! event that is stored and exports JSON-equal (and reads back from its export line).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnwal_fuzz::bodies::append_input(data));
