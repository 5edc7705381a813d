//! Typing rules of the grouped expert FFN `moe` (the tokens and their routing,
//! the stacked expert weights, and the optional shared expert) and of the
//! id-selected `grouped_matmul`.

use super::{single, Checker, Inferred, TypeError};
use crate::shape::Dim;

/// `moe`: float `x[T, D]`, integer `ids[T, k]`, `weights[T, k]`, expert weights
/// `w_gate[E, D, F]`, `w_up[E, D, F]`, `w_down[E, F, D]` and optionally a shared
/// expert `s_gate[D, Fs]`, `s_up[D, Fs]`, `s_down[Fs, D]`; the result is `x`'s type.
pub(super) fn moe(c: &Checker<'_>) -> Inferred {
    let dt = c.float(0)?;
    c.rank(0, 2)?;
    check_routing(c)?;
    let model_dim = &c.dims(0)[1];
    check_experts(c, model_dim)?;
    if c.operands.len() == 9 {
        check_shared_expert(c, model_dim)?;
    }
    single(dt, c.ty(0).shape.clone())
}

/// Operands 1 and 2: integer `ids[T, k]` with a row per token of `x`, and
/// `weights` of `x`'s dtype and the ids' shape.
fn check_routing(c: &Checker<'_>) -> Result<(), TypeError> {
    c.int(1)?;
    c.rank(1, 2)?;
    c.same_dtype(2, 0)?;
    c.rank(2, 2)?;
    let (tokens, ids, weights) = (&c.dims(0)[0], c.dims(1), c.dims(2));
    c.dim_eq(1, "expert ids must have a row per token", &ids[0], tokens)?;
    c.dim_eq(2, "weights must have the ids' shape", &weights[0], &ids[0])?;
    c.dim_eq(2, "weights must have the ids' shape", &weights[1], &ids[1])
}

/// Operands 3 to 5: `w_gate[E, D, F]`, `w_up` of its shape and `w_down[E, F, D]`,
/// of `x`'s dtype, `D` the model dim.
fn check_experts(c: &Checker<'_>, model_dim: &Dim) -> Result<(), TypeError> {
    for i in 3..6 {
        c.same_dtype(i, 0)?;
        c.rank(i, 3)?;
    }
    let (gate, up, down) = (c.dims(3), c.dims(4), c.dims(5));
    let (experts, ffn_dim) = (&gate[0], &gate[2]);
    let gate_msg = "w_gate must be [E, D, F] with D the model dim";
    c.dim_eq(3, gate_msg, &gate[1], model_dim)?;
    let up_msg = "w_up must have w_gate's shape";
    c.dim_eq(4, up_msg, &up[0], experts)?;
    c.dim_eq(4, up_msg, &up[1], model_dim)?;
    c.dim_eq(4, up_msg, &up[2], ffn_dim)?;
    let down_msg = "w_down must be [E, F, D]";
    c.dim_eq(5, down_msg, &down[0], experts)?;
    c.dim_eq(5, down_msg, &down[1], ffn_dim)?;
    c.dim_eq(5, down_msg, &down[2], model_dim)
}

/// Operands 6 to 8: the shared expert `s_gate[D, Fs]`, `s_up` of its shape and
/// `s_down[Fs, D]`, of `x`'s dtype.
fn check_shared_expert(c: &Checker<'_>, model_dim: &Dim) -> Result<(), TypeError> {
    for i in 6..9 {
        c.same_dtype(i, 0)?;
        c.rank(i, 2)?;
    }
    let (gate, up, down) = (c.dims(6), c.dims(7), c.dims(8));
    let ffn_dim = &gate[1];
    c.dim_eq(6, "shared gate must be [D, Fs]", &gate[0], model_dim)?;
    let up_msg = "shared up must have the shared gate's shape";
    c.dim_eq(7, up_msg, &up[0], model_dim)?;
    c.dim_eq(7, up_msg, &up[1], ffn_dim)?;
    let down_msg = "shared down must be [Fs, D]";
    c.dim_eq(8, down_msg, &down[0], ffn_dim)?;
    c.dim_eq(8, down_msg, &down[1], model_dim)
}

/// `grouped_matmul`: float `x[T, K]`, integer `ids[T]` and `w[E, K, N]` of
/// `x`'s dtype → `[T, N]`.
pub(super) fn grouped_matmul(c: &Checker<'_>) -> Inferred {
    let dt = c.float(0)?;
    c.rank(0, 2)?;
    c.int(1)?;
    c.rank(1, 1)?;
    c.same_dtype(2, 0)?;
    c.rank(2, 3)?;
    let (x, ids, w) = (c.dims(0), c.dims(1), c.dims(2));
    c.dim_eq(1, "ids must have one entry per row of x", &ids[0], &x[0])?;
    c.dim_eq(2, "w must be [E, K, N] with K x's last dim", &w[1], &x[1])?;
    single(dt, [x[0].clone(), w[2].clone()].into_iter().collect())
}
