//! `hello`: the classic say(name) as a wasmjobs guest (Guest ABI v1).
//!
//! stdin (UTF-8, trimmed) is the name; when it is empty the `name` param
//! (argv `name=...`) is used, and failing that "world".
//! stdout: `{"greeting":"Hello, NAME!"}` with no trailing newline.

use std::io::{self, Write};
use std::process;
use wasmjobs_guest::{param, read_input};

fn main() {
    let input = match read_input() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("hello: reading input: {}", e);
            process::exit(1);
        }
    };
    let text = match String::from_utf8(input) {
        Ok(t) => t,
        Err(_) => {
            eprintln!("hello: input is not valid UTF-8");
            process::exit(2);
        }
    };
    let mut name = text.trim().to_string();
    if name.is_empty() {
        name = match param("name") {
            Some(n) if !n.trim().is_empty() => n.trim().to_string(),
            _ => "world".to_string(),
        };
    }
    let greeting = format!("Hello, {}!", name);
    let escaped = serde_json::to_string(&greeting).expect("string serialization cannot fail");
    let out = format!("{{\"greeting\":{}}}", escaped);
    let stdout = io::stdout();
    let mut w = stdout.lock();
    if let Err(e) = w.write_all(out.as_bytes()).and_then(|_| w.flush()) {
        eprintln!("hello: writing output: {}", e);
        process::exit(1);
    }
}
