//! Small helpers for wasmjobs guests (Guest ABI v1), shared by the shipped
//! guests: reading params from argv and failing with a reason.
//!
//! A guest does not need this crate: params are plain `key=value` argv
//! entries (and the JSON env `WASMJOBS_PARAMS`), and failing is writing to
//! stderr and exiting non-zero.

use std::io::{self, Write};
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
