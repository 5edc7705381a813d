//! Typing rules of the ops whose result type is declared (`iota`, `cast`,
//! `reshape`, `tail`; `const` takes its declaration unchecked): the declared
//! type is the result once it is consistent with the attributes and operand.

use super::{Checker, Inferred, TypeError};
use crate::shape::TensorType;

/// `iota`: the axis must be a dim of the declared result.
pub(super) fn iota(c: &Checker<'_>, axis: usize, declared: &TensorType) -> Inferred {
    c.axis_in_range(axis, declared.rank())?;
    Ok(vec![declared.clone()])
}

/// `cast`: the declared result keeps the operand's shape (any dtype).
pub(super) fn cast(c: &Checker<'_>, declared: &TensorType) -> Inferred {
    if declared.shape != c.ty(0).shape {
        return Err(c.shape_err(
            Some(0),
            format!(
                "cast keeps the shape {} but {} is declared",
                c.ty(0).shape,
                declared.shape
            ),
        ));
    }
    Ok(vec![declared.clone()])
}

/// `reshape`: the declared result keeps the operand's dtype and element count.
pub(super) fn reshape(c: &Checker<'_>, declared: &TensorType) -> Inferred {
    let from = &c.ty(0).shape;
    let to = &declared.shape;
    same_dtype_as_declared(c, declared)?;
    if from.element_count_parts() != to.element_count_parts() {
        return Err(c.shape_err(
            Some(0),
            format!("cannot reshape {from} to {to}: element counts differ"),
        ));
    }
    Ok(vec![declared.clone()])
}

/// `tail`: the declared result keeps the operand's dtype and every dim but the first.
pub(super) fn tail(c: &Checker<'_>, declared: &TensorType) -> Inferred {
    let (from, to) = (c.dims(0), declared.shape.dims());
    same_dtype_as_declared(c, declared)?;
    if from.is_empty() || to.len() != from.len() || to[1..] != from[1..] {
        return Err(c.shape_err(
            Some(0),
            format!(
                "tail keeps every dim but the first: cannot take {} from {}",
                declared.shape,
                c.ty(0).shape
            ),
        ));
    }
    Ok(vec![declared.clone()])
}

/// The operand must have the declared result's dtype.
fn same_dtype_as_declared(c: &Checker<'_>, declared: &TensorType) -> Result<(), TypeError> {
    if declared.dtype != c.ty(0).dtype {
        return Err(c.dtype_err(0, &declared.dtype.to_string()));
    }
    Ok(())
}
