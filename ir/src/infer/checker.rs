//! The checks the typing rules are written in: one op's operand types, with
//! assertions on their dtypes, ranks and dims that build the [`TypeError`]
//! naming the op and the operand at fault.

use std::fmt;

use super::TypeError;
use crate::shape::{Dim, TensorType};
use seam_core::DType;

/// The operand types of one instruction, checked on behalf of its op.
pub(super) struct Checker<'a> {
    /// The op's name, for errors.
    pub(super) op: &'static str,
    /// The operand types.
    pub(super) operands: &'a [&'a TensorType],
}

impl<'a> Checker<'a> {
    /// The type of operand `i`.
    pub(super) fn ty(&self, i: usize) -> &'a TensorType {
        self.operands[i]
    }

    /// The dims of operand `i`.
    pub(super) fn dims(&self, i: usize) -> &'a [Dim] {
        self.operands[i].shape.dims()
    }

    /// The dtype of operand `i`, which must be a float.
    pub(super) fn float(&self, i: usize) -> Result<DType, TypeError> {
        self.dtype_where(i, DType::is_float, "a float tensor")
    }

    /// The dtype of operand `i`, which must be an integer.
    pub(super) fn int(&self, i: usize) -> Result<DType, TypeError> {
        self.dtype_where(i, DType::is_int, "an integer tensor (i32 or u32)")
    }

    /// The dtype of operand `i`, which must be `ok`, described as `expected`.
    fn dtype_where(
        &self,
        i: usize,
        ok: fn(DType) -> bool,
        expected: &str,
    ) -> Result<DType, TypeError> {
        let d = self.ty(i).dtype;
        if ok(d) {
            Ok(d)
        } else {
            Err(self.dtype_err(i, expected))
        }
    }

    /// Operand `i` must have operand `j`'s dtype.
    pub(super) fn same_dtype(&self, i: usize, j: usize) -> Result<(), TypeError> {
        if self.ty(i).dtype == self.ty(j).dtype {
            Ok(())
        } else {
            Err(self.dtype_err(i, &format!("{} like operand {j}", self.ty(j).dtype)))
        }
    }

    /// Operand `i` does not have the `expected` dtype.
    pub(super) fn dtype_err(&self, i: usize, expected: &str) -> TypeError {
        TypeError::DType {
            op: self.op,
            operand: i,
            expected: expected.to_string(),
            found: self.ty(i).dtype,
        }
    }

    /// Operand `i` must have rank `rank`.
    pub(super) fn rank(&self, i: usize, rank: usize) -> Result<(), TypeError> {
        self.rank_where(i, |r| r == rank, &format!("rank {rank}"))
    }

    /// Operand `i` must have rank `min` or more.
    pub(super) fn min_rank(&self, i: usize, min: usize) -> Result<(), TypeError> {
        self.rank_where(i, |r| r >= min, &format!("rank {min} or more"))
    }

    /// Operand `i`'s rank must be `ok`, described as `expected`.
    fn rank_where(
        &self,
        i: usize,
        ok: impl Fn(usize) -> bool,
        expected: &str,
    ) -> Result<(), TypeError> {
        if ok(self.ty(i).rank()) {
            Ok(())
        } else {
            Err(self.rank_err(i, expected))
        }
    }

    /// Operand `i` does not have the `expected` rank.
    pub(super) fn rank_err(&self, i: usize, expected: &str) -> TypeError {
        TypeError::Rank {
            op: self.op,
            operand: i,
            expected: expected.to_string(),
            found: self.ty(i).rank(),
        }
    }

    /// Dims `a` (of `operand`) and `b` must be equal; `what` says why.
    pub(super) fn dim_eq(
        &self,
        operand: usize,
        what: &str,
        a: &Dim,
        b: &Dim,
    ) -> Result<(), TypeError> {
        if a == b {
            Ok(())
        } else {
            Err(self.shape_err(Some(operand), format!("{what}: {a} vs {b}")))
        }
    }

    /// Operand `i`, named `name`, must have operand `j`'s shape, which
    /// `owner` (a possessive: "w_gate's") names.
    pub(super) fn same_shape(
        &self,
        i: usize,
        j: usize,
        name: &str,
        owner: &str,
    ) -> Result<(), TypeError> {
        let (shape, expected) = (&self.ty(i).shape, &self.ty(j).shape);
        if shape == expected {
            Ok(())
        } else {
            Err(self.shape_err(
                Some(i),
                format!("{name} {shape} must have {owner} shape {expected}"),
            ))
        }
    }

    /// The size of `dim` (of `operand`), which must be static; `what` names it.
    pub(super) fn static_dim(
        &self,
        operand: usize,
        what: &str,
        dim: &Dim,
    ) -> Result<u64, TypeError> {
        dim.as_static().ok_or_else(|| {
            self.shape_err(Some(operand), format!("{what} must be static, found {dim}"))
        })
    }

    /// The attribute `axis` must name a dim of a tensor of rank `rank`.
    pub(super) fn axis_in_range(&self, axis: usize, rank: usize) -> Result<(), TypeError> {
        if axis < rank {
            Ok(())
        } else {
            Err(self.attr_err(format!("axis {axis} is out of range for rank {rank}")))
        }
    }

    /// Operand `i` must be an i32 vector with one entry per token, `tokens`
    /// long; `what` names its entries (`slots`, `positions`).
    pub(super) fn token_indices(
        &self,
        i: usize,
        what: &str,
        tokens: &Dim,
    ) -> Result<(), TypeError> {
        if self.ty(i).dtype != DType::I32 {
            return Err(self.dtype_err(i, &format!("i32 {what} (one per token)")));
        }
        self.rank_where(i, |r| r == 1, &format!("rank 1 ({what}, one per token)"))?;
        self.dim_eq(
            i,
            &format!("{what} must have one entry per token"),
            &self.dims(i)[0],
            tokens,
        )
    }

    /// The operand shapes (or `operand`'s) do not fit: `detail`.
    pub(super) fn shape_err(&self, operand: Option<usize>, detail: String) -> TypeError {
        TypeError::Shape {
            op: self.op,
            operand,
            detail,
        }
    }

    /// An attribute does not fit the operands: `detail`.
    pub(super) fn attr_err(&self, detail: impl fmt::Display) -> TypeError {
        TypeError::Attr {
            op: self.op,
            detail: detail.to_string(),
        }
    }
}
