//! A linear projection with an optional bias, and the [`Project`] trait the
//! blocks take their projections through.

use seam_ir::{ParamId, ValueId};

use super::Built;
use crate::builder::FunctionBuilder;

/// `x·weight (+ bias)`, the weight stored `[in, out]`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Linear {
    /// `[in, out]`.
    pub weight: ParamId,
    /// `[out]`, when the projection has one.
    pub bias: Option<ParamId>,
}

impl Linear {
    /// A projection without bias.
    pub(crate) fn unbiased(weight: ParamId) -> Self {
        Linear { weight, bias: None }
    }

    /// Emits `{name} = x·weight`, then `{name}.bias = {name} + bias` when there is one.
    pub(crate) fn emit(&self, f: &mut FunctionBuilder<'_>, name: &str, x: ValueId) -> Built {
        let y = f.matmul(name, x, self.weight)?;
        match self.bias {
            Some(b) => f.add(&format!("{name}.bias"), y, b),
            None => Ok(y),
        }
    }
}

/// A projection of token rows `x[T, in]` to `[T, out]`: a [`Linear`], or a
/// per-modality projection ([`super::ModalityLinear`]).
pub(crate) trait Project {
    /// Emits the projection of `x`, its result named `name`.
    fn project(&self, f: &mut FunctionBuilder<'_>, name: &str, x: ValueId) -> Built;
}

impl Project for Linear {
    fn project(&self, f: &mut FunctionBuilder<'_>, name: &str, x: ValueId) -> Built {
        self.emit(f, name, x)
    }
}
