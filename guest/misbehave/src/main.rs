//! `misbehave`: a test guest for the host's failure handling.
//!
//! Behaviour is chosen by the `mode=` argument:
//! - `echo` (default): copy stdin to stdout unchanged, exit 0.
//! - `exit`: write "misbehave: asked to fail" to stderr, exit 3.
//! - `loop`: spin forever without calling any import.
//! - `grow`: allocate 1 MiB chunks (filled, kept alive) until allocation fails.
//! - `panic`: panic with "misbehave: boom" (aborts: a wasm trap).
//! - `stderr`: write 100 KiB of 'x', then "\nmisbehave: tail marker\n" to stderr, exit 4.
//! - `warn`: write 100 KiB of 'w', then "\nmisbehave: warn marker\n" to stderr,
//!   copy stdin to stdout, exit 0 (a job that succeeds with a log).
//! - In the records ABI (it declares it; `WASMJOBS_RECORDS=1`), `echo`
//!   answers each record with itself; `drop` leaves out the last answer.
//! - `big`: write `n=` bytes (default 1048576) of 'a' to stdout, exit 0.

use std::io::{self, Write};
use std::process;
use wasmjobs_guest::{param, fail, records_mode};

// It speaks the records ABI, to test the host's side of it.
wasmjobs_guest::records_abi!();

static mut SINK: u64 = 0;

/// Busy loop with a volatile read-modify-write each iteration, so the
/// optimizer can neither remove it nor turn it into anything that calls out.
fn spin() -> ! {
    loop {
        unsafe {
            let p = core::ptr::addr_of_mut!(SINK);
            core::ptr::write_volatile(p, core::ptr::read_volatile(p).wrapping_add(1));
        }
    }
}

fn grow() -> ! {
    const CHUNK: usize = 1 << 20;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut i: usize = 0;
    loop {
        let chunk = vec![0xA5u8; CHUNK];
        // Touch the chunk through a volatile access so the allocation and
        // fill are observable and cannot be elided.
        unsafe {
            let b = core::ptr::read_volatile(chunk.as_ptr().add(i % CHUNK));
            core::ptr::write_volatile(core::ptr::addr_of_mut!(SINK), b as u64);
        }
        kept.push(chunk);
        i = i.wrapping_add(4093);
    }
}

fn echo() {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = io::copy(&mut stdin.lock(), &mut out).and_then(|_| out.flush()) {
        fail(1, &format!("misbehave: echo: {}\n", e));
    }
}

fn main() {
    let mode = param("mode").unwrap_or_else(|| "echo".to_string());
    if records_mode() && mode == "drop" {
        let mut input = Vec::new();
        let _ = io::Read::read_to_end(&mut io::stdin(), &mut input);
        let text = String::from_utf8_lossy(&input);
        let lines: Vec<&str> = text.lines().collect();
        let mut out = io::stdout();
        for l in &lines[..lines.len().saturating_sub(1)] {
            let _ = writeln!(out, "{}", l);
        }
        return;
    }
    match mode.as_str() {
        "echo" => echo(),
        "warn" => {
            let stderr = io::stderr();
            let mut e = stderr.lock();
            let ws = vec![b'w'; 100 * 1024];
            let _ = e.write_all(&ws);
            let _ = e.write_all(b"\nmisbehave: warn marker\n");
            let _ = e.flush();
            echo();
        }
        "exit" => fail(3, "misbehave: asked to fail\n"),
        "loop" => spin(),
        "grow" => grow(),
        "panic" => panic!("misbehave: boom"),
        "stderr" => {
            let stderr = io::stderr();
            let mut e = stderr.lock();
            let xs = vec![b'x'; 100 * 1024];
            let _ = e.write_all(&xs);
            let _ = e.write_all(b"\nmisbehave: tail marker\n");
            let _ = e.flush();
            process::exit(4);
        }
        "big" => {
            let n: u64 = match param("n") {
                None => 1 << 20,
                Some(s) => match s.parse() {
                    Ok(n) => n,
                    Err(_) => fail(2, &format!("misbehave: invalid n {:?}\n", s)),
                },
            };
            let buf = vec![b'a'; 64 * 1024];
            let stdout = io::stdout();
            let mut out = stdout.lock();
            let mut left = n;
            while left > 0 {
                let k = if left < buf.len() as u64 { left as usize } else { buf.len() };
                if let Err(e) = out.write_all(&buf[..k]) {
                    fail(1, &format!("misbehave: big: {}\n", e));
                }
                left -= k as u64;
            }
            if let Err(e) = out.flush() {
                fail(1, &format!("misbehave: big: {}\n", e));
            }
        }
        other => fail(2, &format!("misbehave: unknown mode {:?}\n", other)),
    }
}
