//! `nnrun`: a test guest that runs one registered model on a raw tensor.
//!
//! Params: `model=NAME`, `dims=1,3,48,192`, `type=f32|u8|i32|i64|f64` (default
//! f32), `out=N` (output bytes to reserve, default 1 MiB), `repeat=N` (set
//! the input, compute and read the output N times on one context, default
//! 1; benchmarks divide by it). stdin is the input tensor's raw
//! little-endian bytes; stdout is output 0's raw bytes.
//! It lets tests drive WASI-NN from real guest instances with exact tensors.

use std::io::{self, Write};
use std::process;

use wasmedge_wasi_nn::{ExecutionTarget, GraphBuilder, GraphEncoding, TensorType};
use wasmjobs_guest::{param, read_input};

fn fail(code: i32, msg: String) -> ! {
    let _ = writeln!(io::stderr(), "nnrun: {}", msg);
    process::exit(code);
}

fn main() {
    let model = param("model").unwrap_or_else(|| fail(2, "param model= is required".into()));
    let dims: Vec<usize> = param("dims")
        .unwrap_or_else(|| fail(2, "param dims= is required".into()))
        .split(',')
        .map(|d| d.trim().parse().unwrap_or_else(|_| fail(2, format!("bad dimension {:?}", d))))
        .collect();
    let ty = match param("type").as_deref().unwrap_or("f32") {
        "f32" => TensorType::F32,
        "f64" => TensorType::F64,
        "u8" => TensorType::U8,
        "i32" => TensorType::I32,
        "i64" => TensorType::I64,
        other => fail(2, format!("unknown type {:?}", other)),
    };
    let out_len: usize = param("out").map(|v| v.parse().unwrap_or_else(|_| fail(2, "bad out=".into()))).unwrap_or(1 << 20);
    let repeat: usize = param("repeat").map(|v| v.parse().unwrap_or_else(|_| fail(2, "bad repeat=".into()))).unwrap_or(1);

    let input = read_input().unwrap_or_else(|e| fail(1, format!("read stdin: {}", e)));
    let graph = GraphBuilder::new(GraphEncoding::Autodetec, ExecutionTarget::AUTO)
        .build_from_cache(&model)
        .unwrap_or_else(|e| fail(1, format!("load {}: {}", model, e)));
    let mut ctx = graph.init_execution_context().unwrap_or_else(|e| fail(1, format!("context: {}", e)));
    let mut out = vec![0u8; out_len];
    let mut n = 0;
    for _ in 0..repeat.max(1) {
        ctx.set_input(0, ty, &dims, &input).unwrap_or_else(|e| fail(1, format!("set_input: {}", e)));
        ctx.compute().unwrap_or_else(|e| fail(1, format!("compute: {}", e)));
        n = ctx.get_output(0, &mut out).unwrap_or_else(|e| fail(1, format!("get_output: {}", e)));
    }
    if let Err(e) = io::stdout().write_all(&out[..n]) {
        fail(1, format!("write stdout: {}", e));
    }
}
