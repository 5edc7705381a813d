//! Rebuilding an op from its name and attributes, as the parser reads them.

use thiserror::Error;

use super::{op_names, AttrValue, BinaryFn, GatedAct, Op, ReduceOp, RouteMode, UnaryFn};
use crate::fused::FusedExpr;

/// Why an op could not be built from a name and attributes.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OpError {
    /// No op has this name.
    #[error("unknown op `{0}`")]
    UnknownOp(String),
    /// The op has no attribute of this name.
    #[error("op `{op}` has no attribute `{attr}` (it takes: {expected})")]
    UnknownAttr {
        /// The op.
        op: &'static str,
        /// The attribute given.
        attr: String,
        /// The attributes it takes.
        expected: String,
    },
    /// A required attribute was not given.
    #[error("op `{op}` needs attribute `{attr}`")]
    MissingAttr {
        /// The op.
        op: &'static str,
        /// The missing attribute.
        attr: &'static str,
    },
    /// The attribute was given twice.
    #[error("attribute `{attr}` given twice")]
    DuplicateAttr {
        /// The attribute.
        attr: String,
    },
    /// The attribute value has the wrong kind or is out of range.
    #[error("attribute `{attr}` of `{op}` must be {expected}, found `{found}`")]
    BadAttr {
        /// The op.
        op: &'static str,
        /// The attribute.
        attr: &'static str,
        /// What it must be.
        expected: String,
        /// What was given.
        found: String,
    },
}

impl Op {
    /// Builds an op from its name and attributes (as the parser reads them).
    /// Attributes with defaults may be omitted.
    pub fn from_parts(name: &str, attrs: &[(String, AttrValue)]) -> Result<Op, OpError> {
        let op_name: &'static str = op_names()
            .into_iter()
            .find(|n| *n == name)
            .ok_or_else(|| OpError::UnknownOp(name.to_string()))?;
        let mut a = AttrReader::new(op_name, attrs)?;
        if let Some(op) = elementwise(op_name, &mut a)? {
            a.finish()?;
            return Ok(op);
        }
        let op = match op_name {
            "const" => Op::Const {
                value: a.float("value", None)?,
            },
            "iota" => Op::Iota {
                axis: a.uint("axis", Some(0))? as usize,
            },
            "matmul" => Op::MatMul,
            "gated_matmul" => Op::GatedMatMul {
                act: a.gated_act()?,
            },
            "matmul_add" => Op::MatMulAdd,
            "grouped_matmul" => Op::GroupedMatMul,
            "fused" => {
                let text = a.string("expr")?;
                let expr = FusedExpr::parse(&text).map_err(|e| {
                    a.bad(
                        "expr",
                        &format!("a fused expression ({e})"),
                        &AttrValue::Str(text.clone()),
                    )
                })?;
                Op::Fused { expr }
            }
            "cast" => Op::Cast,
            "rms_norm" => Op::RmsNorm {
                eps: a.float("eps", Some(1e-5))? as f32,
            },
            "layer_norm" => Op::LayerNorm {
                eps: a.float("eps", Some(1e-5))? as f32,
            },
            "softmax" => Op::Softmax,
            "reduce_sum" => Op::ReduceSum,
            "reshape" => Op::Reshape,
            "transpose" => Op::Transpose {
                perm: a.uints("perm")?,
            },
            "concat" => Op::Concat {
                axis: a.uint("axis", None)? as usize,
            },
            "slice" => Op::Slice {
                axis: a.uint("axis", None)? as usize,
                start: a.uint("start", None)?,
                end: a.uint("end", None)?,
            },
            "tail" => Op::Tail,
            "write_tail" => Op::WriteTail,
            "write_rows" => Op::WriteRows,
            "gather" => Op::Gather,
            "rope" => Op::Rope {
                theta: a.float("theta", Some(10000.0))? as f32,
            },
            "attention" => Op::Attention {
                causal: a.bool("causal", Some(true))?,
                scale: a.opt_float("scale")?.map(|s| s as f32),
            },
            "pooled_attention" => Op::PooledAttention {
                scale: a.opt_float("scale")?.map(|s| s as f32),
            },
            "topk" => Op::TopK {
                k: a.uint("k", None)? as usize,
            },
            "route" => Op::Route {
                k: a.uint("k", None)? as usize,
                mode: a.ident("mode", &RouteMode::ALL.map(|m| (m.name(), m)), None)?,
                renorm: a.bool("renorm", Some(false))?,
            },
            "moe" => Op::Moe {
                act: a.gated_act()?,
            },
            "all_reduce" => Op::AllReduce {
                reduce: a.ident("reduce", &[("sum", ReduceOp::Sum)], Some(ReduceOp::Sum))?,
            },
            "all_reduce_start" => Op::AllReduceStart {
                reduce: a.ident("reduce", &[("sum", ReduceOp::Sum)], Some(ReduceOp::Sum))?,
            },
            "all_reduce_wait" => Op::AllReduceWait,
            "cache" => Op::Cache {
                key: a.string("key")?,
                refresh: {
                    let r = a.uint("refresh", Some(1))?;
                    u32::try_from(r).map_err(|_| {
                        a.bad(
                            "refresh",
                            "an integer below 2^32",
                            &AttrValue::Int(r as i64),
                        )
                    })?
                },
            },
            _ => return Err(OpError::UnknownOp(name.to_string())),
        };
        a.finish()?;
        Ok(op)
    }
}

