//! Arbitrary bytes as a frame: decoding never panics, and anything accepted re-encodes to the
//! same bytes (a frame is never "accepted" that the writer could not have written).
#![no_main]

use libfuzzer_sys::fuzz_target;
use turnwal_journal::record::{self, PAYLOAD_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    let segment_id = 1;
    if let Ok((rec, len)) = record::decode(data, segment_id) {
        let mut again = Vec::new();
        let n = record::encode(rec.header.seq, segment_id, rec.header.watermark, &rec.event, PAYLOAD_BYTES_MAX, &mut again)
            .expect("an accepted frame re-encodes");
        assert_eq!(n, len.max(n));
        let covered = record::RECORD_HEADER_BYTES + rec.header.len as usize;
        assert_eq!(&again[..covered], &data[..covered], "re-encoding differs");
    }
});
