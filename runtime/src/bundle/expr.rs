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
    /// `a - b`, or 0 when `b > a` (an offset such as `kv_len - tokens`, which
    /// runs never make negative; at the dims' bounds it may be, and is then no
    /// larger than `a`, which is what validation checks).
    Sub(Box<Expr>, Box<Expr>),
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
            Expr::Sub(a, b) => Ok(a.eval(lookup)?.saturating_sub(b.eval(lookup)?)),
        }
    }

    /// The dims the expression reads.
    pub fn dims(&self) -> Vec<&str> {
        match self {
            Expr::Const(_) => Vec::new(),
            Expr::Dim(d) => vec![d.as_str()],
            Expr::Mul(t) | Expr::Add(t) => t.iter().flat_map(Expr::dims).collect(),
            Expr::CeilDiv(a, _) => a.dims(),
            Expr::Sub(a, b) => a.dims().into_iter().chain(b.dims()).collect(),
        }
    }
}

impl Expr {
    /// The product of `terms` with constants folded (`Const(1)` for none).
    pub fn product(terms: impl IntoIterator<Item = Expr>) -> Expr {
        let mut constant = 1u64;
        let mut rest = Vec::new();
        for t in terms {
            match t {
                Expr::Const(c) => constant = constant.saturating_mul(c),
                Expr::Mul(inner) => match Expr::product(inner) {
                    Expr::Const(c) => constant = constant.saturating_mul(c),
                    Expr::Mul(v) => rest.extend(v),
                    other => rest.push(other),
                },
                other => rest.push(other),
            }
        }
        if constant == 0 || rest.is_empty() {
            return Expr::Const(constant);
        }
        if constant != 1 {
            rest.insert(0, Expr::Const(constant));
        }
        if rest.len() == 1 {
            rest.pop().unwrap_or(Expr::Const(1))
        } else {
            Expr::Mul(rest)
        }
    }

    /// The sum of `terms` with constants folded.
    pub fn sum(terms: impl IntoIterator<Item = Expr>) -> Expr {
        let mut constant = 0u64;
        let mut rest = Vec::new();
        for t in terms {
            match t {
                Expr::Const(c) => constant = constant.saturating_add(c),
                other => rest.push(other),
            }
        }
        if rest.is_empty() {
            return Expr::Const(constant);
        }
        if constant != 0 {
            rest.push(Expr::Const(constant));
        }
        if rest.len() == 1 {
            rest.pop().unwrap_or(Expr::Const(0))
        } else {
            Expr::Add(rest)
        }
    }

    /// `self - other`, folded when both are constant or equal.
    pub fn minus(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::Const(a), Expr::Const(b)) if a >= b => Expr::Const(a - b),
            (a, b) if a == b => Expr::Const(0),
            (a, Expr::Const(0)) => a,
            (a, b) => Expr::Sub(Box::new(a), Box::new(b)),
        }
    }

    /// `ceil(self / d)`, folded when constant.
    pub fn ceil_div(self, d: u64) -> Expr {
        match self {
            Expr::Const(c) if d > 0 => Expr::Const(c.div_ceil(d)),
            e if d == 1 => e,
            e => Expr::CeilDiv(Box::new(e), d),
        }
    }

    /// The value, if constant.
    pub fn as_const(&self) -> Option<u64> {
        match self {
            Expr::Const(c) => Some(*c),
            _ => None,
        }
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, terms: &[Expr], sep: &str| {
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
            Expr::Const(c) => write!(f, "{c}"),
            Expr::Dim(d) => f.write_str(d),
            Expr::Mul(t) => join(f, t, "·"),
            Expr::Add(t) => join(f, t, " + "),
            Expr::CeilDiv(a, b) => write!(f, "ceil({a}/{b})"),
            Expr::Sub(a, b) => write!(f, "({a} - {b})"),
        }
    }
}
