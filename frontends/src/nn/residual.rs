//! Pre-norm residual wiring: a sublayer reads the normalised residual stream
//! and its output is added back to it.

use seam_ir::ValueId;

use super::{Built, RmsNorm};
use crate::builder::FunctionBuilder;

/// Emits `sublayer(rms_norm(x))`, the norm named `{prefix}.{name}_in`.
pub(crate) fn pre_norm(
    f: &mut FunctionBuilder<'_>,
    prefix: &str,
    name: &str,
    norm: &RmsNorm,
    x: ValueId,
    sublayer: impl FnOnce(&mut FunctionBuilder<'_>, ValueId) -> Built,
) -> Built {
    let h = norm.emit(f, &format!("{prefix}.{name}_in"), x)?;
    sublayer(f, h)
}

/// Emits `x + y`, a sublayer's output `y` added back to the residual stream
/// `x`, named `{prefix}.{name}_res`.
pub(crate) fn add_residual(
    f: &mut FunctionBuilder<'_>,
    prefix: &str,
    name: &str,
    x: ValueId,
    y: ValueId,
) -> Built {
    f.add(&format!("{prefix}.{name}_res"), x, y)
}
