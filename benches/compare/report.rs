//! Results: per-system entries, the Markdown tables, the targets, the JSON file.

use serde_json::{Value, json};

/// One system's measurements in one case.
pub struct Entry {
    pub system: String,
    /// Throughput of each round (ops/s, events/s or messages/s).
    pub rounds: Vec<f64>,
    /// Per-op latencies of every round pooled, in ns, sorted; empty where not per-op.
    pub latencies_ns: Vec<u64>,
    pub notes: String,
    /// `replay_memory` only.
    pub memory: Option<Memory>,
}

/// Medians over rounds of one system's memory use during one open.
pub struct Memory {
    pub payload_bytes: u64,
    pub peak_heap_bytes: u64,
    pub peak_rss_delta_bytes: Option<u64>,
}

impl Memory {
    pub fn heap_ratio(&self) -> f64 {
        self.peak_heap_bytes as f64 / self.payload_bytes.max(1) as f64
    }

    pub fn rss_ratio(&self) -> Option<f64> {
        self.peak_rss_delta_bytes
            .map(|b| b as f64 / self.payload_bytes.max(1) as f64)
    }
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

pub fn median(v: &[f64]) -> f64 {
    let v = sorted(v);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Entry {
    pub fn new(system: &str, notes: &str) -> Self {
        Entry {
            system: system.to_owned(),
            rounds: Vec::new(),
            latencies_ns: Vec::new(),
            notes: notes.to_owned(),
            memory: None,
        }
    }

    pub fn median(&self) -> f64 {
        median(&self.rounds)
    }

    pub fn min(&self) -> f64 {
        sorted(&self.rounds).first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        sorted(&self.rounds).last().copied().unwrap_or(f64::NAN)
    }

    /// The `q` quantile (0..1) of the pooled latencies, in µs (nearest rank).
    pub fn latency_us(&self, q: f64) -> Option<f64> {
        let n = self.latencies_ns.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        Some(self.latencies_ns[rank - 1] as f64 / 1_000.0)
    }
}

/// One case: its entries and which system the ratios are relative to.
pub struct CaseResult {
    pub case: &'static str,
    pub title: String,
    /// What the throughput counts: "ops/s", "events/s", "messages/s".
    pub unit: &'static str,
    pub reference: String,
    pub entries: Vec<Entry>,
}

impl CaseResult {
    pub fn get(&self, system: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.system == system)
    }

    fn reference_median(&self) -> Option<f64> {
        self.get(&self.reference).map(Entry::median)
    }

    pub fn print(&self) {
        println!("\n### {} — {}\n", self.case, self.title);
        if self.case == "replay_memory" {
            return self.print_memory();
        }
        println!(
            "| system | {u} median | spread (min–max) | p50 / p99 / p99.9 µs | ratio to {r} | notes |",
            u = self.unit,
            r = self.reference
        );
        println!("|---|---:|---:|---:|---:|---|");
        let reference = self.reference_median();
        for e in &self.entries {
            let lat = match (e.latency_us(0.5), e.latency_us(0.99), e.latency_us(0.999)) {
                (Some(a), Some(b), Some(c)) => format!("{a:.0} / {b:.0} / {c:.0}"),
                _ => "–".to_owned(),
            };
            let ratio = reference.map_or("–".to_owned(), |r| format!("{:.2}×", e.median() / r));
            println!(
                "| {} | {} | {}–{} | {lat} | {ratio} | {} |",
                e.system,
                thousands(e.median()),
                thousands(e.min()),
                thousands(e.max()),
                e.notes
            );
        }
    }

    fn print_memory(&self) {
        println!(
            "| system | payload MB | peak heap MB | heap / payload | peak RSS delta MB | RSS / payload | notes |"
        );
        println!("|---|---:|---:|---:|---:|---:|---|");
        for e in &self.entries {
            let Some(m) = &e.memory else { continue };
            let (rss, rss_ratio) = match (m.peak_rss_delta_bytes, m.rss_ratio()) {
                (Some(b), Some(r)) => (format!("{:.1}", mb(b)), format!("{r:.2}×")),
                _ => ("n/a".to_owned(), "n/a".to_owned()),
            };
            println!(
                "| {} | {:.1} | {:.1} | {:.2}× | {rss} | {rss_ratio} | {} |",
                e.system,
                mb(m.payload_bytes),
                mb(m.peak_heap_bytes),
                m.heap_ratio(),
                e.notes
            );
        }
    }

    pub fn json(&self) -> Vec<Value> {
        self.entries
            .iter()
            .map(|e| {
                let latency = match (e.latency_us(0.5), e.latency_us(0.99), e.latency_us(0.999)) {
                    (Some(p50), Some(p99), Some(p999)) => {
                        json!({"p50": p50, "p99": p99, "p999": p999})
                    }
                    _ => Value::Null,
                };
                let mut v = json!({
                    "case": self.case,
                    "system": e.system,
                    "unit": self.unit,
                    "ops_per_sec": e.median(),
                    "ops_per_sec_min": e.min(),
                    "ops_per_sec_max": e.max(),
                    "latency_us": latency,
                    "rounds": e.rounds,
                    "notes": e.notes,
                });
                if let (Some(m), Some(obj)) = (&e.memory, v.as_object_mut()) {
                    obj.insert(
                        "memory".to_owned(),
                        json!({
                            "payload_bytes": m.payload_bytes,
                            "peak_heap_bytes": m.peak_heap_bytes,
                            "peak_heap_ratio": m.heap_ratio(),
                            "peak_rss_delta_bytes": m.peak_rss_delta_bytes,
                            "peak_rss_ratio": m.rss_ratio(),
                        }),
                    );
                }
                v
            })
            .collect()
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// 12345.6 → "12,346".
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

/// One line of the target table, evaluated.
pub struct Target {
    pub target: String,
    /// The measured ratio, compared with `threshold`; `None` if its case did not run.
    pub ratio: Option<f64>,
    pub threshold: f64,
    /// `true`: met when `ratio ≥ threshold`; `false`: met when `ratio ≤ threshold`.
    pub at_least: bool,
    pub detail: String,
}

impl Target {
    pub fn met(&self) -> Option<bool> {
        self.ratio.map(|r| {
            if self.at_least {
                r >= self.threshold
            } else {
                r <= self.threshold
            }
        })
    }

    pub fn json(&self) -> Value {
        json!({
            "target": self.target,
            "ratio": self.ratio,
            "met": self.met(),
            "threshold": self.threshold,
            "detail": self.detail,
        })
    }
}

pub fn print_targets(targets: &[Target], quick: bool) {
    println!("\n### Targets\n");
    if quick {
        println!("(`--quick` sizes: a smoke run; read these as indicative only)\n");
    }
    println!("| target | required | measured ratio | met | detail |");
    println!("|---|---:|---:|---|---|");
    for t in targets {
        let req = format!("{} {}×", if t.at_least { "≥" } else { "≤" }, t.threshold);
        let (ratio, met) = match (t.ratio, t.met()) {
            (Some(r), Some(true)) => (format!("{r:.2}×"), "met"),
            (Some(r), _) => (format!("{r:.2}×"), "**not met**"),
            (None, _) => ("–".to_owned(), "not measured"),
        };
        println!("| {} | {req} | {ratio} | {met} | {} |", t.target, t.detail);
    }
}
