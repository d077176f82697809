//! Property tests of the frame: every event round-trips, and no truncation or single-byte
//! change of a frame ever decodes as a (different) valid record.
#![allow(clippy::unwrap_used, reason = "test helpers")]

use proptest::prelude::*;
use turnwal_journal::event::*;
use turnwal_journal::record::{self, PAYLOAD_BYTES_MAX};

fn s() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (s(), any::<i64>(), prop::option::of((s(), any::<u64>()))).prop_map(
            |(id, created_at_ms, fork_of)| Kind::Session(SessionInfo {
                id,
                created_at_ms,
                fork_of
            })
        ),
        prop::collection::vec((s(), prop::option::of(s())), 0..4).prop_map(Kind::Meta),
        (
            prop::sample::select(TurnEvent::ALL.to_vec()),
            prop::option::of(s())
        )
            .prop_map(|(event, reason)| Kind::Turn { event, reason }),
        (
            s(),
            prop::sample::select(Role::ALL.to_vec()),
            prop::option::of(s()),
            prop::collection::vec((s(), s()), 0..3),
            prop::collection::vec((s(), prop::option::of(s())), 0..3)
        )
            .prop_map(
                |(id, role, status, tool_calls, tool_results)| Kind::Message(MessageInfo {
                    id,
                    role,
                    status,
                    tool_calls,
                    tool_results
                })
            ),
        (
            s(),
            any::<u32>(),
            prop::sample::select(DeltaPart::ALL.to_vec()),
            prop::option::of(s()),
            prop::option::of(s())
        )
            .prop_map(
                |(message_id, index, part, text, call_id)| Kind::Delta(DeltaInfo {
                    message_id,
                    index,
                    part,
                    text,
                    arguments: None,
                    call_id,
                    name: None
                })
            ),
        (
            s(),
            s(),
            any::<u64>(),
            prop::option::of(any::<u64>()),
            any::<u64>(),
            prop::option::of((-1e9f64..1e9, s())),
            any::<bool>()
        )
            .prop_map(
                |(call_key, model, input_total, cache_read, output_total, cost, is_final)| {
                    Kind::Usage(UsageInfo {
                        call_key,
                        model,
                        input_total,
                        cache_read,
                        cache_write: None,
                        output_total,
                        reasoning: Some(1),
                        cost,
                        is_final,
                    })
                }
            ),
        (s(), prop::sample::select(ToolRunEvent::ALL.to_vec()))
            .prop_map(|(call_id, event)| Kind::ToolRun { call_id, event }),
        (any::<u64>(), prop::option::of(s()))
            .prop_map(|(to_seq, reason)| Kind::Rewind { to_seq, reason }),
        (s(), any::<u64>()).prop_map(|(summary_message_id, through_seq)| Kind::Compaction {
            summary_message_id,
            through_seq,
            reason: None
        }),
        "[a-z]{1,8}".prop_map(|name| Kind::Extension { name }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (any::<i64>(), prop::option::of(any::<u64>()), kind(), s()).prop_map(
        |(ts_ms, turn, kind, body)| Event {
            ts_ms,
            turn,
            kind,
            body: body.into(),
        },
    )
}

proptest! {
    #[test]
    fn frames_round_trip(ev in event(), seq in 1u64..u64::MAX, seg in 1u64..1000, wm_frac in 0u64..1000) {
        let watermark = (seq - 1) / 1000 * wm_frac;
        let mut out = Vec::new();
        let n = record::encode(seq, seg, watermark, &ev, PAYLOAD_BYTES_MAX, &mut out).unwrap();
        prop_assert_eq!(n % 8, 0);
        let (rec, len) = record::decode(&out, seg).unwrap();
        prop_assert_eq!(len, n);
        prop_assert_eq!(rec.header.seq, seq);
        prop_assert_eq!(rec.header.watermark, watermark);
        prop_assert_eq!(rec.event, ev);
    }

    #[test]
    fn truncated_or_flipped_frames_never_decode(ev in event(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut out = Vec::new();
        record::encode(7, 3, 6, &ev, PAYLOAD_BYTES_MAX, &mut out).unwrap();
        let covered = record::RECORD_HEADER_BYTES + u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize;
        let c = cut.index(covered);
        prop_assert!(record::decode(&out[..c], 3).is_err(), "truncated at {} decoded", c);
        let f = flip.index(covered);
        let mut bad = out.clone();
        bad[f] ^= 1 << bit;
        prop_assert!(record::decode(&bad, 3).is_err(), "flip at byte {} bit {} decoded", f, bit);
    }
}
