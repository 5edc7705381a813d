//! Typing rules of the selection ops over the last axis: `topk` and the
//! router decision `route`.

use super::{Checker, Inferred, TypeError};
use crate::op::RouteMode;
use crate::shape::{Dim, Shape, TensorType};
use seam_core::DType;

/// `topk`: `k` of the static last axis of a rank-1-or-more operand; results
/// `values[..., k]` (operand dtype) and `indices[..., k]` (i32).
pub(super) fn top_k(c: &Checker<'_>, k: usize) -> Inferred {
    c.min_rank(0, 1)?;
    let d = c.dims(0);
    check_k(c, k, &d[d.len() - 1])?;
    let mut out = d.to_vec();
    *out.last_mut().expect("rank >= 1") = Dim::Static(k as u64);
    Ok(vec![
        TensorType {
            dtype: c.ty(0).dtype,
            shape: Shape(out.clone()),
        },
        TensorType {
            dtype: DType::I32,
            shape: Shape(out),
        },
    ])
}

/// `route`: `k` experts of the static last axis of float logits of rank 2 or
/// more (and, to take them, float scores of the logits' shape); results
/// `ids: i32[..., k]` and `weights[..., k]` (logits dtype). `renorm` needs
/// [`RouteMode::SoftmaxTopk`].
pub(super) fn route(c: &Checker<'_>, k: usize, mode: RouteMode, renorm: bool) -> Inferred {
    let dt = c.float(0)?;
    c.min_rank(0, 2)?;
    let d = c.dims(0);
    check_k(c, k, &d[d.len() - 1])?;
    if mode == RouteMode::Take {
        c.float(1)?;
        c.same_shape(1, 0, "scores", "the logits'")?;
    }
    if renorm && mode != RouteMode::SoftmaxTopk {
        return Err(c.attr_err("`renorm=true` needs `mode=softmax_topk`"));
    }
    let mut out = d[..d.len() - 1].to_vec();
    out.push(Dim::Static(k as u64));
    let out = Shape(out);
    Ok(vec![
        TensorType {
            dtype: DType::I32,
            shape: out.clone(),
        },
        TensorType {
            dtype: dt,
            shape: out,
        },
    ])
}

/// `k` must select between 1 and all of the static axis `last` (of operand 0).
fn check_k(c: &Checker<'_>, k: usize, last: &Dim) -> Result<(), TypeError> {
    let n = c.static_dim(0, "the selected axis", last)?;
    if k >= 1 && (k as u64) <= n {
        Ok(())
    } else {
        Err(c.attr_err(format!("k={k} must be between 1 and {n}")))
    }
}
