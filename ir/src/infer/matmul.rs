//! Typing rules of the matrix products: `matmul`, and the fused
//! `gated_matmul` and `matmul_add` whose weights are rank 2.

use super::{Checker, Inferred, TypeError};
use crate::shape::{Shape, TensorType};

/// `matmul`: `a[..., M, K] × b[K, N]` or a batched `b[..., K, N]` → `[..., M, N]`.
pub(super) fn matmul(c: &Checker<'_>) -> Inferred {
    Ok(vec![product(c, true)?])
}

/// `gated_matmul`: the product with `w_gate` (operand 1), and `w_up` (operand 2)
/// of `w_gate`'s dtype and shape.
pub(super) fn gated_matmul(c: &Checker<'_>) -> Inferred {
    let out = product(c, false)?;
    c.same_dtype(2, 0)?;
    c.rank(2, 2)?;
    c.same_shape(2, 1, "w_up", "w_gate's")?;
    Ok(vec![out])
}

/// `matmul_add`: the product plus an addend (operand 2) that is a bias over its
/// last dim or has the product's shape.
pub(super) fn matmul_add(c: &Checker<'_>) -> Inferred {
    let out = product(c, false)?;
    c.same_dtype(2, 0)?;
    let r = &c.ty(2).shape;
    let bias = r.dims() == &out.shape.dims()[out.rank() - 1..];
    if !bias && *r != out.shape {
        return Err(c.shape_err(
            Some(2),
            format!(
                "the addend {r} must be a bias [{}] or have the product's shape {}",
                out.shape.dims()[out.rank() - 1],
                out.shape
            ),
        ));
    }
    Ok(vec![out])
}

/// The type of the product of operands 0 and 1 (shared by `matmul` and, with
/// `batched_b` false as their weights must be rank 2, `gated_matmul` and `matmul_add`).
fn product(c: &Checker<'_>, batched_b: bool) -> Result<TensorType, TypeError> {
    let dt = c.float(0)?;
    c.same_dtype(1, 0)?;
    c.min_rank(0, 2)?;
    let (a, b) = (c.dims(0), c.dims(1));
    if b.len() != 2 && (!batched_b || b.len() != a.len()) {
        let expected = if batched_b {
            format!("rank 2 or rank {} (batched)", a.len())
        } else {
            "rank 2".to_string()
        };
        return Err(c.rank_err(1, &expected));
    }
    c.dim_eq(
        1,
        "contraction dims differ",
        &a[a.len() - 1],
        &b[b.len() - 2],
    )?;
    if b.len() > 2 {
        for (i, (x, y)) in a[..a.len() - 2].iter().zip(&b[..b.len() - 2]).enumerate() {
            c.dim_eq(1, &format!("batch dim {i} differs"), x, y)?;
        }
    }
    let mut out = a[..a.len() - 1].to_vec();
    out.push(b[b.len() - 1].clone());
    Ok(TensorType {
        dtype: dt,
        shape: Shape(out),
    })
}
