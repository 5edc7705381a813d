//! Tensors of a lowered function: IR values, packed parameters and scratch.

use seam_bundle::Packing;
use seam_core::SizeExpr;
use seam_ir::{DType, ParamId, ValueId};

/// Index of a tensor in [`crate::lower::Lowered::tensors`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// Where a tensor's contents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An IR value (input, intermediate or output).
    Value(ValueId),
    /// A parameter, packed for the kernels that read it.
    Param(ParamId, Packing),
    /// Scratch written and read by the kernels of one op (e.g. the MoE routing plan).
    Temp,
}

/// A tensor: a name for logs, its element type and byte size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name (the IR value's, the parameter's, or a scratch name).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Element count as a function of the symbolic dims.
    pub elems: SizeExpr,
    /// Where its contents come from.
    pub source: Source,
}

impl TensorInfo {
    /// Byte size as a function of the symbolic dims.
    pub fn bytes(&self) -> SizeExpr {
        SizeExpr::product([
            self.elems.clone(),
            SizeExpr::Const(self.dtype.size_bytes() as u64),
        ])
    }
}
