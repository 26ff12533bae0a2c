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
        let row = &probs[step * c..(step + 1) * c];
        let mut best = 0usize;
        let mut best_p = f32::NEG_INFINITY;
        for (i, &p) in row.iter().enumerate() {
            if p > best_p {
                best = i;
                best_p = p;
            }
        }
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
