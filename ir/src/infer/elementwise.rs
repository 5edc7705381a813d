//! Typing rules of the element-wise ops: unary and binary functions and
//! `fused` expressions, whose operands broadcast to the result shape.

use super::{broadcast, single, Checker, Inferred};
use crate::fused::FusedExpr;
use crate::op::UnaryFn;

/// `fused`: float operands of one dtype that broadcast together, each read by
/// the expression, which reads no others.
pub(super) fn fused(c: &Checker<'_>, expr: &FusedExpr) -> Inferred {
    let count = c.operands.len();
    let dt = c.float(0)?;
    let mut shape = c.ty(0).shape.clone();
    for i in 1..count {
        c.same_dtype(i, 0)?;
        shape = broadcast(&shape, &c.ty(i).shape).ok_or_else(|| {
            c.shape_err(
                Some(i),
                format!("{} does not broadcast with {shape}", c.ty(i).shape),
            )
        })?;
    }
    if expr.operand_count() > count {
        return Err(c.attr_err(format!(
            "`{expr}` reads ${} but there are {count} operand(s)",
            expr.operand_count() - 1,
        )));
    }
    if let Some(unused) = (0..count).find(|&i| !expr.uses(i)) {
        return Err(c.attr_err(format!("`{expr}` never reads operand ${unused}")));
    }
    single(dt, shape)
}

/// A binary function: two operands of one dtype that broadcast together.
pub(super) fn binary(c: &Checker<'_>) -> Inferred {
    c.same_dtype(1, 0)?;
    let shape = broadcast(&c.ty(0).shape, &c.ty(1).shape).ok_or_else(|| {
        c.shape_err(
            Some(1),
            format!("{} and {} do not broadcast", c.ty(0).shape, c.ty(1).shape),
        )
    })?;
    single(c.ty(0).dtype, shape)
}

/// A unary function: the operand's type, which must be a float unless the
/// function also takes integers.
pub(super) fn unary(c: &Checker<'_>, f: UnaryFn) -> Inferred {
    let dt = if f.takes_integers() {
        c.ty(0).dtype
    } else {
        c.float(0)?
    };
    single(dt, c.ty(0).shape.clone())
}
