//! turnwal
