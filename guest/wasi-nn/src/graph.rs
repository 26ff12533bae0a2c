//! Graphs (models) and execution contexts.

use crate::{tensor::Tensor, Error, TensorType};
use std::fmt::{Debug, Display, Formatter};

/// The encoding of a graph (WasmEdge numbering). The wasmjobs host accepts
/// `Onnx` and `Autodetec` through `build_from_bytes`; a graph loaded by name
/// (`build_from_cache`) has the encoding the worker registered it with, and
/// the builder's encoding is not checked.
#[derive(Debug, Copy, Clone, Eq, PartialEq, Hash, Ord, PartialOrd)]
#[repr(C)]
pub enum GraphEncoding {
    Openvino = 0,
    Onnx,
    Tensorflow,
    Pytorch,
    TensorflowLite,
    Autodetec,
    Ggml,
}

/// Where the graph should run. The worker decides the device
/// (`--nn-device`); the target is a hint.
#[derive(Debug, Copy, Clone, Eq, PartialEq, Hash, Ord, PartialOrd)]
#[repr(C)]
pub enum ExecutionTarget {
    CPU = 0,
    GPU,
    TPU,
    AUTO,
}

/// Configures and loads a [`Graph`]. Defaults: `Openvino`, `CPU` (as in
/// `wasmedge-wasi-nn`).
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    encoding: GraphEncoding,
    target: ExecutionTarget,
    config: Option<String>,
}

impl Default for GraphBuilder {
    #[inline(always)]
    fn default() -> Self {
        Self::new(GraphEncoding::Openvino, ExecutionTarget::CPU)
    }
}

impl GraphBuilder {
    /// A builder for the given encoding and target.
    #[inline(always)]
    #[must_use]
    pub fn new(encoding: GraphEncoding, target: ExecutionTarget) -> Self {
        Self {
            encoding,
            target,
            config: None,
        }
    }

    /// Sets a configuration string, passed to `load_by_name_with_config` by
    /// [`GraphBuilder::build_from_cache`].
    #[inline(always)]
    #[must_use]
    pub fn config(mut self, config: String) -> Self {
        self.config = Some(config);
        self
    }

    /// Sets the encoding.
    #[inline(always)]
    #[must_use]
    pub fn encoding(mut self, encoding: GraphEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Sets the execution target.
    #[inline(always)]
    #[must_use]
    pub fn execution_target(mut self, execution_target: ExecutionTarget) -> Self {
        self.target = execution_target;
        self
    }

    /// Sets the execution target to `CPU`.
    #[inline(always)]
    #[must_use]
    pub fn cpu(mut self) -> Self {
        self.target = ExecutionTarget::CPU;
        self
    }

    /// Sets the execution target to `GPU`.
    #[inline(always)]
    #[must_use]
    pub fn gpu(mut self) -> Self {
        self.target = ExecutionTarget::GPU;
        self
    }

    /// Sets the execution target to `TPU`.
    #[inline(always)]
    #[must_use]
    pub fn tpu(mut self) -> Self {
        self.target = ExecutionTarget::TPU;
        self
    }

    /// Loads a graph from in-memory model files (`load`).
    #[inline(always)]
    pub fn build_from_bytes<B>(self, bytes_array: impl AsRef<[B]>) -> Result<Graph, Error>
    where
        B: AsRef<[u8]>,
    {
        let builders: Vec<&[u8]> = bytes_array.as_ref().iter().map(AsRef::as_ref).collect();
        let graph_handle = syscall::load(builders.as_slice(), self.encoding, self.target)?;
        Ok(Graph {
            build_info: self,
            graph_handle,
        })
    }

    /// Reads model files and loads them (`load`). The wasmjobs sandbox has no
    /// filesystem, so there this fails with [`Error::IoError`]; use
    /// [`GraphBuilder::build_from_cache`] with a model registered in the worker.
    #[inline(always)]
    pub fn build_from_files<P>(self, files: impl AsRef<[P]>) -> Result<Graph, Error>
    where
        P: AsRef<std::path::Path>,
    {
        let mut contents = Vec::with_capacity(files.as_ref().len());
        for file in files.as_ref() {
            contents.push(std::fs::read(file)?);
        }
        self.build_from_bytes(contents)
    }

    /// Loads the model registered in the worker under `name`
    /// (`load_by_name`, or `load_by_name_with_config` when a config is set).
    /// An unknown name is `BackendError::NotFound` or `ModelNotFound`.
    #[inline(always)]
    pub fn build_from_cache(self, name: &str) -> Result<Graph, Error> {
        let graph_handle = match &self.config {
            Some(config) => syscall::load_by_name_with_config(name, config)?,
            None => syscall::load_by_name(name)?,
        };
        Ok(Graph {
            build_info: self,
            graph_handle,
        })
    }
}

/// A loaded model; creates [`GraphExecutionContext`]s.
pub struct Graph {
    build_info: GraphBuilder,
    graph_handle: syscall::GraphHandle,
}

impl Graph {
    /// The graph encoding given to the builder.
    #[inline(always)]
    pub fn encoding(&self) -> GraphEncoding {
        self.build_info.encoding
    }

