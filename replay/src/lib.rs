//! turnwal-replay: the read path of turnwal.
//!
//! [`scan`] reads segments and classifies where each stops (pure, read-only); [`recover`] turns
//! that into a decision with a labelled table and, separately, applies a cut; [`session`] folds
//! events into the materialised session; [`snapshot`] writes the JSONL snapshot layout.

pub mod recover;
pub mod scan;
pub mod session;
pub mod snapshot;
