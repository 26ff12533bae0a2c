//! Small helpers for wasmjobs guests (Guest ABI v1), shared by the shipped
//! guests: reading the input and params, and failing with a reason.
//!
//! A guest does not need this crate: params are plain `key=value` argv
//! entries (and the JSON env `WASMJOBS_PARAMS`), and failing is writing to
//! stderr and exiting non-zero.

use std::io::{self, Read, Write};
use std::process;

/// Returns the value of the last `key=value` argument with the given key.
pub fn param(key: &str) -> Option<String> {
    let mut found = None;
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy().into_owned();
        if let Some((k, v)) = arg.split_once('=') {
            if k == key {
                found = Some(v.to_string());
            }
        }
    }
    found
}

/// Reads all of stdin, the job's input.
///
/// Prefer it to `read_to_end`: Rust's `read_to_end` zeroes a vector's spare
/// capacity before reading into it, and in a fresh instance every zeroed
/// page is a page the host must fault in (a 1 MiB capacity cost the OCR
/// guest about 0.5 ms per job). This reads through a small buffer and grows
/// the vector only by what arrives.
pub fn read_input() -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 32 * 1024];
    let stdin = io::stdin();
    let mut r = stdin.lock();
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes `msg` to stderr (the host keeps its tail as the job's failure
/// reason) and exits with `code`: a permanent failure of the job.
pub fn fail(code: i32, msg: &str) -> ! {
    let _ = io::stderr().write_all(msg.as_bytes());
    process::exit(code);
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_param_is_none() {
        assert_eq!(super::param("wasmjobs-no-such-param"), None);
    }
}

/// Declares the models the guest loads by name (`build_from_cache`), so
/// that `wasmjobs guest push` refuses it when the workers do not have them,
/// instead of its first job failing. Use it once, at the crate's top level:
///
/// ```ignore
/// wasmjobs_guest::models!("ocr-det", "ocr-rec");
/// ```
///
/// It writes the names, each ended by a newline, into the module's custom
/// section `wasmjobs:models`; a guest written without this crate declares
/// them the same way.
#[macro_export]
macro_rules! models {
    ($($name:literal),+ $(,)?) => {
        const _: () = {
            const NAMES: &str = concat!($($name, "\n"),+);
            #[link_section = "wasmjobs:models"]
            #[used]
            static MODELS: [u8; NAMES.len()] = $crate::section_bytes::<{ NAMES.len() }>(NAMES);
        };
    };
}

/// The bytes of `s` as an array, for [`models!`].
#[doc(hidden)]
pub const fn section_bytes<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Declares that the guest speaks the records ABI: run on a shard of a
/// record batch with `WASMJOBS_RECORDS=1` set, it reads one record per line
/// of stdin, each a JSON value (a string for text records), and writes one
/// line of JSON per record to stdout, in order: its result, or
/// `{"error":"reason"}` for a record it cannot handle. Use it once, at the
/// crate's top level, and check [`records_mode`] in `main`. It writes
/// `records` into the module's custom section `wasmjobs:abi`.
#[macro_export]
macro_rules! records_abi {
    () => {
        const _: () = {
            #[link_section = "wasmjobs:abi"]
            #[used]
            static ABI: [u8; 8] = *b"records\n";
        };
    };
}

/// True when the host runs the guest in the records ABI (see
/// [`records_abi!`]).
pub fn records_mode() -> bool {
    std::env::var("WASMJOBS_RECORDS").map(|v| v == "1").unwrap_or(false)
}
