//! RMSNorm with a learned weight.

use seam_ir::{ParamId, ValueId};

use super::Built;
use crate::builder::FunctionBuilder;

/// `rms_norm(x, weight, eps)`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct RmsNorm {
    /// `[width]`.
    pub weight: ParamId,
    /// Added to the mean square before the square root.
    pub eps: f32,
}

impl RmsNorm {
    /// Emits `{name} = rms_norm(x)`.
    pub(crate) fn emit(&self, f: &mut FunctionBuilder<'_>, name: &str, x: ValueId) -> Built {
        f.rms_norm(name, x, self.weight, self.eps)
    }
}