    /// The execution target given to the builder.
    #[inline(always)]
    pub fn execution_target(&self) -> ExecutionTarget {
        self.build_info.target
    }

    /// Creates a fresh execution context (`init_execution_context`).
    #[inline(always)]
    pub fn init_execution_context(&self) -> Result<GraphExecutionContext, Error> {
        let ctx_handle = syscall::init_execution_context(self.graph_handle)?;
        Ok(GraphExecutionContext { ctx_handle })
    }

    /// Releases the graph handle (`unload`). Optional: everything a guest
    /// loaded is released when its instance ends.
    #[inline(always)]
    pub fn unload(self) -> Result<(), Error> {
        syscall::unload(self.graph_handle)
    }
}

impl Display for Graph {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        write!(f, "Graph#{}", self.graph_handle)
    }
}

impl Debug for Graph {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.graph_handle)
    }
}

/// One caller's inputs and outputs for a [`Graph`].
pub struct GraphExecutionContext {
    ctx_handle: syscall::GraphExecutionContextHandle,
}

impl GraphExecutionContext {
    /// Sets input `index` to a tensor of `tensor_type` with `dimensions`;
    /// `data` is any slice of plain values (`f32`, `u8`, `i32`, ...), passed
    /// as its bytes.
    pub fn set_input<T: Sized>(
        &mut self,
        index: usize,
        tensor_type: TensorType,
        dimensions: &[usize],
        data: impl AsRef<[T]>,
    ) -> Result<(), Error> {
        let data_slice = data.as_ref();
        let buf = unsafe {
            core::slice::from_raw_parts(
                data_slice.as_ptr().cast::<u8>(),
                std::mem::size_of_val(data_slice),
            )
        };
        syscall::set_input(self.ctx_handle, index, Tensor::new(dimensions, tensor_type, buf))
    }

    /// Runs the graph on the inputs set (`compute`).
    #[inline(always)]
    pub fn compute(&mut self) -> Result<(), Error> {
        syscall::compute(self.ctx_handle)
    }

    /// WasmEdge GGML streaming extension: not supported by wasmjobs
    /// (`UnsupportedOperation`).
    #[inline(always)]
    pub fn compute_single(&mut self) -> Result<(), Error> {
        Err(unsupported())
    }

    /// WasmEdge GGML streaming extension: not supported by wasmjobs
    /// (`UnsupportedOperation`).
    #[inline(always)]
    pub fn fini_single(&mut self) -> Result<(), Error> {
        Err(unsupported())
    }

    /// Copies output `index` into `out_buffer` and returns its size in
    /// **bytes**. A buffer too small for the output is `BackendError::TooLarge`.
    #[inline(always)]
    pub fn get_output<T: Sized>(&self, index: usize, out_buffer: &mut [T]) -> Result<usize, Error> {
        let out_buf = unsafe {
            core::slice::from_raw_parts_mut(
                out_buffer.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(out_buffer),
            )
        };
        syscall::get_output(self.ctx_handle, index, out_buf)
    }

