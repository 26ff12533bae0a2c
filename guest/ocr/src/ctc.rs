//! CTC greedy decoding with PaddleOCR's character dictionary.

/// The recognizer's classes: index 0 is the CTC blank, index i (1..=n) is
/// line i-1 of the dictionary file, and index n+1 is the space character.
/// It borrows the dictionary's text: one allocation per job, not one per
/// character.
pub struct Charset<'a> {
    chars: Vec<&'a str>,
}

impl<'a> Charset<'a> {
    /// Parses the dictionary file (`ppocr_keys_v1.txt`): one character per
    /// line, `\n` or `\r\n` line ends, an optional final newline.
    pub fn parse(text: &'a str) -> Charset<'a> {
        let mut chars = Vec::with_capacity(text.len() / 3 + 2);
        chars.push(""); // blank
        chars.extend(text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)));
        if text.is_empty() || text.ends_with('\n') {
            chars.pop(); // the empty piece after the final newline
        }
        chars.push(" ");
        Charset { chars }
    }

    /// The number of classes (blank + dictionary + space).
    pub fn classes(&self) -> usize {
        self.chars.len()
    }
}

/// Greedy CTC decoding of `t` timesteps of `c` class probabilities:
/// argmax per step, repeats collapsed, blanks dropped. Returns the text and
/// the mean of the kept steps' probabilities (0 when nothing is kept).
/// Classes the charset does not know are dropped.
pub fn decode(probs: &[f32], t: usize, c: usize, charset: &Charset) -> (String, f32) {
    let mut text = String::new();
    let mut sum = 0f32;
    let mut kept = 0usize;
    let mut prev = usize::MAX;
    for step in 0..t {
        let (best, best_p) = argmax(&probs[step * c..(step + 1) * c]);
        if best != 0 && best != prev {
            if let Some(s) = charset.chars.get(best) {
                text.push_str(s);
                sum += best_p;
                kept += 1;
            }
        }
        prev = best;
    }
    let conf = if kept == 0 { 0.0 } else { sum / kept as f32 };
    (text, conf)
}

/// The index and value of the first largest element of row (NaN never
/// wins); (0, -inf) when none is larger than -inf.
#[cfg(not(target_arch = "wasm32"))]
fn argmax(row: &[f32]) -> (usize, f32) {
    argmax_scalar(row, 0, 0, f32::NEG_INFINITY)
}

/// argmax continued from index `from`, with (best, best_p) so far.
fn argmax_scalar(row: &[f32], from: usize, mut best: usize, mut best_p: f32) -> (usize, f32) {
    for (i, &p) in row.iter().enumerate().skip(from) {
        if p > best_p {
            best = i;
            best_p = p;
        }
    }
    (best, best_p)
}

/// argmax four lanes at a time: each lane keeps the first largest of its
/// elements (a strict comparison, as the scalar loop), then the largest lane
/// wins, the lowest index among equal ones; the tail runs scalar. The same
/// result as the scalar loop, which recognition spends most of its own time
/// in (6,625 classes per timestep).
#[cfg(target_arch = "wasm32")]
fn argmax(row: &[f32]) -> (usize, f32) {
    use core::arch::wasm32::*;
    let n4 = row.len() / 4 * 4;
    if n4 == 0 || row.len() > i32::MAX as usize {
        return argmax_scalar(row, 0, 0, f32::NEG_INFINITY);
    }
    let mut vmax = f32x4_splat(f32::NEG_INFINITY);
    let mut vidx = i32x4_splat(0);
    let mut cur = i32x4(0, 1, 2, 3);
    let four = i32x4_splat(4);
    for chunk in row[..n4].chunks_exact(4) {
        // SAFETY: chunk is 4 f32s, the size of a v128 (wasm loads need no
        // alignment).
        let v = unsafe { v128_load(chunk.as_ptr() as *const v128) };
        let gt = f32x4_gt(v, vmax);
        vmax = v128_bitselect(v, vmax, gt);
        vidx = v128_bitselect(cur, vidx, gt);
        cur = i32x4_add(cur, four);
    }
    let vals = [
        f32x4_extract_lane::<0>(vmax),
        f32x4_extract_lane::<1>(vmax),
        f32x4_extract_lane::<2>(vmax),
        f32x4_extract_lane::<3>(vmax),
    ];
    let idxs = [
        i32x4_extract_lane::<0>(vidx),
        i32x4_extract_lane::<1>(vidx),
        i32x4_extract_lane::<2>(vidx),
        i32x4_extract_lane::<3>(vidx),
    ];
    let (mut best, mut best_p) = (idxs[0] as usize, vals[0]);
    for k in 1..4 {
        let (i, p) = (idxs[k] as usize, vals[k]);
        if p > best_p || (p == best_p && i < best) {
            best = i;
            best_p = p;
        }
    }
    argmax_scalar(row, n4, best, best_p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_indices() {
        let cs = Charset::parse("a\r\nb\nc\n");
        assert_eq!(cs.classes(), 5);
        assert_eq!(cs.chars, vec!["", "a", "b", "c", " "]);
        let cs = Charset::parse("x\ny");
        assert_eq!(cs.chars, vec!["", "x", "y", " "]);
        assert_eq!(Charset::parse("").chars, vec!["", " "]);
        assert_eq!(Charset::parse("a\n\n").chars, vec!["", "a", "", " "]);
    }

    #[test]
    fn greedy_decode() {
        let cs = Charset::parse("a\nb");
        // classes: blank, a, b, space
        let steps: Vec<[f32; 4]> = vec![
            [0.1, 0.8, 0.1, 0.0], // a
            [0.1, 0.6, 0.3, 0.0], // a (repeat, collapsed)
            [0.9, 0.1, 0.0, 0.0], // blank
            [0.1, 0.7, 0.2, 0.0], // a (new after blank)
            [0.0, 0.0, 0.1, 0.9], // space
            [0.0, 0.0, 1.0, 0.0], // b
            [1.0, 0.0, 0.0, 0.0], // blank
        ];
        let flat: Vec<f32> = steps.iter().flatten().copied().collect();
        let (text, conf) = decode(&flat, steps.len(), 4, &cs);
        assert_eq!(text, "aa b");
        assert!((conf - (0.8 + 0.7 + 0.9 + 1.0) / 4.0).abs() < 1e-6);
        let (text, conf) = decode(&[1.0, 0.0, 0.0, 0.0], 1, 4, &cs);
        assert_eq!((text.as_str(), conf), ("", 0.0));
    }
}
