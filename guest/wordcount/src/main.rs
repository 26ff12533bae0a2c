//! `wordcount`: a text-statistics guest (Guest ABI v1).
//!
//! stdin: UTF-8 text. Param `top=N` (1..=1000, default 10).
//! stdout (no trailing newline), keys in this order:
//! `{"lines":L,"words":W,"chars":C,"bytes":B,"top":[{"word":"the","count":12},...]}`
//!
//! - lines: number of '\n' bytes, plus one if the text is non-empty and does
//!   not end with '\n' (an unterminated last line still counts as a line;
//!   empty input has 0 lines).
//! - words: whitespace-separated tokens (`char::is_whitespace`).
//! - chars: Unicode scalar values. bytes: byte length.
//! - top: the N most frequent words, where a token is normalised by trimming
//!   leading/trailing non-alphanumeric characters and lowercasing (tokens that
//!   are empty after trimming are skipped); sorted by count descending, then
//!   word ascending (byte order).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use wasmjobs_guest::{param, fail, read_input};

/// FNV-1a: a fixed, seedless hasher. Keeps the module free of randomness
/// (std's RandomState would call random_get) and is fast for short words.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Trims leading/trailing non-alphanumeric characters. Fast path: most
/// tokens start and end with an ASCII letter or digit and need no trimming.
fn trim_token(token: &str) -> &str {
    let b = token.as_bytes();
    if !b.is_empty() && b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric() {
        return token;
    }
    token.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Writes the lowercase form of `t` into `buf` if it differs from `t`;
/// returns false (leaving `buf` untouched) when `t` is already lowercase ASCII.
fn lowercase_into(t: &str, buf: &mut String) -> bool {
    if !t.bytes().any(|b| b >= 0x80 || b.is_ascii_uppercase()) {
        return false;
    }
    buf.clear();
    if t.is_ascii() {
        buf.push_str(t);
        buf.make_ascii_lowercase();
    } else {
        // str::to_lowercase, not per-char mapping, so that context-dependent
        // rules (Greek final sigma) apply.
        buf.push_str(&t.to_lowercase());
    }
    true
}

/// Counts whitespace-separated tokens and the frequency of each normalised word.
fn count_words(text: &str) -> (usize, FnvMap<String, u64>) {
    let mut words: usize = 0;
    let mut counts: FnvMap<String, u64> = FnvMap::default();
    counts.reserve(1024);
    let mut lower = String::new();
    for token in text.split_whitespace() {
        words += 1;
        let t = trim_token(token);
        if t.is_empty() {
            continue;
        }
        let key: &str = if lowercase_into(t, &mut lower) { &lower } else { t };
        if let Some(c) = counts.get_mut(key) {
            *c += 1;
        } else {
            counts.insert(key.to_string(), 1);
        }
    }
    (words, counts)
}

/// The `n` most frequent words: count descending, then word ascending (bytes).
/// Words are unique keys, so the order is total and the result deterministic.
fn top_words(counts: &FnvMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut ranked: Vec<(&str, u64)> = counts.iter().map(|(w, c)| (w.as_str(), *c)).collect();
    let order = |a: &(&str, u64), b: &(&str, u64)| {
        b.1.cmp(&a.1).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
    };
    if ranked.len() > n {
        ranked.select_nth_unstable_by(n - 1, order);
        ranked.truncate(n);
    }
    ranked.sort_unstable_by(order);
    ranked
}

/// Renders the result object with its keys in the documented order.
fn render(text: &str, top_n: usize) -> String {
    let bytes = text.len();
    let newlines = text.bytes().filter(|b| *b == b'\n').count();
    let lines = newlines + usize::from(!text.is_empty() && !text.ends_with('\n'));
    let chars = text.chars().count();
    let (words, counts) = count_words(text);
    let ranked = top_words(&counts, top_n);

    let mut out = String::with_capacity(80 + ranked.len() * 32);
    out.push_str(&format!(
        "{{\"lines\":{},\"words\":{},\"chars\":{},\"bytes\":{},\"top\":[",
        lines, words, chars, bytes
    ));
    for (i, (w, c)) in ranked.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let escaped = serde_json::to_string(w).expect("string serialization cannot fail");
        out.push_str(&format!("{{\"word\":{},\"count\":{}}}", escaped, c));
    }
    out.push_str("]}");
    out
}

fn main() {
    let top_n: usize = match param("top") {
        None => 10,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => fail(
                2,
                &format!("wordcount: invalid top {:?}: want an integer from 1 to 1000\n", s),
            ),
        },
    };

    let input = match read_input() {
        Ok(b) => b,
        Err(e) => fail(1, &format!("wordcount: reading input: {}\n", e)),
    };
    let text = match std::str::from_utf8(&input) {
        Ok(t) => t,
        Err(e) => fail(
            2,
            &format!("wordcount: input is not valid UTF-8 at byte {}\n", e.valid_up_to()),
        ),
    };

    let out = render(text, top_n);
    let stdout = io::stdout();
    let mut w = stdout.lock();
    if let Err(e) = w.write_all(out.as_bytes()).and_then(|_| w.flush()) {
        fail(1, &format!("wordcount: writing output: {}\n", e));
    }
}
