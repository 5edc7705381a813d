//! Sizes that depend on symbolic dims, evaluated when the dims are known.
//!
//! The compiler writes buffer sizes, uniform values and workgroup counts as
//! [`SizeExpr`]s over the model's symbolic dims (`tokens`, `kv_len`); the bundle
//! stores them and the runtime evaluates them once the dims are bound.

use serde::{Deserialize, Serialize};

use thiserror::Error;

/// Why a [`SizeExpr`] could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizeExprError {
    /// The expression reads a dim that has no value.
    #[error("unknown dim `{0}`")]
    UnknownDim(String),
    /// An intermediate value does not fit 64 bits.
    #[error("size overflows 64 bits")]
    Overflow,
    /// A `ceil_div` by zero.
    #[error("division by zero")]
    DivisionByZero,
}

/// An unsigned integer expression over symbolic dims: buffer sizes, uniform
/// values and workgroup counts that vary with the number of tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeExpr {
    /// A constant.
    Const(u64),
    /// The run-time size of a symbolic dim.
    Dim(String),
    /// The product of the terms.
    Mul(Vec<SizeExpr>),
    /// The sum of the terms.
    Add(Vec<SizeExpr>),
    /// `ceil(a / b)` with a constant, non-zero `b`.
    CeilDiv(Box<SizeExpr>, u64),
    /// `a - b`, or 0 when `b > a` (an offset such as `kv_len - tokens`, which
    /// runs never make negative; at the dims' bounds it may be, and is then no
    /// larger than `a`, which is what validation checks).
    Sub(Box<SizeExpr>, Box<SizeExpr>),
}

impl SizeExpr {
    /// Evaluates with `lookup` giving each symbolic dim's size; overflow and
    /// unknown dims are errors.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<u64>) -> Result<u64, SizeExprError> {
        match self {
            SizeExpr::Const(c) => Ok(*c),
            SizeExpr::Dim(d) => lookup(d).ok_or_else(|| SizeExprError::UnknownDim(d.clone())),
            SizeExpr::Mul(terms) => terms.iter().try_fold(1u64, |acc, t| {
                acc.checked_mul(t.eval(lookup)?)
                    .ok_or(SizeExprError::Overflow)
            }),
            SizeExpr::Add(terms) => terms.iter().try_fold(0u64, |acc, t| {
                acc.checked_add(t.eval(lookup)?)
                    .ok_or(SizeExprError::Overflow)
            }),
            SizeExpr::CeilDiv(a, b) => {
                if *b == 0 {
                    return Err(SizeExprError::DivisionByZero);
                }
                Ok(a.eval(lookup)?.div_ceil(*b))
            }
            SizeExpr::Sub(a, b) => Ok(a.eval(lookup)?.saturating_sub(b.eval(lookup)?)),
        }
    }

    /// The dims the expression reads.
    pub fn dims(&self) -> Vec<&str> {
        match self {
            SizeExpr::Const(_) => Vec::new(),
            SizeExpr::Dim(d) => vec![d.as_str()],
            SizeExpr::Mul(t) | SizeExpr::Add(t) => t.iter().flat_map(SizeExpr::dims).collect(),
            SizeExpr::CeilDiv(a, _) => a.dims(),
            SizeExpr::Sub(a, b) => a.dims().into_iter().chain(b.dims()).collect(),
        }
    }
}

impl SizeExpr {
    /// The product of `terms` with constants folded (`Const(1)` for none).
    pub fn product(terms: impl IntoIterator<Item = SizeExpr>) -> SizeExpr {
        let mut constant = 1u64;
        let mut rest = Vec::new();
        for t in terms {
            match t {
                SizeExpr::Const(c) => constant = constant.saturating_mul(c),
                SizeExpr::Mul(inner) => match SizeExpr::product(inner) {
                    SizeExpr::Const(c) => constant = constant.saturating_mul(c),
                    SizeExpr::Mul(v) => rest.extend(v),
                    other => rest.push(other),
                },
                other => rest.push(other),
            }
        }
        if constant == 0 || rest.is_empty() {
            return SizeExpr::Const(constant);
        }
        if constant != 1 {
            rest.insert(0, SizeExpr::Const(constant));
        }
        if rest.len() == 1 {
            rest.pop().unwrap_or(SizeExpr::Const(1))
        } else {
            SizeExpr::Mul(rest)
        }
    }

    /// The sum of `terms` with constants folded.
    pub fn sum(terms: impl IntoIterator<Item = SizeExpr>) -> SizeExpr {
        let mut constant = 0u64;
        let mut rest = Vec::new();
        for t in terms {
            match t {
                SizeExpr::Const(c) => constant = constant.saturating_add(c),
                other => rest.push(other),
            }
        }
        if rest.is_empty() {
            return SizeExpr::Const(constant);
        }
        if constant != 0 {
            rest.push(SizeExpr::Const(constant));
        }
        if rest.len() == 1 {
            rest.pop().unwrap_or(SizeExpr::Const(0))
        } else {
            SizeExpr::Add(rest)
        }
    }

    /// `self - other`, folded when both are constant or equal.
    pub fn minus(self, other: SizeExpr) -> SizeExpr {
        match (self, other) {
            (SizeExpr::Const(a), SizeExpr::Const(b)) if a >= b => SizeExpr::Const(a - b),
            (a, b) if a == b => SizeExpr::Const(0),
            (a, SizeExpr::Const(0)) => a,
            (a, b) => SizeExpr::Sub(Box::new(a), Box::new(b)),
        }
    }

    /// `ceil(self / d)`, folded when constant.
    pub fn ceil_div(self, d: u64) -> SizeExpr {
        match self {
            SizeExpr::Const(c) if d > 0 => SizeExpr::Const(c.div_ceil(d)),
            e if d == 1 => e,
            e => SizeExpr::CeilDiv(Box::new(e), d),
        }
    }

    /// The value, if constant.
    pub fn as_const(&self) -> Option<u64> {
        match self {
            SizeExpr::Const(c) => Some(*c),
            _ => None,
        }
    }
}

impl std::fmt::Display for SizeExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, terms: &[SizeExpr], sep: &str| {
            f.write_str("(")?;
            for (i, t) in terms.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{t}")?;
            }
            f.write_str(")")
        };
        match self {
            SizeExpr::Const(c) => write!(f, "{c}"),
            SizeExpr::Dim(d) => f.write_str(d),
            SizeExpr::Mul(t) => join(f, t, "·"),
            SizeExpr::Add(t) => join(f, t, " + "),
            SizeExpr::CeilDiv(a, b) => write!(f, "ceil({a}/{b})"),
            SizeExpr::Sub(a, b) => write!(f, "({a} - {b})"),
        }
    }
}
