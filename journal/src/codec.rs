//! The one place bincode is used: the payload codec of a record.
//!
//! bincode 2.0.1 is pinned (`=2.0.1`): 3.0.0 is an empty tombstone and the project is no longer
//! maintained, so the configuration below *is* the payload format. Golden-bytes tests in this
//! module and in `record` freeze it; changing anything here is a format change (FORMAT.md).

use std::ops::Range;
use std::sync::Arc;

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use bincode::{Decode, Encode};

use crate::body::Body;
use crate::event::{Event, Kind};
use crate::record::PAYLOAD_BYTES_MAX;
use crate::storage::Bytes;

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
    let (head, body) = decode_parts(bytes)?;
    let text = std::str::from_utf8(&bytes[body]).map_err(|e| format!("payload decode: {e}"))?;
    Ok(head.with_body(Body::from(text)))
}

/// [`decode_event`] of the payload at `range` of `buf`, with the body left in place: a range of
/// `buf`, not a copy (see [`Body`]). Accepts and refuses exactly what `decode_event` does.
pub fn decode_event_shared(buf: &Arc<Bytes>, range: Range<usize>) -> Result<Event, String> {
    let payload = buf
        .get(range.clone())
        .ok_or_else(|| format!("payload range {range:?} outside a buffer of {}", buf.len()))?;
    let (head, body) = decode_parts(payload)?;
    let start = range.start + body.start;
    let body = Body::shared(buf, start..range.start + body.end)
        .map_err(|e| format!("payload decode: {e}"))?;
    Ok(head.with_body(body))
}

/// Every field of an [`Event`] but the body, in the same order: bincode encodes a struct as its
/// fields one after the other, so a payload is a `Head` followed by the body as a `str`.
#[derive(Encode, Decode)]
struct Head {
    ts_ms: i64,
    turn: Option<u64>,
    kind: Kind,
}

impl Head {
    fn with_body(self, body: Body) -> Event {
        Event {
            ts_ms: self.ts_ms,
            turn: self.turn,
            kind: self.kind,
            body,
        }
    }
}

/// Decodes the head and finds the body's bytes (`payload[range]`, not yet checked as UTF-8).
/// Checks that the body ends the payload exactly and that the encoding is canonical.
fn decode_parts(payload: &[u8]) -> Result<(Head, Range<usize>), String> {
    let (head, used): (Head, usize) =
        bincode::decode_from_slice(payload, CONFIG).map_err(|e| format!("payload decode: {e}"))?;
    let (len, len_bytes) = read_varint(&payload[used..])?;
    let start = used + len_bytes;
    let available = payload.len() - start;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= available)
        .ok_or_else(|| {
            format!("payload decode: body claims {len} bytes, {available} remain in the payload")
        })?;
    if len != available {
        return Err(format!("payload has {} trailing bytes", available - len));
    }
    // Every non-canonical form bincode accepts is longer than the canonical one (an over-long
    // integer); booleans, option tags and enum tags are checked by bincode. So the head is
    // canonical exactly when its canonical size (counted, not written) is what it used.
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::encode_into_writer(&head, &mut size, CONFIG)
        .map_err(|e| format!("payload re-encode: {e}"))?;
    let canonical = size.bytes_written + varint_len(len as u64);
    if canonical != start {
        return Err(format!(
            "payload is not in canonical form ({} bytes, canonical {})",
            payload.len(),
            canonical + len
        ));
    }
    Ok((head, start..start + len))
}

/// Reads bincode's variable-length unsigned integer: one byte below 251, else a marker (251:
/// u16, 252: u32, 253: u64) and the value little-endian. Returns the value and bytes used.
/// Whether the form is the shortest is the caller's check (through the canonical size).
fn read_varint(b: &[u8]) -> Result<(u64, usize), String> {
    let short = || "payload decode: body length cut short".to_string();
    let first = *b.first().ok_or_else(short)?;
    let width = match first {
        0..=250 => return Ok((u64::from(first), 1)),
        251 => 2,
        252 => 4,
        253 => 8,
        _ => return Err(format!("payload decode: bad length marker {first}")),
    };
    let bytes = b.get(1..1 + width).ok_or_else(short)?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(bytes);
    Ok((u64::from_le_bytes(le), 1 + width))
}

/// Length of the canonical (shortest) varint encoding of `v`.
fn varint_len(v: u64) -> usize {
    match v {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MessageInfo, Role};

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

    /// The shared decoder accepts and refuses exactly what the copying one does, and leaves
    /// the body in the buffer.
    #[test]
    fn shared_decode_is_the_same_decode_with_the_body_in_place() {
        let mut payload = vec![0xaa; 3]; // the payload does not start the buffer
        encode_event(&sample(), &mut payload).unwrap();
        let end = payload.len();
        payload.extend_from_slice(&[0xbb; 5]);
        let buf = Arc::new(Bytes::Owned(payload));
        let e = decode_event_shared(&buf, 3..end).unwrap();
        assert_eq!(e, sample());
        assert!(e.body.is_shared());
        assert_eq!(decode_event(&buf[3..end]).unwrap(), e);
        assert!(!decode_event(&buf[3..end]).unwrap().body.is_shared());
        for cut in 3..end {
            assert_eq!(
                decode_event_shared(&buf, 3..cut).is_err(),
                decode_event(&buf[3..cut]).is_err(),
                "cut at {cut}"
            );
            assert!(decode_event_shared(&buf, 3..cut).is_err(), "cut at {cut}");
        }
        assert!(decode_event_shared(&buf, 3..buf.len() + 1).is_err());
    }

    /// The body's length is read by hand: an over-long form of it is refused like any other.
    #[test]
    fn an_over_long_body_length_is_refused() {
        let mut canonical = Vec::new();
        encode_event(&sample(), &mut canonical).unwrap();
        let len_at = canonical.len() - 12; // 0x0b, then the 11 body bytes
        assert_eq!(canonical[len_at], 0x0b);
        let mut over_long = canonical[..len_at].to_vec();
        over_long.extend_from_slice(&[251, 0x0b, 0x00]); // u16 marker for a value below 251
        over_long.extend_from_slice(&canonical[len_at + 1..]);
        let err = decode_event(&over_long).unwrap_err();
        assert!(err.contains("canonical"), "{err}");
        let len = over_long.len();
        let buf = Arc::new(Bytes::Owned(over_long));
        let err = decode_event_shared(&buf, 0..len).unwrap_err();
        assert!(err.contains("canonical"), "{err}");
        // A body length past the payload, and a bad marker.
        let mut past = canonical.clone();
        past[len_at] = 0x0c;
        assert!(decode_event(&past).unwrap_err().contains("remain"));
        let mut marker = canonical.clone();
        marker[len_at] = 0xfe;
        assert!(decode_event(&marker).unwrap_err().contains("marker"));
        let mut not_utf8 = canonical;
        not_utf8[len_at + 2] = 0xff;
        assert!(decode_event(&not_utf8).is_err());
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
