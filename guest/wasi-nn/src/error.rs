//! Errors of the WASI-NN calls.

use std::fmt;

/// An error from a WASI-NN call (the same shape as `wasmedge_wasi_nn::Error`).
#[derive(Debug)]
pub enum Error {
    /// Reading a model file failed (`build_from_files`). The wasmjobs sandbox
    /// has no filesystem, so there this is always the outcome.
    IoError(std::io::Error),
    /// The host returned a non-zero errno.
    BackendError(BackendError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::IoError(e) => write!(f, "IO Error: {}", e),
            Error::BackendError(e) => write!(f, "Backend Error: {}", e),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::IoError(e) => Some(e),
            Error::BackendError(e) => Some(e),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::IoError(e)
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        Error::BackendError(e)
    }
}

/// The WASI-NN errno values (WasmEdge numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendError {
    /// 1: a bad argument (unknown handle, wrong tensor type or shape, ...).
    InvalidArgument,
    /// 2: the graph encoding is not supported.
    InvalidEncoding,
    /// 3: the caller module exports no memory.
    MissingMemory,
    /// 4: the device or resource is busy.
    Busy,
    /// 5: inference failed in the backend.
    RuntimeError,
    /// 6: the host does not support this operation.
    UnsupportedOperation,
    /// 7: a tensor or buffer is too large (e.g. `get_output`'s buffer is too small).
    TooLarge,
    /// 8: not found (e.g. no such output index).
    NotFound,
    /// 100: end of sequence (GGML).
    EndOfSequence,
    /// 101: context full (GGML).
    ContextFull,
    /// 102: prompt too long (GGML).
    PromptTooLong,
    /// 103: no model registered under the requested name.
    ModelNotFound,
    /// Any other code.
    UnknownError(i32),
}

impl From<i32> for BackendError {
    fn from(value: i32) -> Self {
        match value {
            1 => Self::InvalidArgument,
            2 => Self::InvalidEncoding,
            3 => Self::MissingMemory,
            4 => Self::Busy,
            5 => Self::RuntimeError,
            6 => Self::UnsupportedOperation,
            7 => Self::TooLarge,
            8 => Self::NotFound,
            100 => Self::EndOfSequence,
            101 => Self::ContextFull,
            102 => Self::PromptTooLong,
            103 => Self::ModelNotFound,
            _ => Self::UnknownError(value),
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            Self::InvalidArgument => "Caller module passed an invalid argument",
            Self::InvalidEncoding => "Invalid Encoding",
            Self::MissingMemory => "Caller module is missing a memory export",
            Self::Busy => "Device or resource busy",
            Self::RuntimeError => "Runtime Error",
            Self::UnsupportedOperation => "Unsupported Operation",
            Self::TooLarge => "Too Large",
            Self::NotFound => "Not Found",
            Self::EndOfSequence => "EOS Found",
            Self::ContextFull => "Context Full",
            Self::PromptTooLong => "Prompt Too Long",
            Self::ModelNotFound => "Model Not Found",
            Self::UnknownError(code) => {
                return write!(f, "Unknown Wasi-NN Backend Error Code `{}`", code)
            }
        };
        write!(f, "WASI-NN Backend Error: {}", msg)
    }
}

impl std::error::Error for BackendError {}

/// Maps an errno to a result.
#[cfg_attr(not(all(target_arch = "wasm32", target_os = "wasi")), allow(dead_code))]
pub(crate) fn check(code: i32) -> Result<(), Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::BackendError(BackendError::from(code)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        assert_eq!(BackendError::from(1), BackendError::InvalidArgument);
        assert_eq!(BackendError::from(5), BackendError::RuntimeError);
        assert_eq!(BackendError::from(8), BackendError::NotFound);
        assert_eq!(BackendError::from(103), BackendError::ModelNotFound);
        assert_eq!(BackendError::from(42), BackendError::UnknownError(42));
        assert!(check(0).is_ok());
        match check(7) {
            Err(Error::BackendError(BackendError::TooLarge)) => {}
            other => panic!("{:?}", other),
        }
        assert_eq!(
            BackendError::NotFound.to_string(),
            "WASI-NN Backend Error: Not Found"
        );
    }
}
