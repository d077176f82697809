//! [`Body`]: the JSON text of an event body, shared instead of copied.
//!
//! Replay is bounded by copying, not by parsing: a 200k-message session holds about 200 MB of
//! bodies, and copying each one out of the segment into its own allocation (then into the
//! session view, then into the session a caller gets) cost more than everything else replay
//! does. A body read from a segment or snapshot is therefore a range of that file's bytes
//! (mapped, or read once into one buffer), kept alive by a reference count; a body built at
//! append time owns its text. Cloning either is a reference-count increment.
//!
//! Invariants:
//! - A shared body's range lies inside its buffer and was valid UTF-8 when it was made
//!   ([`Body::shared`] checks both).
//! - Reading a body never panics. Mapped files are only sealed segments and installed
//!   snapshots, which nothing rewrites; if something outside turnwal rewrote one under a reader
//!   anyway and the range stopped being UTF-8, [`Body::as_str`] gives `{}` rather than invalid
//!   text (the range is checked again on each read, at memory speed).

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use bincode::de::{BorrowDecoder, Decoder};
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{BorrowDecode, Decode, Encode};

use crate::storage::Bytes;

/// The JSON text of an event body: owned, or a range of a shared file buffer.
#[derive(Clone)]
pub struct Body(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Arc<String>),
    Shared {
        buf: Arc<Bytes>,
        range: Range<usize>,
    },
}

impl Body {
    /// A body that is `range` of `buf`. Refuses a range outside the buffer or not UTF-8.
    pub fn shared(buf: &Arc<Bytes>, range: Range<usize>) -> Result<Body, String> {
        let bytes = buf
            .get(range.clone())
            .ok_or_else(|| format!("body range {range:?} outside a buffer of {}", buf.len()))?;
        std::str::from_utf8(bytes).map_err(|e| format!("body is not UTF-8: {e}"))?;
        Ok(Body(Repr::Shared {
            buf: Arc::clone(buf),
            range,
        }))
    }

    /// A body that is `text`, a `str` lying inside `buf` (found by its address): no copy, and
    /// no second UTF-8 check, since `text` is already text. `None` if `text` is not inside
    /// `buf`.
    pub fn shared_str(buf: &Arc<Bytes>, text: &str) -> Option<Body> {
        let start = (text.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
        let range = start..start.checked_add(text.len())?;
        // The same address and length: the same bytes, which `text` proves are UTF-8.
        let inside = buf.get(range.clone())?;
        std::ptr::eq(inside, text.as_bytes()).then(|| {
            Body(Repr::Shared {
                buf: Arc::clone(buf),
                range,
            })
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Owned(s) => s,
            Repr::Shared { buf, range } => buf
                .get(range.clone())
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("{}"),
        }
    }

    /// Whether this body points into a shared file buffer (for tests and memory accounting).
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared { .. })
    }
}

impl Default for Body {
    fn default() -> Body {
        Body(Repr::Owned(Arc::new(String::new())))
    }
}

impl Deref for Body {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Body {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body(Repr::Owned(Arc::new(s)))
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Body {
        Body::from(s.to_string())
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Body {}

impl PartialEq<str> for Body {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Body {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Body {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// Encoded exactly as a `str` (length, then bytes): the payload format does not know `Body`.
impl Encode for Body {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.as_str().encode(encoder)
    }
}

/// Decodes an owned body; replay decodes shared ones with `codec::decode_event_shared`.
impl<C> Decode<C> for Body {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Body, DecodeError> {
        String::decode(decoder).map(Body::from)
    }
}

impl<'de, C> BorrowDecode<'de, C> for Body {
    fn borrow_decode<D: BorrowDecoder<'de, Context = C>>(
        decoder: &mut D,
    ) -> Result<Body, DecodeError> {
        String::decode(decoder).map(Body::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_body_reads_its_range_and_refuses_bad_ones() {
        let buf = Arc::new(Bytes::Owned(b"xx{\"a\":1}yy\xff".to_vec()));
        let b = Body::shared(&buf, 2..9).unwrap();
        assert_eq!(b, "{\"a\":1}");
        assert!(b.is_shared());
        assert_eq!(b.clone(), Body::from("{\"a\":1}"));
        assert!(Body::shared(&buf, 2..20).unwrap_err().contains("outside"));
        assert!(Body::shared(&buf, 9..12).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn a_str_inside_the_buffer_is_shared_and_one_outside_is_not() {
        let buf = Arc::new(Bytes::Owned(b"xx{\"a\":1}yy".to_vec()));
        let text = std::str::from_utf8(&buf[2..9]).unwrap();
        let b = Body::shared_str(&buf, text).unwrap();
        assert!(b.is_shared());
        assert_eq!(b, "{\"a\":1}");
        let elsewhere = String::from("{\"a\":1}");
        assert!(Body::shared_str(&buf, &elsewhere).is_none());
        let other = Arc::new(Bytes::Owned(b"xx{\"a\":1}yy".to_vec()));
        assert!(
            Body::shared_str(&other, text).is_none(),
            "same bytes, other buffer"
        );
    }

    #[test]
    fn encodes_as_a_str() {
        let cfg = bincode::config::standard();
        let a = bincode::encode_to_vec(Body::from("{}"), cfg).unwrap();
        let b = bincode::encode_to_vec("{}", cfg).unwrap();
        assert_eq!(a, b);
        let (back, _): (Body, usize) = bincode::decode_from_slice(&a, cfg).unwrap();
        assert_eq!(back, "{}");
    }
}
