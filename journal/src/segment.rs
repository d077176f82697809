//! Segments: naming, the segment header, and creating a new segment safely.
//! See FORMAT.md, "Segment header".
//!
//! ```text
//! 0        8    10   12     16          24          32               48          56    60    64
//! +--------+----+----+------+-----------+-----------+----------------+-----------+-----+-----+
//! | magic  |ver |hlen|flags | segment id| first seq |   session id   |created_at | rsv |crc32|
//! +--------+----+----+------+-----------+-----------+----------------+-----------+-----+-----+
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage, StorageFile};

/// Magic at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TWALSEG\0";
/// Current format version.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the segment header; the first record starts here.
pub const SEGMENT_HEADER_BYTES: usize = 64;

const OFF_VERSION: usize = 8;
const OFF_HLEN: usize = OFF_VERSION + 2;
const OFF_FLAGS: usize = OFF_HLEN + 2;
const OFF_ID: usize = OFF_FLAGS + 4;
const OFF_FIRST_SEQ: usize = OFF_ID + 8;
const OFF_SESSION: usize = OFF_FIRST_SEQ + 8;
const OFF_CREATED: usize = OFF_SESSION + 16;
const OFF_RESERVED: usize = OFF_CREATED + 8;
const OFF_CRC: usize = OFF_RESERVED + 4;
const _: () = assert!(OFF_CRC + 4 == SEGMENT_HEADER_BYTES);
const _: () = assert!(SEGMENT_HEADER_BYTES.is_multiple_of(crate::record::RECORD_ALIGN));

const NAME_PREFIX: &str = "segment-";
const NAME_SUFFIX: &str = ".twl";
const NAME_DIGITS: usize = 20;
/// Suffix of files being prepared; never part of the journal, removed by a writer on open.
pub const TMP_SUFFIX: &str = ".tmp";

/// A 128-bit session id, shown as 32 lowercase hex digits.
///
/// ```
/// # use turnwal_journal::segment::SessionId;
/// let id = SessionId::random();
/// assert_eq!(SessionId::parse(&id.to_string()), Some(id));
/// assert_eq!(SessionId::parse("not an id"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A fresh random id (from the OS random source, falling back to time and pid). See
    /// [`SessionId`] for an example.
    pub fn random() -> SessionId {
        let mut b = [0u8; 16];
        let from_os = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
        if from_os.is_err() {
            let now = crate::event::now_ms() as u64;
            b[..8].copy_from_slice(&now.to_le_bytes());
            b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        }
        SessionId(b)
    }

    /// Parses 32 hex digits (either case; it prints in lowercase). See [`SessionId`] for an
    /// example.
    pub fn parse(s: &str) -> Option<SessionId> {
        if s.len() != 32 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut b = [0u8; 16];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(SessionId(b))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment id: 1 for the first segment, +1 per rotation.
    pub segment_id: u64,
    /// Seq of the first record in this segment.
    pub first_seq: u64,
    /// The session this journal holds.
    pub session_id: SessionId,
    /// When the segment was created, ms since the epoch.
    pub created_at_ms: i64,
}

impl SegmentHeader {
    /// The 64 header bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut h = [0u8; SEGMENT_HEADER_BYTES];
        h[..OFF_VERSION].copy_from_slice(&SEGMENT_MAGIC);
        h[OFF_VERSION..OFF_HLEN].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[OFF_HLEN..OFF_FLAGS].copy_from_slice(&(SEGMENT_HEADER_BYTES as u16).to_le_bytes());
        h[OFF_ID..OFF_FIRST_SEQ].copy_from_slice(&self.segment_id.to_le_bytes());
        h[OFF_FIRST_SEQ..OFF_SESSION].copy_from_slice(&self.first_seq.to_le_bytes());
        h[OFF_SESSION..OFF_CREATED].copy_from_slice(&self.session_id.0);
        h[OFF_CREATED..OFF_RESERVED].copy_from_slice(&self.created_at_ms.to_le_bytes());
        let crc = crc32fast::hash(&h[..OFF_CRC]);
        h[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Reads and validates a header; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        let Some(h) = bytes.get(..SEGMENT_HEADER_BYTES) else {
            return Err(format!(
                "{} bytes, shorter than a segment header",
                bytes.len()
            ));
        };
        if h[..OFF_VERSION] != SEGMENT_MAGIC {
            return Err("not a turnwal segment (bad magic)".into());
        }
        let word = |a: usize, b: usize| {
            h[a..b]
                .iter()
                .rev()
                .fold(0u64, |acc, &x| acc << 8 | u64::from(x))
        };
        let crc = word(OFF_CRC, SEGMENT_HEADER_BYTES) as u32;
        if crc != crc32fast::hash(&h[..OFF_CRC]) {
            return Err("segment header checksum mismatch".into());
        }
        let version = word(OFF_VERSION, OFF_HLEN) as u16;
        if version != FORMAT_VERSION {
            return Err(format!(
                "unsupported format version {version} (this build reads {FORMAT_VERSION})"
            ));
        }
        if word(OFF_HLEN, OFF_FLAGS) as usize != SEGMENT_HEADER_BYTES
            || word(OFF_FLAGS, OFF_ID) != 0
            || word(OFF_RESERVED, OFF_CRC) != 0
        {
            return Err("unexpected header length, flags or reserved bytes".into());
        }
        let mut session = [0u8; 16];
        session.copy_from_slice(&h[OFF_SESSION..OFF_CREATED]);
        let header = SegmentHeader {
            segment_id: word(OFF_ID, OFF_FIRST_SEQ),
            first_seq: word(OFF_FIRST_SEQ, OFF_SESSION),
            session_id: SessionId(session),
            created_at_ms: word(OFF_CREATED, OFF_RESERVED) as i64,
        };
        if header.segment_id == 0 || header.first_seq == 0 {
            return Err("segment id and first seq must be at least 1".into());
        }
        Ok(header)
    }
}

