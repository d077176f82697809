//! turnwal-journal: the write path of turnwal.
//!
//! Knows bytes, files and fsync: the record frame and its codec ([`record`], [`codec`]), the
//! event model ([`event`]), segments ([`segment`]), the storage seam ([`storage`]), the writer
//! with group commit ([`writer`], [`group_commit`]) and the writer lock ([`lock`]).
//! The on-disk format is specified in `journal/FORMAT.md`.

#![deny(missing_docs)]

pub mod body;
pub mod codec;
pub mod error;
pub mod event;
pub mod group_commit;
pub mod killpoint;
pub mod lock;
pub mod record;
pub mod segment;
pub mod storage;
pub mod stored;
pub mod writer;

pub use body::Body;
pub use error::{Error, InputError, LockHolder, Result};
pub use event::{Event, Kind};
