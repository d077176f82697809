//! turnwal-replay: the read path of turnwal.
pub mod session;
pub mod snapshot;
