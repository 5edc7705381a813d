//! An op's attributes as the text format writes them.

use std::fmt;

use super::{Op, ReduceOp};

/// An attribute value as written in the text format.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// An integer: `k=2`.
    Int(i64),
    /// A float: `eps=0.00001`.
    Float(f64),
    /// A boolean: `causal=true`.
    Bool(bool),
    /// A bare identifier naming an enum case: `mode=softmax_topk`.
    Ident(String),
    /// A quoted string: `key="enc"`.
    Str(String),
    /// A list of integers: `perm=[1, 0, 2]`.
    Ints(Vec<i64>),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => write_float(f, *v),
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Ident(v) => f.write_str(v),
            AttrValue::Str(v) => write!(f, "{v:?}"),
            AttrValue::Ints(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Writes a float so that it reads back as a float with the same value
/// (always with a `.`, `e`, `inf` or `nan`, so it never parses as an integer).
fn write_float(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str("nan")
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        let s = format!("{v:?}");
        f.write_str(&s)
    }
}

/// The f64 written for an f32 attribute: the f64 nearest the shortest decimal
/// that reads back as `x` (so `eps=1e-5` prints as `1e-5`, not
/// `9.999999747378752e-6`), provided it converts back to exactly `x`;
/// otherwise `x` widened exactly.
fn f32_attr(x: f32) -> f64 {
    match format!("{x:?}").parse::<f64>() {
        Ok(d) if (d as f32).to_bits() == x.to_bits() => d,
        _ => f64::from(x),
    }
}

impl Op {
    /// The op's attributes, in the order the printer writes them.
    pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        use AttrValue as A;
        match self {
            Op::Const { value } => vec![("value", A::Float(*value))],
            Op::Iota { axis } => vec![("axis", A::Int(*axis as i64))],
            Op::Unary(f) => f
                .op_attr()
                .map(|(name, value)| vec![(name, A::Ident(value.into()))])
                .unwrap_or_default(),
            Op::RmsNorm { eps } | Op::LayerNorm { eps } => {
                vec![("eps", A::Float(f32_attr(*eps)))]
            }
            Op::Transpose { perm } => {
                vec![("perm", A::Ints(perm.iter().map(|&p| p as i64).collect()))]
            }
            Op::Concat { axis } => vec![("axis", A::Int(*axis as i64))],
            Op::Slice { axis, start, end } => vec![
                ("axis", A::Int(*axis as i64)),
                ("start", A::Int(*start as i64)),
                ("end", A::Int(*end as i64)),
            ],
            Op::Rope { theta } => vec![("theta", A::Float(f32_attr(*theta)))],
            Op::Attention { causal, scale } => std::iter::once(("causal", A::Bool(*causal)))
                .chain(scale_attr(*scale))
                .collect(),
            Op::PooledAttention { scale } => scale_attr(*scale).into_iter().collect(),
            Op::TopK { k } => vec![("k", A::Int(*k as i64))],
            Op::Route { k, mode, renorm } => vec![
                ("k", A::Int(*k as i64)),
                ("mode", A::Ident(mode.name().into())),
                ("renorm", A::Bool(*renorm)),
            ],
            Op::Moe { act } | Op::GatedMatMul { act } => vec![("act", A::Ident(act.name().into()))],
            Op::Fused { expr } => vec![("expr", A::Str(expr.to_string()))],
            Op::AllReduce { reduce } | Op::AllReduceStart { reduce } => vec![(
                "reduce",
                A::Ident(
                    match reduce {
                        ReduceOp::Sum => "sum",
                    }
                    .into(),
                ),
            )],
            Op::Cache { key, refresh } => vec![
                ("key", A::Str(key.clone())),
                ("refresh", A::Int(i64::from(*refresh))),
            ],
            _ => Vec::new(),
        }
    }
}

/// The optional `scale` attribute of the attention ops.
fn scale_attr(scale: Option<f32>) -> Option<(&'static str, AttrValue)> {
    scale.map(|s| ("scale", AttrValue::Float(f32_attr(s))))
}
