//! `langid`: language identification of a text (Guest ABI v1), with the
//! fastText `lid.176` model the worker registers as `langid`.
//!
//! stdin: UTF-8 text (invalid UTF-8 → exit 2). Lines are joined into one
//! (each `\n` becomes a space: fastText classifies a single line) and the
//! text goes to the model unchanged otherwise, so the labels and
//! probabilities are fastText's own `predict` for that line.
//!
//! Params:
//! - `k` (1..=20, default 3): how many languages to report.
//! - `min_prob` (0..=1, default 0.25): if the most likely language is less
//!   likely than this, the answer is "undetermined".
//!
//! stdout (no trailing newline), most likely first:
//! `{"languages":[{"lang":"en","prob":0.9812},{"lang":"de","prob":0.0040},...]}`
//! `lang` is the model's label without the `__label__` prefix (ISO 639 codes
//! as lid.176 spells them, e.g. `en`, `zh`, `pt`); `prob` has 4 decimals.
//!
//! Text with no letters at all (empty, whitespace, digits, punctuation,
//! emoji) is not sent to the model, and, like a top-1 probability below
//! `min_prob`, gives exactly `{"languages":[{"lang":"und","prob":0}]}`.
//!
//! Records ABI: on a shard of a record batch (`WASMJOBS_RECORDS=1`) each
//! line of stdin is one record, a JSON string, and each answer is one line
//! of stdout, the same JSON as above, or `{"error":"..."}` for a record
//! that is not a string. The model is loaded once for the whole shard.

use std::io::{self, Read, Write};

use wasmedge_wasi_nn::{ExecutionTarget, GraphBuilder, GraphEncoding, GraphExecutionContext, TensorType};
use wasmjobs_guest::{param, fail, read_input, records_mode};

// The models this guest loads, checked by `wasmjobs guest push`.
wasmjobs_guest::models!("langid");
// It also runs whole shards of record batches.
wasmjobs_guest::records_abi!();

const UNDETERMINED: &str = r#"{"languages":[{"lang":"und","prob":0}]}"#;
const LABEL_PREFIX: &str = "__label__";

/// Joins the lines of `text` into one line: every `\n` becomes a space.
/// fastText ends a line at `\n` only and treats `\r`, `\t`, `\v` and `\f`
/// as word separators, so nothing else needs changing for the labels to be
/// fastText's own.
fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// True if the text has at least one letter (any script).
fn has_letters(text: &str) -> bool {
    text.chars().any(|c| c.is_alphabetic())
}

/// Pairs the model's labels ('\n'-separated) with its probabilities,
/// stripping the label prefix. Extra or missing entries on either side are
/// dropped.
fn pair(labels: &str, probs: &[f32]) -> Vec<(String, f32)> {
    labels
        .split('\n')
        .filter(|l| !l.is_empty())
        .zip(probs.iter())
        .map(|(l, p)| {
            let lang = l.strip_prefix(LABEL_PREFIX).unwrap_or(l);
            (lang.to_string(), p.max(0.0).min(1.0))
        })
        .collect()
}

/// Renders the answer; undetermined if empty or top-1 is below `min_prob`.
fn render(langs: &[(String, f32)], min_prob: f32) -> String {
    if langs.is_empty() || langs[0].1 < min_prob {
        return UNDETERMINED.to_string();
    }
    let mut out = String::from("{\"languages\":[");
    for (i, (lang, prob)) in langs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let escaped = serde_json::to_string(lang).expect("string serialization cannot fail");
        let mut p = Vec::with_capacity(6);
        push_prob(&mut p, *prob);
        out.push_str(&format!("{{\"lang\":{},\"prob\":{}}}", escaped, String::from_utf8_lossy(&p)));
    }
    out.push_str("]}");
    out
}

/// An execution context of the `langid` model.
fn context() -> Result<GraphExecutionContext, wasmedge_wasi_nn::Error> {
    GraphBuilder::new(GraphEncoding::Autodetec, ExecutionTarget::AUTO)
        .build_from_cache("langid")?
        .init_execution_context()
}

/// Runs the `langid` model on one line of text.
fn classify(ctx: &mut GraphExecutionContext, line: &str, k: usize) -> Result<Vec<(String, f32)>, wasmedge_wasi_nn::Error> {
    ctx.set_input(0, TensorType::U8, &[line.len()], line.as_bytes())?;
    ctx.set_input(1, TensorType::I32, &[1], [k as i32])?;
    ctx.compute()?;
    let mut probs = vec![0f32; k];
    let n = ctx.get_output(0, &mut probs)? / 4;
    probs.truncate(n);
    let mut labels = vec![0u8; 32 * k + 64];
    let m = ctx.get_output(1, &mut labels)?;
    labels.truncate(m);
    let labels = String::from_utf8_lossy(&labels);
    Ok(pair(&labels, &probs))
}

