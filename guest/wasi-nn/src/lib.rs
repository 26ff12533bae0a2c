//! # `wasmedge_wasi_nn` for wasmjobs
//!
//! A dependency-free guest SDK for the `wasi_ephemeral_nn` host module of
//! wasmjobs, which follows WasmEdge's *legacy* WASI-NN ABI. The public API
//! mirrors the [`wasmedge-wasi-nn`](https://crates.io/crates/wasmedge-wasi-nn)
//! crate (same crate name, types, variants, method names and signatures), so a
//! guest written for WasmEdge ports by changing only its dependency line:
//!
//! ```toml
//! [dependencies]
//! wasmedge-wasi-nn = { path = "../wasi-nn" }
//! ```
//!
//! ```no_run
//! use wasmedge_wasi_nn::{ExecutionTarget, GraphBuilder, GraphEncoding, TensorType};
//!
//! fn run(input: &[f32]) -> Result<Vec<f32>, wasmedge_wasi_nn::Error> {
//!     // A model registered in the worker as `--model ocr-cls=...`.
//!     let graph = GraphBuilder::new(GraphEncoding::Onnx, ExecutionTarget::AUTO)
//!         .build_from_cache("ocr-cls")?;
//!     let mut ctx = graph.init_execution_context()?;
//!     ctx.set_input(0, TensorType::F32, &[1, 3, 48, 192], input)?;
//!     ctx.compute()?;
//!     let mut out = vec![0f32; 2];
//!     let bytes = ctx.get_output(0, &mut out)?;
//!     out.truncate(bytes / 4);
//!     Ok(out)
//! }
//! ```
//!
//! ## ABI (wasm32)
//!
//! Every host function returns an errno (`0` = success, see [`BackendError`])
//! and writes results through pointers:
//!
//! | import | signature |
//! |---|---|
//! | `load` | `(builders_ptr, builders_len, encoding, target, graph_out) -> errno` |
//! | `load_by_name` | `(name_ptr, name_len, graph_out) -> errno` |
//! | `load_by_name_with_config` | `(name_ptr, name_len, config_ptr, config_len, graph_out) -> errno` |
//! | `init_execution_context` | `(graph, ctx_out) -> errno` |
//! | `set_input` | `(ctx, index, tensor_ptr) -> errno` |
//! | `compute` | `(ctx) -> errno` |
//! | `get_output` | `(ctx, index, out_ptr, out_max_len, bytes_written_out) -> errno` |
//! | `finalize_execution_context` | `(ctx) -> errno` |
//! | `unload` | `(graph) -> errno` |
//!
//! `builders_ptr` points to `builders_len` (ptr u32, len u32) pairs, one per
//! model file. A tensor is the 20-byte struct
//! `{dims_ptr u32, dims_len u32, type u32, data_ptr u32, data_len u32}` with
//! `u32` dimensions and little-endian, row-major data; [`TensorType`] gives
//! the numbering of `type`.
//!
//! Only the functions a guest calls become imports of its module (the linker
//! drops the rest). The streaming extensions of WasmEdge's GGML plugin
//! (`compute_single`, `get_output_single`, `fini_single`) are not provided by
//! the wasmjobs host: here they return
//! [`BackendError::UnsupportedOperation`] without importing anything, so a
//! module that merely links them still loads.
//!
//! Off `wasm32-wasi` (e.g. `cargo test` on the build machine) every host call
//! returns [`BackendError::UnsupportedOperation`], so pure logic that uses
//! these types can be unit-tested natively.

mod error;
mod graph;
mod tensor;

pub use error::{BackendError, Error};
pub use graph::{ExecutionTarget, Graph, GraphBuilder, GraphEncoding, GraphExecutionContext};
pub use tensor::TensorType;
