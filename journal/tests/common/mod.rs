//! Text generators shared by the stored-envelope property tests: a tiny deterministic RNG and a
//! JSON string renderer that escapes in every way JSON allows.
#![allow(dead_code, reason = "each test binary uses a different subset")]

/// A tiny deterministic generator, so one proptest seed drives every rendering choice.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        // xorshift64*; the state is never 0.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A string literal for `s`: characters JSON must escape are escaped, any other one in
/// `escape_one_in` too, in every way JSON allows (non-BMP ones as surrogate pairs).
pub fn render_str(s: &str, rng: &mut Rng, escape_one_in: u64, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let forced = matches!(c, '"' | '\\') || (c as u32) < 0x20;
        if forced || rng.one_in(escape_one_in) {
            match c {
                '"' if rng.one_in(2) => out.push_str("\\\""),
                '\\' if rng.one_in(2) => out.push_str("\\\\"),
                '\n' if rng.one_in(2) => out.push_str("\\n"),
                '\t' if rng.one_in(2) => out.push_str("\\t"),
                '\r' if rng.one_in(2) => out.push_str("\\r"),
                '\u{8}' if rng.one_in(2) => out.push_str("\\b"),
                '\u{c}' if rng.one_in(2) => out.push_str("\\f"),
                '/' if rng.one_in(2) => out.push_str("\\/"),
                _ => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        if rng.one_in(2) {
                            out.push_str(&format!("\\u{u:04x}"));
                        } else {
                            out.push_str(&format!("\\u{u:04X}"));
                        }
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
}
