//! Sizes that depend on symbolic dims, evaluated when the dims are known.

use serde::{Deserialize, Serialize};

use super::BundleError;

/// An unsigned integer expression over symbolic dims: buffer sizes, uniform
/// values and workgroup counts that vary with the number of tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A constant.
    Const(u64),
    /// The run-time size of a symbolic dim.
    Dim(String),
    /// The product of the terms.
    Mul(Vec<Expr>),
    /// The sum of the terms.
    Add(Vec<Expr>),
    /// `ceil(a / b)` with a constant, non-zero `b`.
    CeilDiv(Box<Expr>, u64),
}

impl Expr {
    /// Evaluates with `lookup` giving each symbolic dim's size; overflow and
    /// unknown dims are errors.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<u64>) -> Result<u64, BundleError> {
        match self {
            Expr::Const(c) => Ok(*c),
            Expr::Dim(d) => {
                lookup(d).ok_or_else(|| BundleError::Expr(format!("unknown dim `{d}`")))
            }
            Expr::Mul(terms) => terms.iter().try_fold(1u64, |acc, t| {
                acc.checked_mul(t.eval(lookup)?)
                    .ok_or_else(|| BundleError::Expr("size overflows 64 bits".into()))
            }),
            Expr::Add(terms) => terms.iter().try_fold(0u64, |acc, t| {
                acc.checked_add(t.eval(lookup)?)
                    .ok_or_else(|| BundleError::Expr("size overflows 64 bits".into()))
            }),
            Expr::CeilDiv(a, b) => {
                if *b == 0 {
                    return Err(BundleError::Expr("division by zero".into()));
                }
                Ok(a.eval(lookup)?.div_ceil(*b))
            }
        }
    }

    /// The dims the expression reads.
    pub fn dims(&self) -> Vec<&str> {
        match self {
            Expr::Const(_) => Vec::new(),
            Expr::Dim(d) => vec![d.as_str()],
            Expr::Mul(t) | Expr::Add(t) => t.iter().flat_map(Expr::dims).collect(),
            Expr::CeilDiv(a, _) => a.dims(),
        }
    }
}
