//! Finds the blocks to split, from the IR alone: each `attention`'s
//! projections (q, k and v column-parallel by heads, the output projection
//! row-parallel) and each feed-forward block (the projections that feed a
//! product's input through element-wise ops column-parallel, that product
//! row-parallel) and each `moe`'s expert stacks (split by experts, its shared
//! expert as a feed-forward block). Every other parameter stays whole on every
//! rank.

use std::collections::HashMap;

use seam_ir::{BinaryFn, Function, Instr, Model, Op, Operand, ParamId, ValueId};

use super::layout::Split;
use super::ShardError;

/// The split of each parameter that is split; the others are whole.
pub(crate) type Plan = HashMap<ParamId, Split>;

/// The plan of every function of `model` over `ranks` ranks.
pub(crate) fn plan(model: &Model, ranks: u64) -> Result<Plan, ShardError> {
    let mut plan = Plan::new();
    for func in &model.functions {
        let graph = Graph::new(model, func, ranks);
        for instr in &func.body {
            match (&instr.op, instr.operands.as_slice()) {
                (
                    Op::Attention { .. },
                    [Operand::Value(q), Operand::Value(k), Operand::Value(v)],
                ) => graph.attention(instr, [*q, *k, *v], 1, &mut plan)?,
                (
                    Op::PooledAttention { .. },
                    [Operand::Value(q), Operand::Value(k), Operand::Value(v), ..],
                ) => graph.attention(instr, [*q, *k, *v], 2, &mut plan)?,
                (Op::MatMul, [Operand::Value(h), Operand::Param(down)]) => {
                    graph.feed_forward(*h, *down, &mut plan)?
                }
                (Op::Moe { .. }, [_, _, _, experts @ ..]) => graph.experts(experts, &mut plan)?,
                _ => {}
            }
        }
    }
    Ok(plan)
}

/// A function with its definitions and uses indexed.
struct Graph<'a> {
    model: &'a Model,
    func: &'a Function,
    ranks: u64,
    /// The instruction defining each value.
    def: HashMap<ValueId, &'a Instr>,
    /// The instructions reading each value.
    uses: HashMap<ValueId, Vec<&'a Instr>>,
}

/// The weights and biases of the projections feeding one split block.
#[derive(Default)]
struct Projections {
    weights: Vec<ParamId>,
    biases: Vec<ParamId>,
}

impl<'a> Graph<'a> {
    fn new(model: &'a Model, func: &'a Function, ranks: u64) -> Self {
        let mut def = HashMap::new();
        let mut uses: HashMap<ValueId, Vec<&Instr>> = HashMap::new();
        for instr in &func.body {
            for &r in &instr.results {
                def.insert(r, instr);
            }
            for o in &instr.operands {
                if let Operand::Value(v) = o {
                    uses.entry(*v).or_default().push(instr);
                }
            }
        }
        Graph {
            model,
            func,
            ranks,
            def,
            uses,
        }
    }

    fn name(&self, v: ValueId) -> String {
        self.func.value(v).name.clone()
    }

    fn param_rank(&self, p: ParamId) -> usize {
        self.model.param(p).ty.rank()
    }

    /// A static dim of value `v`'s type.
    fn dim(&self, v: ValueId, axis: usize) -> Option<u64> {
        self.func.value(v).ty.shape.dims().get(axis)?.as_static()
    }

    /// Splits the projections of `attention(q, k, v)` (or of a
    /// `pooled_attention`, its key/value heads on axis `kv_axis` of the pools)
    /// by heads and its output projection by its input rows.
    fn attention(
        &self,
        instr: &Instr,
        qkv: [ValueId; 3],
        kv_axis: usize,
        plan: &mut Plan,
    ) -> Result<(), ShardError> {
        let [q, k, v] = qkv;
        let heads = |v: ValueId, axis: usize| {
            self.dim(v, axis).ok_or_else(|| ShardError::Unrecognised {
                value: self.name(v),
                detail: "attention heads must be a static dim".into(),
            })
        };
        let (hq, hkv) = (heads(q, 1)?, heads(k, kv_axis)?);
        let q_proj = self.head_projection(q, "query")?;
        let divides = hq > 0 && hq % self.ranks == 0;
        self.require(&q_proj, hq, "query heads", divides, "a multiple of")?;
        put(plan, self.model, &q_proj, hq)?;
        for (x, what) in [(k, "key"), (v, "value")] {
            let proj = self.head_projection(x, what)?;
            let deals = Split::deals(hkv, self.ranks);
            self.require(
                &proj,
                hkv,
                "key/value heads",
                deals,
                "a multiple or a divisor of",
            )?;
            put(plan, self.model, &proj, hkv)?;
        }
        let out = instr.results.first().copied();
        let o = out
            .and_then(|a| self.output_projection(a))
            .ok_or_else(|| ShardError::Unrecognised {
                value: out.map(|a| self.name(a)).unwrap_or_default(),
                detail: "an attention's output must feed an output projection (a matmul with a weight, through reshapes only)".into(),
            })?;
        insert(
            plan,
            self.model,
            o,
            Split {
                axis: 0,
                blocks: hq,
            },
        )
    }