fn main() {
    let k: usize = match param("k") {
        None => 3,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=20).contains(&n) => n,
            _ => fail(2, &format!("langid: invalid k {:?}: want an integer from 1 to 20\n", s)),
        },
    };
    let min_prob: f32 = match param("min_prob") {
        None => 0.25,
        Some(s) => match s.trim().parse::<f32>() {
            Ok(p) if (0.0..=1.0).contains(&p) => p,
            _ => fail(2, &format!("langid: invalid min_prob {:?}: want a number from 0 to 1\n", s)),
        },
    };

    if records_mode() {
        run_records(k, min_prob);
        return;
    }

    let input = match read_input() {
        Ok(b) => b,
        Err(e) => fail(1, &format!("langid: reading input: {}\n", e)),
    };
    let text = match std::str::from_utf8(&input) {
        Ok(t) => t,
        Err(e) => fail(2, &format!("langid: input is not valid UTF-8 at byte {}\n", e.valid_up_to())),
    };

    let out = if has_letters(text) {
        match context().and_then(|mut ctx| classify(&mut ctx, &one_line(text), k)) {
            Ok(langs) => render(&langs, min_prob),
            Err(e) => fail(1, &format!("langid: model \"langid\": {}\n", e)),
        }
    } else {
        UNDETERMINED.to_string()
    };

    let stdout = io::stdout();
    let mut w = stdout.lock();
    if let Err(e) = w.write_all(out.as_bytes()).and_then(|_| w.flush()) {
        fail(1, &format!("langid: writing output: {}\n", e));
    }
}

/// The records ABI: one JSON string per line in, one answer per line out.
/// The context, its `k` input and every buffer are set up once for the
/// shard; a record costs the model's predict and little else.
fn run_records(k: usize, min_prob: f32) {
    let mut ctx = match context() {
        Ok(c) => c,
        Err(e) => fail(1, &format!("langid: model \"langid\": {}\n", e)),
    };
    if let Err(e) = ctx.set_input(1, TensorType::I32, &[1], [k as i32]) {
        fail(1, &format!("langid: model \"langid\": {}\n", e));
    }
    let mut input = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut input) {
        fail(1, &format!("langid: reading records: {}\n", e));
    }
    let mut out: Vec<u8> = Vec::with_capacity(input.len() * 2 + 64);
    let mut probs = vec![0f32; k];
    let mut labels = vec![0u8; 32 * k + 64];
    let body = input.strip_suffix(b"\n").unwrap_or(&input);
    if !input.is_empty() {
        for line in body.split(|&b| b == b'\n') {
            match record_text(line) {
                None => out.extend_from_slice(br#"{"error":"langid: a record must be a JSON string"}"#),
                Some(text) if !has_letters(&text) => out.extend_from_slice(UNDETERMINED.as_bytes()),
                Some(text) => {
                    let text = if text.contains('\n') { std::borrow::Cow::Owned(one_line(&text)) } else { text };
                    match predict_into(&mut ctx, &text, &mut probs, &mut labels) {
                        Ok((n, m)) => render_into(&mut out, &labels[..m], &probs[..n], min_prob),
                        Err(e) => fail(1, &format!("langid: model \"langid\": {}\n", e)),
                    }
                }
            }
            out.push(b'\n');
        }
    }
    let stdout = io::stdout();
    let mut w = stdout.lock();
    if let Err(e) = w.write_all(&out).and_then(|_| w.flush()) {
        fail(1, &format!("langid: writing output: {}\n", e));
    }
}

/// A record's text: a JSON string without escapes is used as it is, any
/// other is decoded; None for a record that is not a JSON string.
fn record_text(line: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    if line.len() >= 2 && line[0] == b'"' && line[line.len() - 1] == b'"' && !line.contains(&b'\\') {
        let inner = &line[1..line.len() - 1];
        if !inner.contains(&b'"') && !inner.iter().any(|&b| b < 0x20) {
            return std::str::from_utf8(inner).ok().map(std::borrow::Cow::Borrowed);
        }
    }
    serde_json::from_slice::<String>(line).ok().map(std::borrow::Cow::Owned)
}

