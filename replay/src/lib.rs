//! The read path of turnwal, a crash-safe write-ahead turn journal for AI-agent chat
//! sessions: scanning segments, deciding what damage means, folding events into the
//! materialised session, and the JSONL snapshot. Pure where it can be: everything but
//! [`recover::apply_cut`] and [`compact`] only reads.
//!
//! **Most users want the `turnwal` crate instead**, which opens a journal with this crate's
//! recovery and gives back a [`session::Session`] (and re-exports it, with `Mode`, `Status`,
//! `Action` and the session views). Use this crate directly to:
//!
//! - fold events you hold into a session without a journal ([`session::SessionFold`]);
//! - read or write snapshot files yourself ([`snapshot::read`], [`snapshot::write`]): any JSONL
//!   reader can open them, this one also checks the trailer;
//! - build tooling over the scan and the recovery decision table ([`scan::scan_dir`],
//!   [`recover::plan`], [`recover::CASES`]).
//!
//! # Modules
//!
//! - [`scan`]: reads segments and classifies where each stops (a clean end, damage, a seq
//!   mismatch, a bad header), and whether later frames prove the damaged seq was acknowledged.
//! - [`recover`]: turns a scan into a decision with a labelled table ([`recover::CASES`]) and,
//!   separately, applies a cut (keeping the bytes in quarantine).
//! - [`session`]: folds events into the materialised [`session::Session`], and keeps what a
//!   snapshot needs.
//! - [`snapshot`]: writes and reads the JSONL snapshot (header, one envelope per line, trailer
//!   with a CRC-32).
//! - [`compact`]: installs a snapshot crash-safely and removes what it covers.
//! - [`salvage`]: reads every valid record of a damaged journal, past the damage, and says
//!   exactly which seqs were lost.
//!
//! The on-disk format is specified in `journal/FORMAT.md` in the repository.

#![deny(missing_docs)]

pub mod compact;
pub mod recover;
pub mod salvage;
pub mod scan;
pub mod session;
pub mod snapshot;
