//! The record frame: pure bytes, no I/O. See FORMAT.md, "Record frame".
//!
//! ```text
//! 0       4       8               16              24              32  33  34  36      40
//! +-------+-------+---------------+---------------+---------------+---+---+---+-------+----------+-----+
//! | crc32 |  len  |      seq      |  segment_id   |   watermark   |knd|flg|rsv| magic | payload  | pad |
//! +-------+-------+---------------+---------------+---------------+---+---+---+-------+----------+-----+
//! ```
//! `crc32` (crc32fast, IEEE) covers bytes 4..40 and the payload, so length, seq, segment id,
//! watermark and kind are all bound by it. Frames start on 8-byte boundaries; `pad` is zeros.

use std::ops::Range;
use std::sync::Arc;

use crate::codec;
use crate::event::{Event, Kind};
use crate::storage::Bytes;

/// Bytes of the fixed frame header.
pub const RECORD_HEADER_BYTES: usize = 40;
/// Frames start on multiples of this.
pub const RECORD_ALIGN: usize = 8;
/// "TWR1" little-endian: never zero, so all-zero bytes never form a header.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"TWR1");
/// Hard format limit on one payload (64 MiB). Configurable limits must be at most this.
pub const PAYLOAD_BYTES_MAX: u32 = 64 << 20;

const OFF_CRC: usize = 0;
const OFF_LEN: usize = OFF_CRC + 4;
const OFF_SEQ: usize = OFF_LEN + 4;
const OFF_SEGMENT: usize = OFF_SEQ + 8;
const OFF_WATERMARK: usize = OFF_SEGMENT + 8;
const OFF_KIND: usize = OFF_WATERMARK + 8;
const OFF_FLAGS: usize = OFF_KIND + 1;
const OFF_RESERVED: usize = OFF_FLAGS + 1;
const OFF_MAGIC: usize = OFF_RESERVED + 2;
const _: () = assert!(OFF_MAGIC + 4 == RECORD_HEADER_BYTES);
const _: () = assert!(RECORD_HEADER_BYTES.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(RECORD_MAGIC != 0);

/// The header fields of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes (≥ 1).
    pub len: u32,
    /// Sequence number (≥ 1).
    pub seq: u64,
    /// Segment the frame belongs to.
    pub segment_id: u64,
    /// Highest seq covered by a completed fsync when this frame was written (< seq).
    pub watermark: u64,
    /// Kind code (1..=Kind::CODE_MAX).
    pub kind: u8,
}

/// A frame read back from bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The header.
    pub header: RecordHeader,
    /// The decoded event.
    pub event: Event,
}

