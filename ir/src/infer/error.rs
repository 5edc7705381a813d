//! The type error: why an instruction's operand, attribute or declared result
//! types do not check.

use thiserror::Error;

use crate::op::Arity;
use crate::shape::TensorType;
use seam_core::DType;

/// Why an instruction's types do not check.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TypeError {
    /// Wrong number of operands.
    #[error("`{op}` takes {expected} operand(s), found {found}")]
    OperandCount {
        /// The op.
        op: &'static str,
        /// What it takes.
        expected: Arity,
        /// What was given.
        found: usize,
    },
    /// Wrong number of results.
    #[error("`{op}` produces {expected} result(s), found {found}")]
    ResultCount {
        /// The op.
        op: &'static str,
        /// What it produces.
        expected: usize,
        /// What was declared.
        found: usize,
    },
    /// An operand has the wrong dtype.
    #[error("`{op}` operand {operand} must be {expected}, found {found}")]
    DType {
        /// The op.
        op: &'static str,
        /// Operand index.
        operand: usize,
        /// What it must be.
        expected: String,
        /// What it is.
        found: DType,
    },
    /// An operand has the wrong rank.
    #[error("`{op}` operand {operand} must have {expected}, found rank {found}")]
    Rank {
        /// The op.
        op: &'static str,
        /// Operand index.
        operand: usize,
        /// What it must have.
        expected: String,
        /// Its rank.
        found: usize,
    },
    /// Operand shapes do not fit together.
    #[error("shape mismatch in `{op}`: {detail}")]
    Shape {
        /// The op.
        op: &'static str,
        /// The operand at fault, if one is.
        operand: Option<usize>,
        /// What does not fit.
        detail: String,
    },
    /// An attribute does not fit the operands.
    #[error("bad attribute for `{op}`: {detail}")]
    Attr {
        /// The op.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The declared result type differs from the inferred one.
    #[error("result {index} of `{op}` is declared {declared} but `{op}` produces {inferred}")]
    ResultType {
        /// The op.
        op: &'static str,
        /// Result index.
        index: usize,
        /// The declared type.
        declared: TensorType,
        /// The inferred type.
        inferred: TensorType,
    },
}

impl TypeError {
    /// The operand the error points at, if any.
    pub fn operand(&self) -> Option<usize> {
        match self {
            TypeError::DType { operand, .. } | TypeError::Rank { operand, .. } => Some(*operand),
            TypeError::Shape { operand, .. } => *operand,
            _ => None,
        }
    }
}
