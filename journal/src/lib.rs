//! The write path of turnwal, a crash-safe write-ahead turn journal for AI-agent chat
//! sessions: the record frame and its checksums, the event model, segments, the storage seam,
//! the writer with its group commit, and the writer lock. It knows bytes, files and fsync;
//! replay lives in `turnwal-replay`.
//!
//! **Most users want the `turnwal` crate instead**, which joins this crate and
//! `turnwal-replay` into a journal you open (with recovery), append to, read back, compact,
//! fork and salvage, and re-exports what of this crate a user needs (`Event`, `SyncPolicy`,
//! `WriterOptions`, `SessionId`, `Storage`, `storage::sim`, ...). Use this crate directly to:
//!
#![cfg_attr(
    feature = "sim",
    doc = "- crash-test storage code, or a harness, on the simulated file system \
           [`storage::sim`] (cargo feature `sim`), or plug another file system in behind \
           [`storage::Storage`];"
)]
#![cfg_attr(
    not(feature = "sim"),
    doc = "- crash-test storage code, or a harness, on the simulated file system \
           `storage::sim` (cargo feature `sim`), or plug another file system in behind \
           [`storage::Storage`];"
)]
//! - read or write record frames yourself ([`record::encode`], [`record::decode`]: a format
//!   tool, a fuzzer);
//! - validate envelopes without a journal ([`Event::from_envelope`],
//!   [`Event::write_envelope`]).
//!
//! # Modules
//!
//! - [`event`]: the JSON envelope on the way in, and the typed fields ([`Kind`]) stored beside
//!   each body so that replay never parses JSON; [`body`]: the body text, shared, not copied.
//! - [`record`]: the checksummed record frame (40-byte header, payload, padding);
//!   [`codec`]: the payload encoding.
//! - [`segment`]: segment files, their header, [`segment::SessionId`].
//! - [`storage`]: the file-system seam every operation goes through; [`storage::RealFs`].
//! - [`writer`]: the single writer (append, rotate, pre-write, poison on failure) and
//!   [`writer::SyncPolicy`]; [`group_commit`]: the durable watermark and shared fsyncs.
//! - [`lock`]: the writer lock, its holder record, and a takeover for provably dead holders.
//! - [`stored`]: reading stored (export) envelopes back, as found in snapshots.
//! - [`killpoint`]: named points where a crash test can make the process kill itself.
//! - [`error`]: [`Error`] and [`InputError`], each naming what and where.
//!
//! The on-disk format is specified in `journal/FORMAT.md` in the repository.

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