    /// WasmEdge GGML streaming extension: not supported by wasmjobs
    /// (`UnsupportedOperation`).
    #[inline(always)]
    pub fn get_output_single<T: Sized>(
        &self,
        _index: usize,
        _out_buffer: &mut [T],
    ) -> Result<usize, Error> {
        Err(unsupported())
    }

    /// Releases the context (`finalize_execution_context`). Optional:
    /// everything is released when the guest's instance ends.
    #[inline(always)]
    pub fn finalize(self) -> Result<(), Error> {
        syscall::finalize_execution_context(self.ctx_handle)
    }
}

impl Display for GraphExecutionContext {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        write!(f, "GraphExecutionContext#{}", self.ctx_handle)
    }
}

impl Debug for GraphExecutionContext {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.ctx_handle)
    }
}

fn unsupported() -> Error {
    Error::BackendError(crate::BackendError::UnsupportedOperation)
}

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod syscall {
    use crate::error::check;
    use crate::{tensor::Tensor, Error, ExecutionTarget, GraphEncoding};

    pub(crate) type GraphHandle = i32;
    pub(crate) type GraphExecutionContextHandle = i32;

    // The ABI's 20-byte tensor struct.
    const _: () = assert!(std::mem::size_of::<Tensor>() == 20);

    mod ffi {
        #[link(wasm_import_module = "wasi_ephemeral_nn")]
        extern "C" {
            pub fn load(builders: i32, builders_len: i32, encoding: i32, target: i32, graph_out: i32) -> i32;
            pub fn load_by_name(name: i32, name_len: i32, graph_out: i32) -> i32;
            pub fn load_by_name_with_config(
                name: i32,
                name_len: i32,
                config: i32,
                config_len: i32,
                graph_out: i32,
            ) -> i32;
            pub fn init_execution_context(graph: i32, ctx_out: i32) -> i32;
            pub fn set_input(ctx: i32, index: i32, tensor: i32) -> i32;
            pub fn compute(ctx: i32) -> i32;
            pub fn get_output(ctx: i32, index: i32, out: i32, out_max_len: i32, written_out: i32) -> i32;
            pub fn finalize_execution_context(ctx: i32) -> i32;
            pub fn unload(graph: i32) -> i32;
        }
    }

    pub(crate) fn load(
        builders: &[&[u8]],
        encoding: GraphEncoding,
        target: ExecutionTarget,
    ) -> Result<GraphHandle, Error> {
        let mut handle: i32 = 0;
        check(unsafe {
            ffi::load(
                builders.as_ptr() as i32,
                builders.len() as i32,
                encoding as i32,
                target as i32,
                &mut handle as *mut i32 as i32,
            )
        })?;
        Ok(handle)
    }

    pub(crate) fn load_by_name(name: &str) -> Result<GraphHandle, Error> {
        let mut handle: i32 = 0;
        check(unsafe {
            ffi::load_by_name(name.as_ptr() as i32, name.len() as i32, &mut handle as *mut i32 as i32)
        })?;
        Ok(handle)
    }

    pub(crate) fn load_by_name_with_config(name: &str, config: &str) -> Result<GraphHandle, Error> {
        let mut handle: i32 = 0;
        check(unsafe {
            ffi::load_by_name_with_config(
                name.as_ptr() as i32,
                name.len() as i32,
                config.as_ptr() as i32,
                config.len() as i32,
                &mut handle as *mut i32 as i32,
            )
        })?;
        Ok(handle)
    }

    pub(crate) fn init_execution_context(graph: GraphHandle) -> Result<GraphExecutionContextHandle, Error> {
        let mut handle: i32 = 0;
        check(unsafe { ffi::init_execution_context(graph, &mut handle as *mut i32 as i32) })?;
        Ok(handle)
    }

    pub(crate) fn set_input(ctx: GraphExecutionContextHandle, index: usize, tensor: Tensor) -> Result<(), Error> {
        check(unsafe { ffi::set_input(ctx, index as i32, &tensor as *const Tensor as i32) })
    }

    pub(crate) fn compute(ctx: GraphExecutionContextHandle) -> Result<(), Error> {
        check(unsafe { ffi::compute(ctx) })
    }

    pub(crate) fn get_output(ctx: GraphExecutionContextHandle, index: usize, out: &mut [u8]) -> Result<usize, Error> {
        let mut written: u32 = 0;
        check(unsafe {
            ffi::get_output(
                ctx,
                index as i32,
                out.as_mut_ptr() as i32,
                out.len() as i32,
                &mut written as *mut u32 as i32,
            )
        })?;
        Ok(written as usize)
    }

    pub(crate) fn finalize_execution_context(ctx: GraphExecutionContextHandle) -> Result<(), Error> {
        check(unsafe { ffi::finalize_execution_context(ctx) })
    }

    pub(crate) fn unload(graph: GraphHandle) -> Result<(), Error> {
        check(unsafe { ffi::unload(graph) })
    }
}

