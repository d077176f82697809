//! 3a: one boot of the kill loop, listened to and cut.
//!
//! The guest prints its steps (`TWL mounted`, `TWL append <seq>`, `TWL idle`, ...) and the
//! writer's `{"durable_through": N}` lines on ttyS1; the host pulls the plug at the moment the
//! cycle's [`Kill`] names, or at once when the guest is idle earlier. Every complete
//! acknowledgement line read, before the cut or drained after it, was printed after its fsync
//! returned, so it counts.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::check::Expected;
use crate::feeder::{Plan, Rng};
use crate::qemu::{Boot, ConsoleLine, Env, Vm};

/// How long a boot may take to print its first line, and the guest to stay silent after.
pub const FIRST_LINE_LIMIT: Duration = Duration::from_secs(180);
pub const SILENCE_LIMIT: Duration = Duration::from_secs(120);

/// A journal directory (`/c<id>` on the guest's disk) and what is known of it.
pub struct Chain {
    pub id: u64,
    pub plan: Plan,
    pub exp: Expected,
    /// Highest seq that must be recovered: acknowledged, or recovered by an earlier check.
    pub floor: u64,
    pub boots: u64,
    pub max_boots: u64,
    pub broken: bool,
}

/// When the host pulls the plug.
#[derive(Debug, Clone, Copy)]
pub enum Kill {
    /// This long after the disk is mounted: during the report, or the writer's recovery.
    Early(Duration),
    /// This long after the n-th acknowledgement.
    Acks(u64, Duration),
    /// This long after the writer starts.
    Delay(Duration),
    /// This long after the first acknowledgement of a seq followed by a large event: while
    /// that event is parsed, written and synced, so that the cut tears it.
    BeforeBig(Duration),
    /// This long after the writer is done (recorded boots: the whole run is in the log).
    Idle(Duration),
}

/// What a boot printed before its power cut.
#[derive(Debug, Default)]
pub struct Heard {
    pub lines: Vec<ConsoleLine>,
    /// `(durable_through, block log bytes when read)`.
    pub acks: Vec<(u64, Option<u64>)>,
    /// The last `TWL` step heard before the cut.
    pub phase: String,
    pub writer_exit: Option<String>,
    /// When the writer started, and when the plug was pulled.
    pub append_at: Option<Instant>,
    pub cut_at: Option<Instant>,
    pub odd: Vec<String>,
    pub trouble: Option<String>,
}

pub fn millis(rng: &mut Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.range(lo, hi))
}

/// Boots, listens, and cuts the power as `kill` says (at once if the guest is idle earlier).
/// `big_next`: the seqs whose next few lines hold a large event.
pub fn boot_and_cut(
    env: &Env,
    boot: &Boot,
    kill: Kill,
    big_next: &HashSet<u64>,
    rng: &mut Rng,
) -> Heard {
    let vm = match Vm::start(env, boot) {
        Ok(vm) => vm,
        Err(e) => panic!("vm-powercut: {e}"),
    };
    let mut heard = Heard {
        phase: "before boot".into(),
        ..Heard::default()
    };
    let mut kill_at: Option<Instant> = None;
    let mut last_heard = vm.started;
    let mut first = true;
    loop {
        let limit = if first {
            FIRST_LINE_LIMIT
        } else {
            SILENCE_LIMIT
        };
        let silence = last_heard + limit;
        let deadline = kill_at.map_or(silence, |k| k.min(silence));
        match vm.next_line(deadline) {
            Ok(l) => {
                first = false;
                last_heard = l.at;
                let now = l.at;
                if let Some(step) = l.text.strip_prefix("TWL ") {
                    let word = step.split(' ').next().unwrap_or("").to_string();
                    match (word.as_str(), kill) {
                        ("mounted", Kill::Early(d)) => kill_at = Some(now + d),
                        ("append", k) => {
                            heard.append_at = Some(now);
                            if let Kill::Delay(d) = k {
                                kill_at = Some(now + d);
                            }
                        }
                        ("idle", k) => {
                            let d = match k {
                                Kill::Idle(d) => d,
                                _ => millis(rng, 0, 50),
                            };
                            kill_at = Some(kill_at.map_or(now + d, |t| t.min(now + d)));
                        }
                        ("exit", _) => heard.writer_exit = Some(step.to_string()),
                        ("mount-failed" | "no-disk" | "report-failed" | "insmod-failed", _) => {
                            heard.trouble = Some(step.to_string());
                            kill_at = Some(now);
                        }
                        _ => {}
                    }
                    heard.phase = word;
                } else if l.complete {
                    match serde_json::from_str::<serde_json::Value>(&l.text)
                        .ok()
                        .and_then(|v| v["durable_through"].as_u64())
                    {
                        Some(n) => {
                            heard.acks.push((n, l.log_len));
                            match kill {
                                Kill::Acks(want, d) if heard.acks.len() as u64 == want => {
                                    kill_at = Some(now + d);
                                }
                                Kill::BeforeBig(d)
                                    if kill_at.is_none() && big_next.contains(&n) =>
                                {
                                    kill_at = Some(now + d);
                                }
                                _ => {}
                            }
                        }
                        None => heard.odd.push(l.text.clone()),
                    }
                }
                heard.lines.push(l);
            }
            Err(true) => {
                if kill_at.is_none_or(|k| Instant::now() < k) {
                    heard.trouble = Some(format!(
                        "the guest said nothing for {limit:?} (last step: {})",
                        heard.phase
                    ));
                }
                break;
            }
            Err(false) => {
                heard.trouble = Some(format!("QEMU exited by itself after {}", heard.phase));
                break;
            }
        }
        if kill_at.is_some_and(|k| Instant::now() >= k) {
            break;
        }
    }
    heard.cut_at = Some(Instant::now());
    for l in vm.power_cut() {
        // Printed before the cut, read after it: still acknowledged.
        if l.complete
            && let Some(n) = serde_json::from_str::<serde_json::Value>(&l.text)
                .ok()
                .and_then(|v| v["durable_through"].as_u64())
        {
            heard.acks.push((n, l.log_len));
        }
        heard.lines.push(l);
    }
    heard
}
