//! turnwal-replay: the read path of turnwal.
//!
//! [`scan`] reads segments and classifies where each stops (pure, read-only); [`recover`] turns
//! that into a decision with a labelled table and, separately, applies a cut; [`session`] folds
//! events into the materialised session; [`snapshot`] writes and reads the JSONL snapshot;
//! [`compact`] installs a snapshot crash-safely and removes what it covers; [`salvage`] reads
//! every valid record of a damaged journal, past the damage, and says what was lost.

#![deny(missing_docs)]

pub mod compact;
pub mod recover;
pub mod salvage;
pub mod scan;
pub mod session;
pub mod snapshot;
