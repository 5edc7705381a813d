//! Typing rules of the data-movement ops: `transpose`, `concat`, `slice`,
//! `gather`, `write_tail` and `write_rows`, which move elements without computing on them.

use super::{single, Checker, Inferred};
use crate::shape::{Dim, Shape};

/// `transpose`: `perm` must permute the operand's dims; result dim `i` is dim `perm[i]`.
pub(super) fn transpose(c: &Checker<'_>, perm: &[usize]) -> Inferred {
    let d = c.dims(0);
    let mut seen = vec![false; d.len()];
    let valid = perm.len() == d.len()
        && perm
            .iter()
            .all(|&p| p < d.len() && !std::mem::replace(&mut seen[p], true));
    if !valid {
        return Err(c.attr_err(format!(
            "perm {perm:?} is not a permutation of 0..{}",
            d.len()
        )));
    }
    single(
        c.ty(0).dtype,
        Shape(perm.iter().map(|&p| d[p].clone()).collect()),
    )
}

/// `concat`: operands of one dtype and rank, equal but along `axis`, where
/// their static sizes add up.
pub(super) fn concat(c: &Checker<'_>, axis: usize) -> Inferred {
    let rank = c.ty(0).rank();
    c.axis_in_range(axis, rank)?;
    let mut total = 0u64;
    for i in 0..c.operands.len() {
        c.same_dtype(i, 0)?;
        c.rank(i, rank)?;
        for (j, (x, y)) in c.dims(i).iter().zip(c.dims(0)).enumerate() {
            if j != axis {
                c.dim_eq(i, &format!("dim {j} differs"), x, y)?;
            }
        }
        total += c.static_dim(i, &format!("concat axis {axis}"), &c.dims(i)[axis])?;
    }
    let mut out = c.dims(0).to_vec();
    out[axis] = Dim::Static(total);
    single(c.ty(0).dtype, Shape(out))
}

/// `slice`: `start..end` must be a non-empty range inside the static `axis`.
pub(super) fn slice(c: &Checker<'_>, axis: usize, start: u64, end: u64) -> Inferred {
    let d = c.dims(0);
    c.axis_in_range(axis, d.len())?;
    let n = c.static_dim(0, &format!("slice axis {axis}"), &d[axis])?;
    if start >= end || end > n {
        return Err(c.attr_err(format!("slice {start}..{end} is empty or outside 0..{n}")));
    }
    let mut out = d.to_vec();
    out[axis] = Dim::Static(end - start);
    single(c.ty(0).dtype, Shape(out))
}

/// `gather`: rows of a rank-2 table picked by integer ids; the result is the
/// ids' shape with the row dim appended.
pub(super) fn gather(c: &Checker<'_>) -> Inferred {
    c.rank(0, 2)?;
    c.int(1)?;
    let mut out = c.dims(1).to_vec();
    out.push(c.dims(0)[1].clone());
    single(c.ty(0).dtype, Shape(out))
}

/// `write_tail`: new rows of the buffer's dtype and rank, equal to it past the
/// first dim; the result is the buffer's type.
pub(super) fn write_tail(c: &Checker<'_>) -> Inferred {
    c.same_dtype(1, 0)?;
    let (buf, new) = (c.dims(0), c.dims(1));
    if buf.is_empty() {
        return Err(c.shape_err(Some(0), "the buffer must have rank 1 or more".into()));
    }
    c.rank(1, buf.len())?;
    for (j, (x, y)) in new.iter().zip(buf).enumerate().skip(1) {
        c.dim_eq(1, &format!("dim {j} differs from the buffer's"), x, y)?;
    }
    single(c.ty(0).dtype, c.ty(0).shape.clone())
}

/// `write_rows`: a float pool `buf[S, L, ...]`, i32 `slot[T]` and `pos[T]`,
/// and new rows `new[T, ...]` of the pool's dtype and trailing dims; the result
/// is the pool's type.
pub(super) fn write_rows(c: &Checker<'_>) -> Inferred {
    c.float(0)?;
    c.min_rank(0, 2)?;
    c.same_dtype(3, 0)?;
    let (buf, new) = (c.dims(0), c.dims(3));
    c.rank(3, buf.len() - 1)?;
    let tokens = &new[0];
    c.token_indices(1, "slots", tokens)?;
    c.token_indices(2, "positions", tokens)?;
    for (j, (x, y)) in new.iter().zip(&buf[1..]).enumerate().skip(1) {
        let what = format!(
            "dim {j} of the new rows differs from dim {} of the pool",
            j + 1
        );
        c.dim_eq(3, &what, x, y)?;
    }
    single(c.ty(0).dtype, c.ty(0).shape.clone())
}