    /// Refuses `size` split `what` where `ok` is false, naming the first weight.
    fn require(
        &self,
        proj: &Projections,
        size: u64,
        what: &'static str,
        ok: bool,
        need: &'static str,
    ) -> Result<(), ShardError> {
        if ok {
            return Ok(());
        }
        Err(ShardError::Indivisible {
            param: proj
                .weights
                .first()
                .map(|&p| self.model.param(p).name.clone())
                .unwrap_or_default(),
            what,
            size,
            ranks: self.ranks as usize,
            need,
        })
    }

    /// The projection computing the heads `v` of an attention: a matmul with a
    /// weight, an optional bias, a reshape to heads, an optional rope, and
    /// for a KV cache the write into it.
    fn head_projection(&self, mut v: ValueId, what: &str) -> Result<Projections, ShardError> {
        let mut proj = Projections::default();
        loop {
            let instr = self.def.get(&v).ok_or_else(|| ShardError::Unrecognised {
                value: self.name(v),
                detail: format!("the attention's {what} heads are an input, not a projection"),
            })?;
            match (&instr.op, instr.operands.as_slice()) {
                (Op::Rope { .. }, [Operand::Value(x), _])
                | (Op::Reshape, [Operand::Value(x)])
                | (Op::WriteTail, [_, Operand::Value(x)])
                | (Op::WriteRows, [_, _, _, Operand::Value(x)]) => v = *x,
                (Op::Binary(BinaryFn::Add), [Operand::Value(x), Operand::Param(b)])
                    if self.param_rank(*b) == 1 =>
                {
                    proj.biases.push(*b);
                    v = *x;
                }
                (Op::MatMul, [Operand::Value(_), Operand::Param(w)]) if self.param_rank(*w) == 2 => {
                    proj.weights.push(*w);
                    return Ok(proj);
                }
                (op, _) => {
                    return Err(ShardError::Unrecognised {
                        value: self.name(v),
                        detail: format!(
                            "the attention's {what} heads must come from a matmul with a weight, an optional bias, a reshape and an optional rope, not `{}`",
                            op.name()
                        ),
                    })
                }
            }
        }
    }

    /// The output projection's weight reading attention result `a` through reshapes.
    fn output_projection(&self, mut a: ValueId) -> Option<ParamId> {
        loop {
            let [instr] = self.uses.get(&a)?.as_slice() else {
                return None;
            };
            match (&instr.op, instr.operands.as_slice()) {
                (Op::Reshape, _) => a = *instr.results.first()?,
                (Op::MatMul, [Operand::Value(x), Operand::Param(w)])
                    if *x == a && self.param_rank(*w) == 2 =>
                {
                    return Some(*w)
                }
                _ => return None,
            }
        }
    }

    /// Splits `h · down` as a feed-forward block when `h` is computed
    /// element-wise from projections of weights.
    fn feed_forward(&self, h: ValueId, down: ParamId, plan: &mut Plan) -> Result<(), ShardError> {
        let mut proj = Projections::default();
        if self.param_rank(down) != 2 || !self.columns(h, &mut proj) {
            return Ok(());
        }
        let hidden = self.dim(h, self.func.value(h).ty.rank().saturating_sub(1));
        let ranks = self.ranks;
        if !hidden.is_some_and(|n| n > 0 && n % ranks == 0) {
            return Err(ShardError::Indivisible {
                param: self.model.param(down).name.clone(),
                what: "FFN hidden units",
                size: hidden.unwrap_or(0),
                ranks: ranks as usize,
                need: "a multiple of",
            });
        }
        put(plan, self.model, &proj, ranks)?;
        insert(
            plan,
            self.model,
            down,
            Split {
                axis: 0,
                blocks: ranks,
            },
        )
    }

