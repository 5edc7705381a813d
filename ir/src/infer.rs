//! Shape and dtype inference: the result types of one instruction from its
//! operand types, attributes and (for `const`, `iota`, `reshape`, `cast`) its
//! declared result types.

use std::fmt;

use thiserror::Error;

use crate::op::{Arity, Op, RouteMode};
use crate::shape::{Dim, Shape, TensorType};
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

struct Ctx<'a> {
    op: &'static str,
    operands: &'a [&'a TensorType],
}

impl<'a> Ctx<'a> {
    fn ty(&self, i: usize) -> &'a TensorType {
        self.operands[i]
    }

    fn dims(&self, i: usize) -> &'a [Dim] {
        self.operands[i].shape.dims()
    }

    fn float(&self, i: usize) -> Result<DType, TypeError> {
        let d = self.ty(i).dtype;
        if d.is_float() {
            Ok(d)
        } else {
            Err(self.dtype_err(i, "a float tensor"))
        }
    }

    fn int(&self, i: usize) -> Result<DType, TypeError> {
        let d = self.ty(i).dtype;
        if d.is_int() {
            Ok(d)
        } else {
            Err(self.dtype_err(i, "an integer tensor (i32 or u32)"))
        }
    }

    fn same_dtype(&self, i: usize, j: usize) -> Result<(), TypeError> {
        if self.ty(i).dtype == self.ty(j).dtype {
            Ok(())
        } else {
            Err(self.dtype_err(i, &format!("{} like operand {j}", self.ty(j).dtype)))
        }
    }

    fn dtype_err(&self, i: usize, expected: &str) -> TypeError {
        TypeError::DType {
            op: self.op,
            operand: i,
            expected: expected.to_string(),
            found: self.ty(i).dtype,
        }
    }

    fn rank(&self, i: usize, rank: usize) -> Result<(), TypeError> {
        self.rank_where(i, |r| r == rank, &format!("rank {rank}"))
    }

    fn rank_where(
        &self,
        i: usize,
        ok: impl Fn(usize) -> bool,
        expected: &str,
    ) -> Result<(), TypeError> {
        let r = self.ty(i).rank();
        if ok(r) {
            Ok(())
        } else {
            Err(TypeError::Rank {
                op: self.op,
                operand: i,
                expected: expected.to_string(),
                found: r,
            })
        }
    }

    fn dim_eq(&self, operand: usize, what: &str, a: &Dim, b: &Dim) -> Result<(), TypeError> {
        if a == b {
            Ok(())
        } else {
            Err(self.shape_err(Some(operand), format!("{what}: {a} vs {b}")))
        }
    }

    fn shape_err(&self, operand: Option<usize>, detail: String) -> TypeError {
        TypeError::Shape {
            op: self.op,
            operand,
            detail,
        }
    }

    fn attr_err(&self, detail: impl fmt::Display) -> TypeError {
        TypeError::Attr {
            op: self.op,
            detail: detail.to_string(),
        }
    }
}

/// Broadcasts two shapes numpy-style over trailing dims: equal dims, or a static 1.
pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let (a, b) = (a.dims(), b.dims());
    let rank = a.len().max(b.len());
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = (i + a.len()).checked_sub(rank).map(|j| &a[j]);
        let db = (i + b.len()).checked_sub(rank).map(|j| &b[j]);
        out.push(match (da, db) {
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (Some(x), Some(y)) if x == y => x.clone(),
            (Some(x), Some(y)) if x.is_one() => y.clone(),
            (Some(x), Some(y)) if y.is_one() => x.clone(),
            _ => return None,
        });
    }
    Some(Shape(out))
}