// Off wasm32-wasi (native `cargo test`): every host call is unsupported.
#[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
mod syscall {
    use crate::{tensor::Tensor, Error, ExecutionTarget, GraphEncoding};

    pub(crate) type GraphHandle = i32;
    pub(crate) type GraphExecutionContextHandle = i32;

    fn unsupported<T>() -> Result<T, Error> {
        Err(super::unsupported())
    }

    pub(crate) fn load(_: &[&[u8]], _: GraphEncoding, _: ExecutionTarget) -> Result<GraphHandle, Error> {
        unsupported()
    }
    pub(crate) fn load_by_name(_: &str) -> Result<GraphHandle, Error> {
        unsupported()
    }
    pub(crate) fn load_by_name_with_config(_: &str, _: &str) -> Result<GraphHandle, Error> {
        unsupported()
    }
    pub(crate) fn init_execution_context(_: GraphHandle) -> Result<GraphExecutionContextHandle, Error> {
        unsupported()
    }
    pub(crate) fn set_input(_: GraphExecutionContextHandle, _: usize, t: Tensor) -> Result<(), Error> {
        let _ = (t.dimensions, t.tensor_type, t.data);
        unsupported()
    }
    pub(crate) fn compute(_: GraphExecutionContextHandle) -> Result<(), Error> {
        unsupported()
    }
    pub(crate) fn get_output(_: GraphExecutionContextHandle, _: usize, _: &mut [u8]) -> Result<usize, Error> {
        unsupported()
    }
    pub(crate) fn finalize_execution_context(_: GraphExecutionContextHandle) -> Result<(), Error> {
        unsupported()
    }
    pub(crate) fn unload(_: GraphHandle) -> Result<(), Error> {
        unsupported()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendError;

    #[test]
    fn numbering() {
        assert_eq!(GraphEncoding::Openvino as i32, 0);
        assert_eq!(GraphEncoding::Onnx as i32, 1);
        assert_eq!(GraphEncoding::Autodetec as i32, 5);
        assert_eq!(GraphEncoding::Ggml as i32, 6);
        assert_eq!(ExecutionTarget::CPU as i32, 0);
        assert_eq!(ExecutionTarget::AUTO as i32, 3);
    }

    #[test]
    fn builder() {
        assert_eq!(GraphBuilder::default().encoding, GraphEncoding::Openvino);
        assert_eq!(GraphBuilder::default().gpu().target, ExecutionTarget::GPU);
        assert_eq!(GraphBuilder::default().tpu().cpu().target, ExecutionTarget::CPU);
        let b = GraphBuilder::new(GraphEncoding::Onnx, ExecutionTarget::AUTO).config("{}".to_string());
        assert_eq!(b.config.as_deref(), Some("{}"));
        match b.build_from_cache("x") {
            Err(Error::BackendError(BackendError::UnsupportedOperation)) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
