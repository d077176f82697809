//! The one place bincode is used: the payload codec of a record.
//!
//! bincode 2.0.1 is pinned (`=2.0.1`): 3.0.0 is an empty tombstone and the project is no longer
//! maintained, so the configuration below *is* the payload format. Golden-bytes tests in this
//! module and in `record` freeze it; changing anything here is a format change (FORMAT.md).

use bincode::config::{Configuration, Limit, LittleEndian, Varint};

use crate::event::Event;
use crate::record::PAYLOAD_BYTES_MAX;

type Config = Configuration<LittleEndian, Varint, Limit<{ PAYLOAD_BYTES_MAX as usize }>>;

/// Little-endian, LEB-style variable integers, and a hard limit on what a decode may claim, so
/// hostile bytes never allocate more than a payload can hold.
const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_variable_int_encoding()
    .with_limit::<{ PAYLOAD_BYTES_MAX as usize }>();

/// Appends the payload encoding of `event` to `out`.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) -> Result<(), String> {
    bincode::encode_into_std_write(event, out, CONFIG)
        .map(|_| ())
        .map_err(|e| format!("payload encode: {e}"))
}

/// Decodes a payload; every byte must be consumed, and the encoding must be the one the writer
/// produces (canonical): bincode itself accepts over-long variable integers, so a frame the
/// writer could never have written would otherwise pass once its checksum matched.
pub fn decode_event(bytes: &[u8]) -> Result<Event, String> {
    let (event, used): (Event, usize) =
        bincode::decode_from_slice(bytes, CONFIG).map_err(|e| format!("payload decode: {e}"))?;
    if used != bytes.len() {
        return Err(format!("payload has {} trailing bytes", bytes.len() - used));
    }
    // Every non-canonical form bincode accepts is longer than the canonical one (an over-long
    // integer); booleans, option tags and enum tags are checked by bincode. So the encoding is
    // canonical exactly when the canonical size (counted, not written) equals the length.
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::encode_into_writer(&event, &mut size, CONFIG)
        .map_err(|e| format!("payload re-encode: {e}"))?;
    if size.bytes_written != bytes.len() {
        return Err(format!(
            "payload is not in canonical form ({} bytes, canonical {})",
            bytes.len(),
            size.bytes_written
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Kind, MessageInfo, Role};

    fn sample() -> Event {
        Event {
            ts_ms: 1_795_000_000_123,
            turn: Some(3),
            kind: Kind::Message(MessageInfo {
                id: "m1".into(),
                role: Role::Assistant,
                status: None,
                tool_calls: vec![("c1".into(), "sh".into())],
                tool_results: vec![],
            }),
            body: r#"{"id":"m1"}"#.into(),
        }
    }

    /// Found by the `decode_record` fuzz target: a payload whose timestamp was written as an
    /// over-long variable integer (a 64-bit marker for a value that fits in 32 bits) decoded,
    /// so a checksum-valid frame the writer could never have produced was accepted.
    #[test]
    fn regression_an_over_long_integer_is_refused() {
        let mut canonical = Vec::new();
        let mut e = sample();
        e.ts_ms = 5_540_000; // zigzag 11_080_000: canonical is the u32 marker and 4 bytes
        encode_event(&e, &mut canonical).unwrap();
        assert_eq!(canonical[0], 0xfc, "u32 marker");
        assert_eq!(decode_event(&canonical).unwrap(), e);
        let mut over_long = vec![0xfd]; // u64 marker, then the same value in 8 bytes
        over_long.extend_from_slice(&canonical[1..5]);
        over_long.extend_from_slice(&[0, 0, 0, 0]);
        over_long.extend_from_slice(&canonical[5..]);
        let err = decode_event(&over_long).unwrap_err();
        assert!(err.contains("canonical"), "{err}");
    }

    /// Freezes the payload format. If this fails, the on-disk format changed: bump the format
    /// version and update FORMAT.md, do not edit the expected bytes.
    #[test]
    fn golden_payload_bytes() {
        let mut out = Vec::new();
        encode_event(&sample(), &mut out).unwrap();
        let expected: &[u8] = &[
            0xfd, 0xf6, 0xbc, 0xac, 0xdc, 0x43, 0x03, 0x00,
            0x00, // ts_ms: zigzag, 0xfd = u64 follows
            0x01, 0x03, // turn: Some(3)
            0x03, // Kind::Message (variant index 3)
            0x02, b'm', b'1', // id
            0x03, // role Assistant
            0x00, // status None
            0x01, 0x02, b'c', b'1', 0x02, b's', b'h', // tool_calls
            0x00, // tool_results
            0x0b, b'{', b'"', b'i', b'd', b'"', b':', b'"', b'm', b'1', b'"', b'}', // body
        ];
        assert_eq!(out, expected, "got {out:02x?}");
        assert_eq!(decode_event(&out).unwrap(), sample());
    }

    #[test]
    fn trailing_and_truncated_payloads_are_refused() {
        let mut out = Vec::new();
        encode_event(&sample(), &mut out).unwrap();
        out.push(0);
        assert!(decode_event(&out).unwrap_err().contains("trailing"));
        out.truncate(out.len() - 3);
        assert!(decode_event(&out).is_err());
    }

    #[test]
    fn huge_claimed_length_allocates_nothing() {
        // turn None, ts 0, Kind::Extension, name length claiming u64::MAX bytes.
        let bytes = [
            0x00, 0x00, 0x09, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert!(decode_event(&bytes).is_err());
    }
}