/// Infers the result types of `op` applied to operands of the given types.
///
/// `declared` are the instruction's declared result types; they are the result for
/// ops whose result type is declared ([`Op::result_type_is_declared`]) after a
/// consistency check, and are otherwise only used for the result count.
pub fn infer(
    op: &Op,
    operands: &[&TensorType],
    declared: &[TensorType],
) -> Result<Vec<TensorType>, TypeError> {
    let name = op.name();
    if !op.arity().accepts(operands.len()) {
        return Err(TypeError::OperandCount {
            op: name,
            expected: op.arity(),
            found: operands.len(),
        });
    }
    if declared.len() != op.num_results() {
        return Err(TypeError::ResultCount {
            op: name,
            expected: op.num_results(),
            found: declared.len(),
        });
    }
    let c = Ctx { op: name, operands };
    let one = |dtype: DType, shape: Shape| Ok(vec![TensorType { dtype, shape }]);
    match op {
        Op::Const { .. } => Ok(declared.to_vec()),
        Op::Iota { axis } => {
            let d = &declared[0];
            if *axis >= d.rank() {
                return Err(
                    c.attr_err(format!("axis {axis} is out of range for rank {}", d.rank()))
                );
            }
            Ok(declared.to_vec())
        }
        Op::Cast => {
            if declared[0].shape != c.ty(0).shape {
                return Err(c.shape_err(
                    Some(0),
                    format!(
                        "cast keeps the shape {} but {} is declared",
                        c.ty(0).shape,
                        declared[0].shape
                    ),
                ));
            }
            Ok(declared.to_vec())
        }
        Op::Reshape => {
            let from = &c.ty(0).shape;
            let to = &declared[0].shape;
            if declared[0].dtype != c.ty(0).dtype {
                return Err(c.dtype_err(0, &declared[0].dtype.to_string()));
            }
            if from.element_count_parts() != to.element_count_parts() {
                return Err(c.shape_err(
                    Some(0),
                    format!("cannot reshape {from} to {to}: element counts differ"),
                ));
            }
            Ok(declared.to_vec())
        }
        Op::Tail => {
            let (from, to) = (c.dims(0), declared[0].shape.dims());
            if declared[0].dtype != c.ty(0).dtype {
                return Err(c.dtype_err(0, &declared[0].dtype.to_string()));
            }
            if from.is_empty() || to.len() != from.len() || to[1..] != from[1..] {
                return Err(c.shape_err(
                    Some(0),
                    format!(
                        "tail keeps every dim but the first: cannot take {} from {}",
                        declared[0].shape,
                        c.ty(0).shape
                    ),
                ));
            }
            Ok(declared.to_vec())
        }
        Op::WriteTail => {
            c.same_dtype(1, 0)?;
            let (buf, new) = (c.dims(0), c.dims(1));
            if buf.is_empty() {
                return Err(c.shape_err(Some(0), "the buffer must have rank 1 or more".into()));
            }
            c.rank(1, buf.len())?;
            for (j, (x, y)) in new.iter().zip(buf).enumerate().skip(1) {
                c.dim_eq(1, &format!("dim {j} differs from the buffer's"), x, y)?;
            }
            one(c.ty(0).dtype, c.ty(0).shape.clone())
        }
        Op::MatMul => Ok(vec![infer_matmul(&c, true)?]),
        Op::GatedMatMul { .. } => {
            let out = infer_matmul(&c, false)?;
            c.same_dtype(2, 0)?;
            c.rank(2, 2)?;
            if c.ty(2).shape != c.ty(1).shape {
                return Err(c.shape_err(
                    Some(2),
                    format!(
                        "w_up {} must have w_gate's shape {}",
                        c.ty(2).shape,
                        c.ty(1).shape
                    ),
                ));
            }
            Ok(vec![out])
        }
        Op::MatMulAdd => {
            let out = infer_matmul(&c, false)?;
            c.same_dtype(2, 0)?;
            let r = &c.ty(2).shape;
            let bias = r.dims() == &out.shape.dims()[out.rank() - 1..];
            if !bias && *r != out.shape {
                return Err(c.shape_err(
                    Some(2),
                    format!(
                        "the addend {r} must be a bias [{}] or have the product's shape {}",
                        out.shape.dims()[out.rank() - 1],
                        out.shape
                    ),
                ));
            }
            Ok(vec![out])
        }
        Op::Fused { expr } => {
            let dt = c.float(0)?;
            let mut shape = c.ty(0).shape.clone();
            for i in 1..operands.len() {
                c.same_dtype(i, 0)?;
                shape = broadcast(&shape, &c.ty(i).shape).ok_or_else(|| {
                    c.shape_err(
                        Some(i),
                        format!("{} does not broadcast with {shape}", c.ty(i).shape),
                    )
                })?;
            }
            if expr.operand_count() > operands.len() {
                return Err(c.attr_err(format!(
                    "`{expr}` reads ${} but there are {} operand(s)",
                    expr.operand_count() - 1,
                    operands.len()
                )));
            }
            if let Some(unused) = (0..operands.len()).find(|&i| !expr.uses(i)) {
                return Err(c.attr_err(format!("`{expr}` never reads operand ${unused}")));
            }
            one(dt, shape)
        }
        Op::Binary(_) => {
            c.same_dtype(1, 0)?;
            let s = broadcast(&c.ty(0).shape, &c.ty(1).shape).ok_or_else(|| {
                c.shape_err(
                    Some(1),
                    format!("{} and {} do not broadcast", c.ty(0).shape, c.ty(1).shape),
                )
            })?;
            one(c.ty(0).dtype, s)
        }
        Op::Unary(f) if f.takes_integers() => one(c.ty(0).dtype, c.ty(0).shape.clone()),
        Op::Unary(_) => one(c.float(0)?, c.ty(0).shape.clone()),
        Op::RmsNorm { .. } | Op::LayerNorm { .. } => {
            let dt = c.float(0)?;
            c.rank_where(0, |r| r >= 1, "rank 1 or more")?;
            let last = c.ty(0).shape.last().cloned().unwrap_or(Dim::Static(1));
            for i in 1..operands.len() {
                c.same_dtype(i, 0)?;
                c.rank(i, 1)?;
                c.dim_eq(
                    i,
                    "norm weight must match the last dim",
                    &c.dims(i)[0],
                    &last,
                )?;
            }
            one(dt, c.ty(0).shape.clone())
        }
        Op::Softmax => {
            c.rank_where(0, |r| r >= 1, "rank 1 or more")?;
            one(c.float(0)?, c.ty(0).shape.clone())
        }
        Op::ReduceSum => {
            c.rank_where(0, |r| r >= 1, "rank 1 or more")?;
            let d = c.dims(0);
            one(c.ty(0).dtype, Shape(d[..d.len() - 1].to_vec()))
        }
        Op::Transpose { perm } => {
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
            one(
                c.ty(0).dtype,
                Shape(perm.iter().map(|&p| d[p].clone()).collect()),
            )
        }
        Op::Concat { axis } => {
            let rank = c.ty(0).rank();
            if *axis >= rank {
                return Err(c.attr_err(format!("axis {axis} is out of range for rank {rank}")));
            }
            let mut total = 0u64;
            for i in 0..operands.len() {
                c.same_dtype(i, 0)?;
                c.rank(i, rank)?;
                for (j, (x, y)) in c.dims(i).iter().zip(c.dims(0)).enumerate() {
                    if j != *axis {
                        c.dim_eq(i, &format!("dim {j} differs"), x, y)?;
                    }
                }
                match c.dims(i)[*axis].as_static() {
                    Some(n) => total += n,
                    None => {
                        return Err(c.shape_err(
                            Some(i),
                            format!(
                                "concat axis {axis} must be static, found {}",
                                c.dims(i)[*axis]
                            ),
                        ))
                    }
                }
            }
            let mut out = c.dims(0).to_vec();
            out[*axis] = Dim::Static(total);
            one(c.ty(0).dtype, Shape(out))
        }
        Op::Slice { axis, start, end } => {
            let d = c.dims(0);
            if *axis >= d.len() {
                return Err(c.attr_err(format!("axis {axis} is out of range for rank {}", d.len())));
            }
            let n = d[*axis].as_static().ok_or_else(|| {
                c.shape_err(
                    Some(0),
                    format!("slice axis {axis} must be static, found {}", d[*axis]),
                )
            })?;
            if start >= end || *end > n {
                return Err(c.attr_err(format!("slice {start}..{end} is empty or outside 0..{n}")));
            }
            let mut out = d.to_vec();
            out[*axis] = Dim::Static(end - start);
            one(c.ty(0).dtype, Shape(out))
        }
        Op::Gather => {
            c.rank(0, 2)?;
            c.int(1)?;
            let mut out = c.dims(1).to_vec();
            out.push(c.dims(0)[1].clone());
            one(c.ty(0).dtype, Shape(out))
        }
        Op::Rope { .. } => {
            let dt = c.float(0)?;
            c.rank(0, 3)?;
            c.int(1)?;
            c.rank(1, 1)?;
            let d = c.dims(0);
            c.dim_eq(
                1,
                "positions must match the token dim",
                &c.dims(1)[0],
                &d[0],
            )?;
            match d[2].as_static() {
                Some(h) if h % 2 == 0 => {}
                _ => {
                    return Err(c.shape_err(
                        Some(0),
                        format!("head dim must be static and even, found {}", d[2]),
                    ))
                }
            }
            one(dt, c.ty(0).shape.clone())
        }
        Op::Attention { .. } => {
            let dt = c.float(0)?;
            for i in 0..3 {
                c.same_dtype(i, 0)?;
                c.rank(i, 3)?;
            }
            let (q, k, v) = (c.dims(0), c.dims(1), c.dims(2));
            c.dim_eq(1, "key head dim must match the query's", &k[2], &q[2])?;
            c.dim_eq(2, "value head dim must match the query's", &v[2], &q[2])?;
            c.dim_eq(
                2,
                "values must have as many positions as keys",
                &v[0],
                &k[0],
            )?;
            c.dim_eq(2, "values must have as many heads as keys", &v[1], &k[1])?;
            match (q[1].as_static(), k[1].as_static()) {
                (Some(hq), Some(hkv)) if hkv > 0 && hq % hkv == 0 => {}
                _ => {
                    return Err(c.shape_err(
                        Some(1),
                        format!(
                            "query heads ({}) must be a static multiple of kv heads ({})",
                            q[1], k[1]
                        ),
                    ))
                }
            }
            one(dt, c.ty(0).shape.clone())
        }
        Op::TopK { k } => {
            c.rank_where(0, |r| r >= 1, "rank 1 or more")?;
            let d = c.dims(0);
            c.check_k(*k, &d[d.len() - 1])?;
            let mut out = d.to_vec();
            *out.last_mut().expect("rank >= 1") = Dim::Static(*k as u64);
            Ok(vec![
                TensorType {
                    dtype: c.ty(0).dtype,
                    shape: Shape(out.clone()),
                },
                TensorType {
                    dtype: DType::I32,
                    shape: Shape(out),
                },
            ])
        }
        Op::Route { k, mode, renorm } => {
            let dt = c.float(0)?;
            c.rank_where(0, |r| r >= 2, "rank 2 or more")?;
            let d = c.dims(0);
            c.check_k(*k, &d[d.len() - 1])?;
            if *mode == RouteMode::Take {
                c.float(1)?;
                if c.ty(1).shape != c.ty(0).shape {
                    return Err(c.shape_err(
                        Some(1),
                        format!(
                            "scores {} must have the logits' shape {}",
                            c.ty(1).shape,
                            c.ty(0).shape
                        ),
                    ));
                }
            }
            if *renorm && *mode != RouteMode::SoftmaxTopk {
                return Err(c.attr_err("`renorm=true` needs `mode=softmax_topk`"));
            }
            let mut out = d[..d.len() - 1].to_vec();
            out.push(Dim::Static(*k as u64));
            let out = Shape(out);
            Ok(vec![
                TensorType {
                    dtype: DType::I32,
                    shape: out.clone(),
                },
                TensorType {
                    dtype: dt,
                    shape: out,
                },
            ])
        }
        Op::Moe { .. } => infer_moe(&c),
        Op::AllReduce { .. } | Op::AllReduceStart { .. } | Op::AllReduceWait | Op::Cache { .. } => {
            one(c.ty(0).dtype, c.ty(0).shape.clone())
        }
    }
}