/// Runs the model on one line, its `k` input already set; returns how
/// many probabilities and label bytes it wrote.
fn predict_into(ctx: &mut GraphExecutionContext, line: &str, probs: &mut [f32], labels: &mut [u8]) -> Result<(usize, usize), wasmedge_wasi_nn::Error> {
    ctx.set_input(0, TensorType::U8, &[line.len()], line.as_bytes())?;
    ctx.compute()?;
    let n = ctx.get_output(0, probs)? / 4;
    let m = ctx.get_output(1, labels)?;
    Ok((n.min(probs.len()), m.min(labels.len())))
}

/// Appends the answer `render` gives for these labels and probabilities.
fn render_into(out: &mut Vec<u8>, labels: &[u8], probs: &[f32], min_prob: f32) {
    let simple = |l: &[u8]| l.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let langs = labels.split(|&b| b == b'\n').filter(|l| !l.is_empty()).zip(probs.iter());
    let first = probs.first().map(|p| p.max(0.0).min(1.0));
    if labels.is_empty() || first.map_or(true, |p| p < min_prob) || !labels.split(|&b| b == b'\n').all(|l| simple(l)) {
        // The general path (and the undetermined answer).
        let pairs = pair(&String::from_utf8_lossy(labels), probs);
        out.extend_from_slice(render(&pairs, min_prob).as_bytes());
        return;
    }
    out.extend_from_slice(b"{\"languages\":[");
    for (i, (l, p)) in langs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let lang = l.strip_prefix(LABEL_PREFIX.as_bytes()).unwrap_or(l);
        out.extend_from_slice(b"{\"lang\":\"");
        out.extend_from_slice(lang);
        out.extend_from_slice(b"\",\"prob\":");
        push_prob(out, p.max(0.0).min(1.0));
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// Appends `p` (from 0 to 1) with four decimals, exactly as `{:.4}` writes
/// it (the f32's exact value rounded, ties to even), without the general
/// float formatter, which took a third of a record's time in the guest.
fn push_prob(out: &mut Vec<u8>, p: f32) {
    // p × 10⁴ is exact in f64 (24 + 14 bits of mantissa), and so is its
    // fraction.
    let x = f64::from(p) * 10000.0;
    let mut n = x.floor();
    let frac = x - n;
    if frac > 0.5 || (frac == 0.5 && n % 2.0 == 1.0) {
        n += 1.0;
    }
    let n = n as u32;
    let d = n % 10000;
    out.push(b'0' + (n / 10000) as u8);
    out.extend_from_slice(&[b'.', b'0' + (d / 1000) as u8, b'0' + (d / 100 % 10) as u8, b'0' + (d / 10 % 10) as u8, b'0' + (d % 10) as u8]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_lines() {
        assert_eq!(one_line("a\nb\r\nc\td"), "a b\r c\td");
    }

    #[test]
    fn letters() {
        assert!(!has_letters(""));
        assert!(!has_letters(" \n\t"));
        assert!(!has_letters("123 + 4.5 = ?!"));
        assert!(!has_letters("😀🎉👍"));
        assert!(has_letters("x"));
        assert!(has_letters("日本語"));
        assert!(has_letters("Привет"));
    }

    #[test]
    fn probs_as_format_writes_them() {
        // Every f32 from 0 to 1 was checked once against `{:.4}`; this
        // keeps a stride of them, the ties and the ends.
        let one = 1.0f32.to_bits();
        let mut bits: Vec<u32> = (0..=one).step_by(9973).collect();
        bits.extend([0, 1, one - 1, one]);
        bits.extend((0..16u32).map(|k| ((2 * k + 1) as f32 / 32.0).to_bits()));
        bits.extend([0.00005f32, 0.00015, 0.99995, 0.5, 0.25].iter().map(|p| p.to_bits()));
        for b in bits {
            let p = f32::from_bits(b);
            let mut got = Vec::new();
            push_prob(&mut got, p);
            assert_eq!(String::from_utf8(got).unwrap(), format!("{:.4}", p), "{:e}", p);
        }
    }

    #[test]
    fn renders() {
        let langs = pair("__label__en\n__label__de\n__label__fr\n", &[0.98123, 0.01, 1e-5]);
        assert_eq!(
            render(&langs, 0.25),
            r#"{"languages":[{"lang":"en","prob":0.9812},{"lang":"de","prob":0.0100},{"lang":"fr","prob":0.0000}]}"#
        );
        assert_eq!(render(&langs, 0.99), UNDETERMINED);
        assert_eq!(render(&[], 0.0), UNDETERMINED);
        // fastText's probabilities can exceed 1 by rounding.
        let langs = pair("__label__ja", &[1.00001]);
        assert_eq!(render(&langs, 0.25), r#"{"languages":[{"lang":"ja","prob":1.0000}]}"#);
    }
}