/// The element-wise op named `name`, if it is one: a binary function by its
/// name, or the unary function of that op name that the op's attribute picks
/// (the first in table order when the attribute is omitted).
fn elementwise(name: &'static str, a: &mut AttrReader<'_>) -> Result<Option<Op>, OpError> {
    if let Some(f) = BinaryFn::from_name(name) {
        return Ok(Some(Op::Binary(f)));
    }
    let fns: Vec<UnaryFn> = UnaryFn::ALL
        .iter()
        .copied()
        .filter(|f| f.op_name() == name)
        .collect();
    let Some(&first) = fns.first() else {
        return Ok(None);
    };
    let Some((attr, _)) = first.op_attr() else {
        return Ok(Some(Op::Unary(first)));
    };
    let cases: Vec<(&'static str, UnaryFn)> = fns
        .iter()
        .filter_map(|&f| f.op_attr().map(|(_, value)| (value, f)))
        .collect();
    Ok(Some(Op::Unary(a.ident(attr, &cases, Some(first))?)))
}

/// Reads attributes by name for [`Op::from_parts`], tracking which were used.
struct AttrReader<'a> {
    op: &'static str,
    attrs: &'a [(String, AttrValue)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'a> AttrReader<'a> {
    fn new(op: &'static str, attrs: &'a [(String, AttrValue)]) -> Result<Self, OpError> {
        for (i, (name, _)) in attrs.iter().enumerate() {
            if attrs[..i].iter().any(|(n, _)| n == name) {
                return Err(OpError::DuplicateAttr { attr: name.clone() });
            }
        }
        Ok(AttrReader {
            op,
            attrs,
            used: vec![false; attrs.len()],
            known: Vec::new(),
        })
    }

    fn take(&mut self, name: &'static str) -> Option<&'a AttrValue> {
        self.known.push(name);
        let i = self.attrs.iter().position(|(n, _)| n == name)?;
        self.used[i] = true;
        Some(&self.attrs[i].1)
    }

    fn bad(&self, attr: &'static str, expected: &str, found: &AttrValue) -> OpError {
        OpError::BadAttr {
            op: self.op,
            attr,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn missing(&self, attr: &'static str) -> OpError {
        OpError::MissingAttr { op: self.op, attr }
    }

    fn float(&mut self, name: &'static str, default: Option<f64>) -> Result<f64, OpError> {
        match self.opt_float(name)? {
            Some(v) => Ok(v),
            None => default.ok_or_else(|| self.missing(name)),
        }
    }

    fn opt_float(&mut self, name: &'static str) -> Result<Option<f64>, OpError> {
        match self.take(name) {
            None => Ok(None),
            Some(AttrValue::Float(v)) => Ok(Some(*v)),
            Some(AttrValue::Int(v)) => Ok(Some(*v as f64)),
            Some(other) => Err(self.bad(name, "a number", other)),
        }
    }

    fn uint(&mut self, name: &'static str, default: Option<u64>) -> Result<u64, OpError> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(AttrValue::Int(v)) if *v >= 0 => Ok(*v as u64),
            Some(other) => Err(self.bad(name, "a non-negative integer", other)),
        }
    }

    fn uints(&mut self, name: &'static str) -> Result<Vec<usize>, OpError> {
        match self.take(name) {
            None => Err(self.missing(name)),
            Some(AttrValue::Ints(v)) if v.iter().all(|x| *x >= 0) => {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            Some(other) => Err(self.bad(name, "a list of non-negative integers", other)),
        }
    }

    fn bool(&mut self, name: &'static str, default: Option<bool>) -> Result<bool, OpError> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(AttrValue::Bool(v)) => Ok(*v),
            Some(other) => Err(self.bad(name, "`true` or `false`", other)),
        }
    }

    fn string(&mut self, name: &'static str) -> Result<String, OpError> {
        match self.take(name) {
            None => Err(self.missing(name)),
            Some(AttrValue::Str(v)) => Ok(v.clone()),
            Some(other) => Err(self.bad(name, "a quoted string", other)),
        }
    }

    fn ident<T: Copy>(
        &mut self,
        name: &'static str,
        cases: &[(&'static str, T)],
        default: Option<T>,
    ) -> Result<T, OpError> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(AttrValue::Ident(v)) => match cases.iter().find(|(n, _)| n == v) {
                Some((_, c)) => Ok(*c),
                None => {
                    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
                    Err(self.bad(
                        name,
                        &format!("one of {}", names.join(", ")),
                        &AttrValue::Ident(v.clone()),
                    ))
                }
            },
            Some(other) => Err(self.bad(name, "an identifier", other)),
        }
    }

    /// The `act` attribute of `moe` and `gated_matmul` (default `swiglu`).
    fn gated_act(&mut self) -> Result<GatedAct, OpError> {
        self.ident(
            "act",
            &GatedAct::ALL.map(|a| (a.name(), a)),
            Some(GatedAct::SwiGlu),
        )
    }

    fn finish(self) -> Result<(), OpError> {
        for (i, (name, _)) in self.attrs.iter().enumerate() {
            if !self.used[i] {
                return Err(OpError::UnknownAttr {
                    op: self.op,
                    attr: name.clone(),
                    expected: if self.known.is_empty() {
                        "no attributes".into()
                    } else {
                        self.known.join(", ")
                    },
                });
            }
        }
        Ok(())
    }
}
