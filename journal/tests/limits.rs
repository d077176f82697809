//! What a forged record frame can make the decoder allocate, measured by a counting global
//! allocator (per thread, so parallel tests do not disturb a measurement).
//!
//! - The frame length field is checked against the format's 64 MiB and against the bytes that
//!   follow the header (the rest of the file) before anything is allocated: whatever it claims,
//!   up to ~4 GiB, a decode allocates nothing but its error message.
//! - Inside a checksum-valid payload, a length claimed by a string or list is bounded by the
//!   codec's limit (the format's 64 MiB), not by the payload's size: a forged frame of a few
//!   bytes can make one decode allocate up to 64 MiB, briefly, and never more. Pinned here so
//!   that a tighter bound is noticed, and a looser one fails.
//!
//! The end-to-end checks (an open of a journal with such a frame, forged snapshots) are in the
//! workspace's `tests/bad_input.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure must fail loudly"
)]

#[path = "../../tests/common/count_alloc.rs"]
mod count_alloc;

use count_alloc::peak_of;

use turnwal_journal::event::{Event, Kind};
use turnwal_journal::record::{self, FrameError, PAYLOAD_BYTES_MAX, RECORD_HEADER_BYTES};

const MIB: u64 = 1 << 20;

fn ext(body: &str) -> Event {
    Event {
        ts_ms: 0,
        turn: None,
        kind: Kind::Extension { name: "t".into() },
        body: body.into(),
    }
}

/// A valid frame of segment 1, seq 1.
fn frame() -> Vec<u8> {
    let mut out = Vec::new();
    record::encode(1, 1, 0, &ext("{}"), PAYLOAD_BYTES_MAX, &mut out).unwrap();
    out
}

#[test]
fn a_forged_frame_length_allocates_nothing_whatever_it_claims() {
    let valid = frame();
    let follow = valid.len() - RECORD_HEADER_BYTES;
    for claim in [
        u32::MAX,
        u32::MAX - 7,
        1 << 31,
        PAYLOAD_BYTES_MAX + 1,
        PAYLOAD_BYTES_MAX,
        follow as u32 + 1,
    ] {
        let mut bytes = valid.clone();
        bytes[4..8].copy_from_slice(&claim.to_le_bytes());
        let (r, peak) = peak_of(|| record::decode(&bytes, 1).map(|_| ()));
        let err = r.unwrap_err();
        match &err {
            FrameError::Short { available, needed } => {
                assert!(claim <= PAYLOAD_BYTES_MAX, "{claim}: {err}");
                assert_eq!(*available, bytes.len());
                assert_eq!(*needed, RECORD_HEADER_BYTES + claim as usize);
                assert_eq!(peak, 0, "{claim}: {err}");
            }
            FrameError::Invalid(why) => {
                assert!(claim > PAYLOAD_BYTES_MAX, "{claim}: {err}");
                assert!(
                    why.contains(&format!("payload length {claim} out of range"))
                        && why.contains(&format!("{follow} bytes follow the header")),
                    "{why}"
                );
                assert!(peak <= 256, "{claim}: {peak} B for the message alone");
            }
            FrameError::Zero => panic!("{claim}: {err}"),
        }
        // The cheap header check refuses it the same way.
        assert!(record::peek_header(&bytes).is_err(), "{claim}");
    }
}

/// A checksum-valid frame of segment 1, seq 1, whose payload is `payload`.
fn frame_with_payload(payload: &[u8]) -> Vec<u8> {
    let mut f = frame();
    f.truncate(RECORD_HEADER_BYTES);
    f[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    let crc = crc32fast::hash(&f[4..]);
    f[0..4].copy_from_slice(&crc.to_le_bytes());
    f.resize(f.len().next_multiple_of(8), 0);
    f
}

#[test]
fn a_claim_inside_a_checksum_valid_payload_is_bounded_by_the_format_limit() {
    // The payload of `ext("{}")` is 00 00 09 01 't' 02 '{' '}': ts 0, turn None, Extension,
    // name "t", body "{}". Forge the name's length: a u32 marker (0xfc) and a claim.
    let honest = frame_with_payload(&[0, 0, 9, 1, b't', 2, b'{', b'}']);
    assert_eq!(record::decode(&honest, 1).unwrap().0.event, ext("{}"));
    for (claim, refused_before_allocating) in [
        (PAYLOAD_BYTES_MAX + 1, true),
        (u32::MAX, true),
        (60 << 20, false),
    ] {
        let mut payload = vec![0, 0, 9, 0xfc];
        payload.extend_from_slice(&claim.to_le_bytes());
        payload.extend_from_slice(&[b't', 2, b'{', b'}']);
        let forged = frame_with_payload(&payload);
        let (r, peak) = peak_of(|| record::decode(&forged, 1).map(|_| ()));
        let err = r.unwrap_err();
        assert!(matches!(err, FrameError::Invalid(_)), "{claim}: {err}");
        eprintln!(
            "name length claim {claim} in a {}-byte frame: decode peak {peak} B: {err}",
            forged.len()
        );
        if refused_before_allocating {
            assert!(peak < MIB, "{claim}: {peak} B");
        } else {
            // Allocated for the claim, then refused: never above the format's limit.
            assert!(
                peak <= u64::from(PAYLOAD_BYTES_MAX) + MIB,
                "{claim}: {peak} B"
            );
        }
    }
}