    /// Splits the expert stacks `[w_gate, w_up, w_down]` of a `moe` by experts,
    /// and its shared expert `[s_gate, s_up, s_down]`, if any, as a
    /// feed-forward block. Stacks that are not parameters stay whole.
    fn experts(&self, operands: &[Operand], plan: &mut Plan) -> Result<(), ShardError> {
        let params: Option<Vec<ParamId>> = operands
            .iter()
            .map(|o| match o {
                Operand::Param(p) => Some(*p),
                Operand::Value(_) => None,
            })
            .collect();
        let Some(params) = params else {
            return Ok(());
        };
        let ranks = self.ranks;
        let size = |p: ParamId, axis: usize| {
            self.model
                .param(p)
                .ty
                .shape
                .dims()
                .get(axis)
                .and_then(|d| d.as_static())
        };
        let (stacks, shared) = params.split_at(3.min(params.len()));
        for (group, axis, what) in [
            (stacks, 0, "experts"),
            (shared, 1, "shared expert hidden units"),
        ] {
            let Some(&first) = group.first() else {
                continue;
            };
            let n = size(first, axis);
            if !n.is_some_and(|n| n > 0 && n % ranks == 0) {
                return Err(ShardError::Indivisible {
                    param: self.model.param(first).name.clone(),
                    what,
                    size: n.unwrap_or(0),
                    ranks: ranks as usize,
                    need: "a multiple of",
                });
            }
        }
        for &p in stacks {
            insert(
                plan,
                self.model,
                p,
                Split {
                    axis: 0,
                    blocks: ranks,
                },
            )?;
        }
        if let [gate, up, down] = shared {
            let proj = Projections {
                weights: vec![*gate, *up],
                biases: Vec::new(),
            };
            put(plan, self.model, &proj, ranks)?;
            insert(
                plan,
                self.model,
                *down,
                Split {
                    axis: 0,
                    blocks: ranks,
                },
            )?;
        }
        Ok(())
    }

    /// Whether `v` is computed element-wise (activations, products, bias adds)
    /// from products with weights, whose weights and biases are gathered in `proj`.
    fn columns(&self, v: ValueId, proj: &mut Projections) -> bool {
        let Some(instr) = self.def.get(&v) else {
            return false;
        };
        let rank = |p: &ParamId| self.param_rank(*p);
        match (&instr.op, instr.operands.as_slice()) {
            (Op::MatMul, [Operand::Value(_), Operand::Param(w)]) if rank(w) == 2 => {
                proj.weights.push(*w);
                true
            }
            (Op::GatedMatMul { .. }, [Operand::Value(_), Operand::Param(g), Operand::Param(u)])
                if rank(g) == 2 && rank(u) == 2 =>
            {
                proj.weights.extend([*g, *u]);
                true
            }
            (Op::Unary(_) | Op::Cast, [Operand::Value(x)]) => self.columns(*x, proj),
            (Op::Binary(BinaryFn::Mul), [Operand::Value(a), Operand::Value(b)]) => {
                self.columns(*a, proj) && self.columns(*b, proj)
            }
            (Op::Binary(BinaryFn::Add), [Operand::Value(x), Operand::Param(b)]) if rank(b) == 1 => {
                proj.biases.push(*b);
                self.columns(*x, proj)
            }
            _ => false,
        }
    }
}

/// Splits every weight of `proj` by columns and every bias along its only
/// axis, into `blocks` blocks.
fn put(plan: &mut Plan, model: &Model, proj: &Projections, blocks: u64) -> Result<(), ShardError> {
    for &w in &proj.weights {
        insert(plan, model, w, Split { axis: 1, blocks })?;
    }
    for &b in &proj.biases {
        insert(plan, model, b, Split { axis: 0, blocks })?;
    }
    Ok(())
}

/// Records `param`'s split, refusing a second, different one.
fn insert(plan: &mut Plan, model: &Model, param: ParamId, split: Split) -> Result<(), ShardError> {
    match plan.insert(param, split) {
        Some(old) if old != split => Err(ShardError::Conflict {
            param: model.param(param).name.clone(),
        }),
        _ => Ok(()),
    }
}