/// `segment-<20 digits>.twl` for segment `id`.
pub fn segment_name(id: u64) -> String {
    format!("{NAME_PREFIX}{id:0NAME_DIGITS$}{NAME_SUFFIX}")
}

/// The id in a segment file name, or `None` for any other name (tmp files included).
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&id| id > 0)
}

/// Segment ids present in `dir`, ascending.
pub fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>> {
    let names = storage.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut ids: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Path of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_name(id))
}

/// Creates segment `header.segment_id` so that it is never seen half-made: header and
/// `prewrite_bytes` of zeros go to a tmp file, which is fdatasynced, renamed into place, and the
/// directory fsynced. Returns the open file; records may be acknowledged in it at once.
pub fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    header: &SegmentHeader,
    prewrite_bytes: u64,
) -> Result<Box<dyn StorageFile>> {
    let path = segment_path(dir, header.segment_id);
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", segment_name(header.segment_id)));
    if storage
        .exists(&tmp)
        .map_err(|e| Error::io("stat", &tmp, e))?
    {
        storage
            .remove_file(&tmp)
            .map_err(|e| Error::io("unlink", &tmp, e))?;
    }
    let file = storage
        .open(&tmp, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &tmp, e))?;
    let len = prewrite_bytes.max(SEGMENT_HEADER_BYTES as u64);
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(SEGMENT_HEADER_BYTES)];
    buf[..SEGMENT_HEADER_BYTES].copy_from_slice(&header.encode());
    file.write_at(0, &buf)
        .map_err(|e| Error::io("write", &tmp, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &tmp, e))?;
    crate::killpoint::kill_point("segment:tmp-synced");
    storage
        .rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_build_and_parse_side_by_side() {
        assert_eq!(segment_name(7), "segment-00000000000000000007.twl");
        assert_eq!(parse_segment_name(&segment_name(7)), Some(7));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "segment-7.twl",
            "segment-00000000000000000007.twl.tmp",
            "segment-0000000000000000000a.twl",
            "segment-00000000000000000000.twl",
            "x",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    /// Freezes the segment header layout.
    #[test]
    fn golden_header_bytes() {
        let h = SegmentHeader {
            segment_id: 2,
            first_seq: 100,
            session_id: SessionId([0xab; 16]),
            created_at_ms: 1,
        };
        let bytes = h.encode();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"TWALSEG\0");
        expected.extend_from_slice(&[1, 0, 64, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&2u64.to_le_bytes());
        expected.extend_from_slice(&100u64.to_le_bytes());
        expected.extend_from_slice(&[0xab; 16]);
        expected.extend_from_slice(&1i64.to_le_bytes());
        expected.extend_from_slice(&[0; 4]);
        expected.extend_from_slice(&0x4fcd_7e14u32.to_le_bytes());
        assert_eq!(bytes[..], expected[..], "got {bytes:02x?}");
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
    }

    #[test]
    fn damaged_headers_are_refused() {
        let h = SegmentHeader {
            segment_id: 1,
            first_seq: 1,
            session_id: SessionId([1; 16]),
            created_at_ms: 5,
        };
        let good = h.encode();
        assert!(SegmentHeader::decode(&[0u8; 64]).is_err());
        assert!(SegmentHeader::decode(&good[..63]).is_err());
        for i in 0..SEGMENT_HEADER_BYTES {
            let mut bad = good;
            bad[i] ^= 1;
            assert!(SegmentHeader::decode(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn session_id_hex_round_trip() {
        let id = SessionId::random();
        assert_eq!(SessionId::parse(&id.to_string()), Some(id));
        assert_eq!(SessionId::parse("zz"), None);
    }
}