/// Why bytes at an offset are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than a header, or than the header's length claims.
    Short {
        /// Bytes available.
        available: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The 40 header bytes are all zero (preallocated space or a lost write).
    Zero,
    /// Anything else: bad magic, length, checksum, binding, kind or payload.
    Invalid(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Short { available, needed } => {
                write!(f, "truncated frame: {available} of {needed} bytes")
            }
            FrameError::Zero => write!(f, "zero bytes where a frame header should be"),
            FrameError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

/// Total bytes a frame with `payload_len` occupies, padding included.
pub fn frame_bytes(payload_len: usize) -> usize {
    (RECORD_HEADER_BYTES + payload_len).next_multiple_of(RECORD_ALIGN)
}

/// Appends the frame of `event` to `out` (which must end on an aligned offset relative to the
/// frame start). Returns the frame's length in bytes.
///
/// `seq` must be at least 1 and `watermark` below it; a payload over `payload_bytes_max` (or
/// the format's [`PAYLOAD_BYTES_MAX`]) is refused and `out` is left as it was.
///
/// ```
/// use turnwal_journal::event::Event;
/// use turnwal_journal::record::{self, FrameError};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let event = Event::from_envelope(r#"{"kind":"meta","body":{"title":"t"}}"#, 0)?;
/// let mut segment = Vec::new();
/// let len = record::encode(2, 1, 1, &event, record::PAYLOAD_BYTES_MAX, &mut segment)
///     .map_err(|e| format!("{e:?}"))?;
/// assert_eq!(len % record::RECORD_ALIGN, 0);
///
/// let (rec, read) = record::decode(&segment, 1).map_err(|e| e.to_string())?;
/// assert_eq!((rec.header.seq, rec.header.watermark, read), (2, 1, len));
/// assert_eq!(rec.event, event);
///
/// segment[record::RECORD_HEADER_BYTES] ^= 0xff; // a damaged payload byte
/// let err = record::decode(&segment, 1).unwrap_err();
/// assert!(err.to_string().starts_with("checksum mismatch"));
/// assert!(matches!(err, FrameError::Invalid(_)));
/// # Ok(()) }
/// ```
pub fn encode(
    seq: u64,
    segment_id: u64,
    watermark: u64,
    event: &Event,
    payload_bytes_max: u32,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    debug_assert!(seq >= 1);
    debug_assert!(watermark < seq);
    let start = out.len();
    out.resize(start + RECORD_HEADER_BYTES, 0);
    codec::encode_event(event, out).map_err(EncodeError::Codec)?;
    let payload_len = out.len() - start - RECORD_HEADER_BYTES;
    let limit = payload_bytes_max.min(PAYLOAD_BYTES_MAX);
    if payload_len == 0 || payload_len > limit as usize {
        out.truncate(start);
        return Err(EncodeError::TooLarge {
            size: payload_len,
            limit: limit as usize,
        });
    }
    let h = &mut out[start..start + RECORD_HEADER_BYTES];
    h[OFF_LEN..OFF_SEQ].copy_from_slice(&(payload_len as u32).to_le_bytes());
    h[OFF_SEQ..OFF_SEGMENT].copy_from_slice(&seq.to_le_bytes());
    h[OFF_SEGMENT..OFF_WATERMARK].copy_from_slice(&segment_id.to_le_bytes());
    h[OFF_WATERMARK..OFF_KIND].copy_from_slice(&watermark.to_le_bytes());
    h[OFF_KIND] = event.kind.code();
    h[OFF_MAGIC..RECORD_HEADER_BYTES].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
    let crc = checksum(&out[start + OFF_LEN..]);
    out[start..start + OFF_LEN].copy_from_slice(&crc.to_le_bytes());
    let total = frame_bytes(payload_len);
    out.resize(start + total, 0);
    // Assert in pairs: what we wrote must read back as the same record.
    debug_assert!(
        matches!(decode(&out[start..], segment_id), Ok((ref r, n)) if n == total && r.header.seq == seq)
    );
    Ok(total)
}

/// Errors building a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload is empty or over the limit.
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The codec failed.
    Codec(String),
}

fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Reads and validates only the header at the start of `bytes`: everything but the checksum and
/// payload. Cheap; checks the length against the bytes available before anything is allocated.
pub fn peek_header(bytes: &[u8]) -> Result<RecordHeader, FrameError> {
    if bytes.len() < RECORD_HEADER_BYTES {
        if bytes.iter().all(|&b| b == 0) {
            return Err(FrameError::Zero);
        }
        return Err(FrameError::Short {
            available: bytes.len(),
            needed: RECORD_HEADER_BYTES,
        });
    }
    let h = &bytes[..RECORD_HEADER_BYTES];
    if h.iter().all(|&b| b == 0) {
        return Err(FrameError::Zero);
    }
    let magic = u32_at(h, OFF_MAGIC);
    if magic != RECORD_MAGIC {
        return Err(FrameError::Invalid(format!(
            "bad record magic {magic:#010x}"
        )));
    }
    let header = RecordHeader {
        len: u32_at(h, OFF_LEN),
        seq: u64_at(h, OFF_SEQ),
        segment_id: u64_at(h, OFF_SEGMENT),
        watermark: u64_at(h, OFF_WATERMARK),
        kind: h[OFF_KIND],
    };
    // The length field is checked against the format's limit, then against the bytes that are
    // there (the rest of the file), before anything is allocated or read for the payload: a
    // forged length costs nothing. The payload's own claims are bounded by the codec's limit.
    if header.len == 0 || header.len > PAYLOAD_BYTES_MAX {
        return Err(FrameError::Invalid(format!(
            "payload length {} out of range (1 to {PAYLOAD_BYTES_MAX} bytes; {} bytes follow \
             the header)",
            header.len,
            bytes.len() - RECORD_HEADER_BYTES
        )));
    }
    let needed = RECORD_HEADER_BYTES + header.len as usize;
    if bytes.len() < needed {
        return Err(FrameError::Short {
            available: bytes.len(),
            needed,
        });
    }
    Ok(header)
}

/// Decodes and fully validates the frame at the start of `bytes`, which must belong to segment
/// `segment_id`. Returns the record and the frame's length including padding. All-zero bytes
/// (pre-written space) are [`FrameError::Zero`], never a record. See [`encode`] for an
/// example.
pub fn decode(bytes: &[u8], segment_id: u64) -> Result<(Record, usize), FrameError> {
    decode_with(bytes, segment_id, |payload| {
        codec::decode_event(&bytes[payload])
    })
}

/// [`decode`] of the frame at `offset` of `buf`, with the event's body left in place (a range of
/// `buf`, see [`crate::body::Body`]). Accepts and refuses exactly what `decode` does.
pub fn decode_shared(
    buf: &Arc<Bytes>,
    offset: usize,
    segment_id: u64,
) -> Result<(Record, usize), FrameError> {
    let bytes = buf.get(offset..).unwrap_or(&[]);
    decode_with(bytes, segment_id, |payload| {
        codec::decode_event_shared(buf, offset + payload.start..offset + payload.end)
    })
}

/// Validates the frame at the start of `bytes`; `payload` decodes the payload at a range of
/// `bytes` once everything else is checked.
fn decode_with(
    bytes: &[u8],
    segment_id: u64,
    payload: impl FnOnce(Range<usize>) -> Result<Event, String>,
) -> Result<(Record, usize), FrameError> {
    let header = peek_header(bytes)?;
    let end = RECORD_HEADER_BYTES + header.len as usize;
    let stored = u32_at(bytes, OFF_CRC);
    let actual = checksum(&bytes[OFF_LEN..end]);
    if stored != actual {
        return Err(FrameError::Invalid(format!(
            "checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
        )));
    }
    // The checksum matched: from here on a failure is not a torn write but a bad writer or a
    // misplaced frame. Each is still refused.
    if header.segment_id != segment_id {
        return Err(FrameError::Invalid(format!(
            "frame of segment {} found in segment {segment_id}",
            header.segment_id
        )));
    }
    if header.seq == 0 || header.watermark >= header.seq {
        return Err(FrameError::Invalid(format!(
            "seq {} with watermark {} is impossible",
            header.seq, header.watermark
        )));
    }
    if bytes[OFF_FLAGS] != 0 || bytes[OFF_RESERVED] != 0 || bytes[OFF_RESERVED + 1] != 0 {
        return Err(FrameError::Invalid(
            "non-zero flags or reserved bytes".into(),
        ));
    }
    if header.kind == 0 || header.kind > Kind::CODE_MAX {
        return Err(FrameError::Invalid(format!(
            "unknown kind code {}",
            header.kind
        )));
    }
    let event = payload(RECORD_HEADER_BYTES..end).map_err(FrameError::Invalid)?;
    if event.kind.code() != header.kind {
        return Err(FrameError::Invalid(format!(
            "header kind {} disagrees with payload kind {}",
            header.kind,
            event.kind.code()
        )));
    }
    let total = frame_bytes(header.len as usize).min(bytes.len());
    Ok((Record { header, event }, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(body: &str) -> Event {
        Event {
            ts_ms: 0,
            turn: None,
            kind: Kind::Extension { name: "t".into() },
            body: body.into(),
        }
    }

    /// Freezes the frame layout. A failure means the on-disk format changed.
    #[test]
    fn golden_frame_bytes() {
        let mut out = Vec::new();
        let n = encode(5, 2, 4, &ext("{}"), PAYLOAD_BYTES_MAX, &mut out).unwrap();
        assert_eq!(n, 48);
        let expected: [u8; 48] = [
            0xe2, 0x46, 0x3b, 0x26, // crc32
            0x08, 0x00, 0x00, 0x00, // len 8
            5, 0, 0, 0, 0, 0, 0, 0, // seq
            2, 0, 0, 0, 0, 0, 0, 0, // segment id
            4, 0, 0, 0, 0, 0, 0, 0, // watermark
            10, 0, 0, 0, // kind x-, flags, reserved
            b'T', b'W', b'R', b'1', // magic
            0x00, 0x00, 0x09, 0x01, b't', 0x02, b'{',
            b'}', // payload: ts 0, turn None, Extension "t", body
        ];
        assert_eq!(out[..], expected[..], "got {out:02x?}");
    }

    #[test]
    fn round_trip_and_binding() {
        let mut out = Vec::new();
        encode(9, 3, 8, &ext(r#"{"a":1}"#), PAYLOAD_BYTES_MAX, &mut out).unwrap();
        let (r, n) = decode(&out, 3).unwrap();
        assert_eq!(n, out.len());
        assert_eq!(r.header.seq, 9);
        assert_eq!(r.header.watermark, 8);
        assert_eq!(r.event, ext(r#"{"a":1}"#));
        assert!(
            matches!(decode(&out, 4), Err(FrameError::Invalid(_))),
            "segment id is bound"
        );
    }

    #[test]
    fn zeros_never_validate() {
        for len in [0usize, 1, 39, 40, 48, 4096] {
            let z = vec![0u8; len];
            assert_eq!(decode(&z, 0), Err(FrameError::Zero), "len {len}");
        }
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let mut out = Vec::new();
        let n = encode(
            1,
            1,
            0,
            &ext(r#"{"k":"value"}"#),
            PAYLOAD_BYTES_MAX,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, out.len());
        let payload_len = out[4] as usize; // padding bytes are not covered
        for i in 0..RECORD_HEADER_BYTES + payload_len {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad, 1).is_err(), "flip at {i} validated");
        }
    }

    #[test]
    fn claimed_length_beyond_buffer_is_short_not_allocated() {
        let mut out = Vec::new();
        encode(1, 1, 0, &ext("{}"), PAYLOAD_BYTES_MAX, &mut out).unwrap();
        out[OFF_LEN..OFF_SEQ].copy_from_slice(&(PAYLOAD_BYTES_MAX).to_le_bytes());
        assert!(matches!(decode(&out, 1), Err(FrameError::Short { .. })));
        out[OFF_LEN..OFF_SEQ].copy_from_slice(&u32::MAX.to_le_bytes());
        let Err(FrameError::Invalid(why)) = decode(&out, 1) else {
            panic!("a 4 GiB length was not refused as invalid");
        };
        assert_eq!(
            why,
            "payload length 4294967295 out of range (1 to 67108864 bytes; 8 bytes follow the header)"
        );
    }

    #[test]
    fn oversized_payload_is_refused_at_encode() {
        let mut out = vec![1, 2, 3];
        let big = "x".repeat(200);
        let e = encode(1, 1, 0, &ext(&format!("\"{big}\"")), 100, &mut out).unwrap_err();
        assert!(matches!(e, EncodeError::TooLarge { limit: 100, .. }));
        assert_eq!(out, vec![1, 2, 3], "nothing left behind");
    }
}