impl Ctx<'_> {
    fn ty_rank_err_b(&self, rank_a: usize) -> TypeError {
        TypeError::Rank {
            op: self.op,
            operand: 1,
            expected: format!("rank 2 or rank {rank_a} (batched)"),
            found: self.ty(1).rank(),
        }
    }

    fn check_k(&self, k: usize, last: &Dim) -> Result<(), TypeError> {
        match last.as_static() {
            Some(n) if k >= 1 && (k as u64) <= n => Ok(()),
            Some(n) => Err(self.attr_err(format!("k={k} must be between 1 and {n}"))),
            None => Err(self.shape_err(
                Some(0),
                format!("the selected axis must be static, found {last}"),
            )),
        }
    }
}

/// The type of the product of operands 0 and 1 (shared by `matmul` and, with
/// `batched_b` false as their weights must be rank 2, `gated_matmul` and `matmul_add`).
fn infer_matmul(c: &Ctx<'_>, batched_b: bool) -> Result<TensorType, TypeError> {
    let (ia, ib) = (0, 1);
    let dt = c.float(ia)?;
    c.same_dtype(ib, ia)?;
    c.rank_where(ia, |r| r >= 2, "rank 2 or more")?;
    let (a, b) = (c.dims(ia), c.dims(ib));
    if b.len() != 2 && (!batched_b || b.len() != a.len()) {
        return Err(if !batched_b {
            TypeError::Rank {
                op: c.op,
                operand: ib,
                expected: "rank 2".into(),
                found: b.len(),
            }
        } else {
            c.ty_rank_err_b(a.len())
        });
    }
    let k_a = &a[a.len() - 1];
    let k_b = &b[b.len() - 2];
    c.dim_eq(ib, "contraction dims differ", k_a, k_b)?;
    if b.len() > 2 {
        for (i, (x, y)) in a[..a.len() - 2].iter().zip(&b[..b.len() - 2]).enumerate() {
            c.dim_eq(ib, &format!("batch dim {i} differs"), x, y)?;
        }
    }
    let mut out = a[..a.len() - 1].to_vec();
    out.push(b[b.len() - 1].clone());
    Ok(TensorType {
        dtype: dt,
        shape: Shape(out),
    })
}

