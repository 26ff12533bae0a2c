//! Tensor definitions.

/// The type of the elements in a tensor (WasmEdge numbering; the `type`
/// field of the tensor struct).
#[derive(Debug, Copy, Clone, Hash, Eq, PartialEq, Ord, PartialOrd)]
#[repr(C)]
pub enum TensorType {
    F16 = 0,
    F32,
    F64,
    U8,
    I32,
    I64,
}

impl TensorType {
    /// The size of one element in bytes.
    #[inline(always)]
    pub fn byte_size(&self) -> usize {
        match self {
            Self::U8 => 1,
            Self::F16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
        }
    }
}

/// The tensor struct passed to `set_input`. On wasm32 a slice reference is
/// (ptr u32, len u32) and a `repr(C)` enum is a u32, so this is exactly the
/// ABI's 20-byte `{dims_ptr, dims_len, type, data_ptr, data_len}`.
#[repr(C)]
pub(crate) struct Tensor<'t> {
    pub dimensions: &'t [usize],
    pub tensor_type: TensorType,
    pub data: &'t [u8],
}

impl<'t> Tensor<'t> {
    #[inline(always)]
    pub fn new(dimensions: &'t [usize], tensor_type: TensorType, data: &'t [u8]) -> Self {
        Self {
            dimensions,
            tensor_type,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TensorType;

    #[test]
    fn tensor_type_numbering() {
        assert_eq!(TensorType::F16 as u32, 0);
        assert_eq!(TensorType::F32 as u32, 1);
        assert_eq!(TensorType::F64 as u32, 2);
        assert_eq!(TensorType::U8 as u32, 3);
        assert_eq!(TensorType::I32 as u32, 4);
        assert_eq!(TensorType::I64 as u32, 5);
        assert_eq!(std::mem::size_of::<TensorType>(), 4);
        assert_eq!(TensorType::I64.byte_size(), 8);
    }
}
