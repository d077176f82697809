//! Import: sessions written by other agent tools, read into turnwal envelopes (filled in below).