fn infer_moe(c: &Ctx<'_>) -> Result<Vec<TensorType>, TypeError> {
    let dt = c.float(0)?;
    c.rank(0, 2)?;
    c.int(1)?;
    c.rank(1, 2)?;
    c.same_dtype(2, 0)?;
    c.rank(2, 2)?;
    let x = c.dims(0);
    let (t, d) = (&x[0], &x[1]);
    c.dim_eq(1, "expert ids must have a row per token", &c.dims(1)[0], t)?;
    c.dim_eq(
        2,
        "weights must have the ids' shape",
        &c.dims(2)[0],
        &c.dims(1)[0],
    )?;
    c.dim_eq(
        2,
        "weights must have the ids' shape",
        &c.dims(2)[1],
        &c.dims(1)[1],
    )?;
    for i in 3..6 {
        c.same_dtype(i, 0)?;
        c.rank(i, 3)?;
    }
    let (g, u, dn) = (c.dims(3), c.dims(4), c.dims(5));
    let e = &g[0];
    let f = &g[2];
    c.dim_eq(3, "w_gate must be [E, D, F] with D the model dim", &g[1], d)?;
    c.dim_eq(4, "w_up must have w_gate's shape", &u[0], e)?;
    c.dim_eq(4, "w_up must have w_gate's shape", &u[1], d)?;
    c.dim_eq(4, "w_up must have w_gate's shape", &u[2], f)?;
    c.dim_eq(5, "w_down must be [E, F, D]", &dn[0], e)?;
    c.dim_eq(5, "w_down must be [E, F, D]", &dn[1], f)?;
    c.dim_eq(5, "w_down must be [E, F, D]", &dn[2], d)?;
    if c.operands.len() == 9 {
        for i in 6..9 {
            c.same_dtype(i, 0)?;
            c.rank(i, 2)?;
        }
        let (sg, su, sd) = (c.dims(6), c.dims(7), c.dims(8));
        let fs = &sg[1];
        c.dim_eq(6, "shared gate must be [D, Fs]", &sg[0], d)?;
        c.dim_eq(7, "shared up must have the shared gate's shape", &su[0], d)?;
        c.dim_eq(7, "shared up must have the shared gate's shape", &su[1], fs)?;
        c.dim_eq(8, "shared down must be [Fs, D]", &sd[0], fs)?;
        c.dim_eq(8, "shared down must be [Fs, D]", &sd[1], d)?;
    }
    Ok(vec![TensorType {
        dtype: dt,
        shape: c.ty(0).shape.clone(),
    }])
}

/// Infers the result types of an op whose results follow from its operands
/// (every op but those with [`Op::result_type_is_declared`], which need
/// [`infer`] with the declared types).
pub fn infer_from_operands(
    op: &Op,
    operands: &[&TensorType],
) -> Result<Vec<TensorType>, TypeError> {
    if op.result_type_is_declared() {
        return Err(TypeError::Attr {
            op: op.name(),
            detail: "the result type must be declared".to_string(),
        });
    }
    let placeholder = TensorType {
        dtype: DType::F32,
        shape: Shape::scalar(),
    };
    infer(op, operands, &vec![placeholder; op.num_results()])
}
