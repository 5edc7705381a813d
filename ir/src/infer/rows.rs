//! Typing rules of the row ops, which work along the last axis: the norms,
//! `softmax` and `reduce_sum`.

use super::{single, Checker, Inferred};
use crate::shape::{Dim, Shape};

/// `rms_norm` and `layer_norm`: a float `x` of rank 1 or more, and weights (and
/// bias) of its dtype, rank 1, sized as its last dim; the result is `x`'s type.
pub(super) fn norm(c: &Checker<'_>) -> Inferred {
    let dt = c.float(0)?;
    c.min_rank(0, 1)?;
    let last = c.ty(0).shape.last().cloned().unwrap_or(Dim::Static(1));
    for i in 1..c.operands.len() {
        c.same_dtype(i, 0)?;
        c.rank(i, 1)?;
        c.dim_eq(
            i,
            "norm weight must match the last dim",
            &c.dims(i)[0],
            &last,
        )?;
    }
    single(dt, c.ty(0).shape.clone())
}

/// `softmax`: a float of rank 1 or more, typed as the result.
pub(super) fn softmax(c: &Checker<'_>) -> Inferred {
    c.min_rank(0, 1)?;
    single(c.float(0)?, c.ty(0).shape.clone())
}

/// `reduce_sum`: rank 1 or more; the result drops the last dim.
pub(super) fn reduce_sum(c: &Checker<'_>) -> Inferred {
    c.min_rank(0, 1)?;
    let d = c.dims(0);
    single(c.ty(0).dtype, Shape(d[..d.len() - 1].to_vec()))
}
