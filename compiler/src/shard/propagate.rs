//! Rewrites one function for a rank: each value's [`Layout`] follows from its
//! operands' (the parameters' from the [`Plan`]), its type becomes the rank's
//! part, and a partial sum read by anything but an `all_reduce` gets one
//! inserted before that reader. An op that cannot carry a split or partial
//! operand over exactly is refused ([`ShardError::Unsupported`]).

use std::collections::HashMap;

use seam_ir::{
    DType, Dim, Function, Instr, Model, Op, Operand, ParamId, ReduceOp, TensorType, ValueId,
};

use super::experts::ExpertTables;
use super::layout::{local_type, Layout, Split};
use super::recognize::Plan;
use super::ShardError;

/// `func` as every rank runs it, over `ranks` ranks; the tables its
/// expert-parallel `moe`s read are added to `tables`.
pub(crate) fn shard_function(
    model: &Model,
    func: &Function,
    plan: &Plan,
    ranks: u64,
    tables: &mut ExpertTables,
) -> Result<Function, ShardError> {
    let mut s = Sharder {
        model,
        func,
        plan,
        ranks,
        tables,
        out: Function {
            body: Vec::with_capacity(func.body.len()),
            ..func.clone()
        },
        layouts: vec![Layout::Whole; func.values.len()],
        reduced: HashMap::new(),
    };
    for instr in &func.body {
        s.instr(instr)?;
    }
    let mut outputs = Vec::with_capacity(func.outputs.len());
    for &o in &func.outputs {
        outputs.push(match s.layouts[o.index()] {
            Layout::Whole => o,
            Layout::Partial => s.reduce(o),
            Layout::Split(_) if s.is_state(o) => o,
            Layout::Split(_) | Layout::Pending => {
                return Err(s.unsupported(
                    "return",
                    o,
                    "a returned value would be split across the ranks",
                ))
            }
        });
    }
    s.out.outputs = outputs;
    Ok(s.out)
}

/// The rewrite in progress.
struct Sharder<'a> {
    model: &'a Model,
    func: &'a Function,
    plan: &'a Plan,
    ranks: u64,
    tables: &'a mut ExpertTables,
    /// The rank function: the original values (ids kept, types made local)
    /// and the inserted reductions' results after them.
    out: Function,
    /// The layout of every value of `out`.
    layouts: Vec<Layout>,
    /// The reduction inserted for each partial sum.
    reduced: HashMap<ValueId, ValueId>,
}

impl Sharder<'_> {
    fn unsupported(&self, op: &'static str, v: ValueId, detail: &str) -> ShardError {
        ShardError::Unsupported {
            function: self.func.name.clone(),
            op,
            value: self.out.value(v).name.clone(),
            detail: detail.into(),
        }
    }

    fn layout(&self, o: Operand) -> Layout {
        match o {
            Operand::Value(v) => self.layouts[v.index()],
            Operand::Param(p) => self
                .plan
                .get(&p)
                .map_or(Layout::Whole, |&s| Layout::Split(s)),
        }
    }

    /// The original (whole) type of an operand.
    fn whole_type(&self, o: Operand) -> &TensorType {
        match o {
            Operand::Value(v) if v.index() < self.func.values.len() => &self.func.value(v).ty,
            Operand::Value(v) => &self.out.value(v).ty,
            Operand::Param(p) => &self.model.param(p).ty,
        }
    }

    /// Whether `v` is a session state of the function (an input or an output).
    fn is_state(&self, v: ValueId) -> bool {
        self.func.states.iter().any(|b| {
            self.func.inputs.get(b.input) == Some(&v) || self.func.outputs.get(b.output) == Some(&v)
        })
    }

    /// Splits a state (a KV cache) as the rows written into it, `new`: its
    /// only use is as the buffer of that write, so nothing read it whole.
    fn split_state(&mut self, instr: &Instr, operands: &[Operand]) -> Result<(), ShardError> {
        let (Some(&Operand::Value(buf)), Some(&new)) = (operands.first(), operands.last()) else {
            return Ok(());
        };
        let (Layout::Whole, Layout::Split(rows)) = (self.layouts[buf.index()], self.layout(new))
        else {
            return Ok(());
        };
        if !self.is_state(buf) {
            return Ok(());
        }
        // A pool `[S, L, ...]` holds the rows `[T, ...]` one axis further in.
        let pooled = usize::from(matches!(instr.op, Op::WriteRows));
        let layout = Layout::Split(rows.on(rows.axis + pooled));
        let ty = local_type(&self.func.value(buf).ty, layout, self.ranks).ok_or_else(|| {
            self.unsupported(instr.op.name(), buf, "the state's heads do not split")
        })?;
        self.out.values[buf.index()].ty = ty;
        self.layouts[buf.index()] = layout;
        Ok(())
    }

    /// Appends `op(operands)` as a new whole value named after `name`.
    fn emit(&mut self, op: Op, operands: Vec<Operand>, name: &str, ty: TensorType) -> ValueId {
        let mut unique = name.to_string();
        let mut n = 1;
        while self.out.value_by_name(&unique).is_some() {
            unique = format!("{name}{n}");
            n += 1;
        }
        let r = self.out.add_value(unique, ty);
        self.layouts.push(Layout::Whole);
        self.out.body.push(Instr {
            op,
            operands,
            results: vec![r],
        });
        r
    }

    /// The sum across ranks of partial value `v`: an `all_reduce` appended
    /// to the body the first time it is asked for.
    fn reduce(&mut self, v: ValueId) -> ValueId {
        if let Some(&r) = self.reduced.get(&v) {
            return r;
        }
        let name = format!("{}.all_reduce", self.out.value(v).name);
        let ty = self.out.value(v).ty.clone();
        let op = Op::AllReduce {
            reduce: ReduceOp::Sum,
        };
        let r = self.emit(op, vec![v.into()], &name, ty);
        self.reduced.insert(v, r);
        r
    }

    /// Routes a `moe` whose expert stacks are split to the rank's experts:
    /// its ids mapped into the rank's stacks and its weights zeroed for the
    /// experts other ranks hold (see [`super::experts`]).
    fn route_locally(&mut self, instr: &Instr, operands: &mut [Operand]) -> Result<(), ShardError> {
        let first = instr.results.first().copied().unwrap_or(ValueId(0));
        let (
            Some(&Operand::Value(ids)),
            Some(&Operand::Value(weights)),
            Some(&Operand::Param(stack)),
        ) = (operands.get(1), operands.get(2), operands.get(3))
        else {
            return Err(self.unsupported("moe", first, "expert-parallel routes must be values"));
        };
        let whole = |v: ValueId| self.layouts[v.index()] == Layout::Whole;
        if !whole(ids) || !whole(weights) {
            return Err(self.unsupported("moe", first, "its routes are not whole on every rank"));
        }
        let decl = self.model.param(stack);
        let experts = decl
            .ty
            .shape
            .dims()
            .first()
            .and_then(Dim::as_static)
            .unwrap_or(0);
        let (ids_ty, weights_ty) = (
            self.out.value(ids).ty.clone(),
            self.out.value(weights).ty.clone(),
        );
        let (local_ids, held) = self.tables.for_stack(&decl.name, experts);
        let base = self.out.value(first).name.clone();
        let mapped = self.lookup(local_ids, ids, &format!("{base}.local_ids"), ids_ty);
        let held = self.lookup(held, ids, &format!("{base}.held"), weights_ty.clone());
        let weights = self.emit(
            Op::Binary(seam_ir::BinaryFn::Mul),
            vec![weights.into(), held.into()],
            &format!("{base}.local_weights"),
            weights_ty,
        );
        operands[1] = mapped.into();
        operands[2] = weights.into();
        Ok(())
    }

    /// `table[ids]` of an `f32[E, 1]` table, as `ty` (the ids' shape): a
    /// gather, a reshape dropping the column, and a cast where `ty` is not
    /// `f32`.
    fn lookup(&mut self, table: ParamId, ids: ValueId, name: &str, ty: TensorType) -> ValueId {
        let f32_rows = TensorType {
            dtype: DType::F32,
            ..ty.clone()
        };
        let mut column = f32_rows.clone();
        column.shape.0.push(Dim::Static(1));
        let col = self.emit(
            Op::Gather,
            vec![table.into(), ids.into()],
            &format!("{name}_col"),
            column,
        );
        if ty.dtype == DType::F32 {
            return self.emit(Op::Reshape, vec![col.into()], name, ty);
        }
        let rows = self.emit(
            Op::Reshape,
            vec![col.into()],
            &format!("{name}_f32"),
            f32_rows,
        );
        self.emit(Op::Cast, vec![rows.into()], name, ty)
    }

    /// Appends `instr` for the rank, reducing the partial sums it reads
    /// unless it is a reduction itself.
    fn instr(&mut self, instr: &Instr) -> Result<(), ShardError> {
        let first = instr.results.first().copied().unwrap_or(ValueId(0));
        let reduces = matches!(instr.op, Op::AllReduce { .. } | Op::AllReduceStart { .. });
        let mut operands = Vec::with_capacity(instr.operands.len());
        for &o in &instr.operands {
            operands.push(match o {
                Operand::Value(v) if !reduces && self.layout(o) == Layout::Partial => {
                    self.reduce(v).into()
                }
                _ => o,
            });
        }
        let experts_split =
            matches!(operands.get(3), Some(&o) if matches!(self.layout(o), Layout::Split(_)));
        match instr.op {
            Op::Moe { .. } if experts_split => self.route_locally(instr, &mut operands)?,
            Op::WriteTail | Op::WriteRows => self.split_state(instr, &operands)?,
            _ => {}
        }
        let layouts: Vec<Layout> = operands.iter().map(|&o| self.layout(o)).collect();
        let layout = self
            .rule(instr, &operands, &layouts)
            .map_err(|detail| self.unsupported(instr.op.name(), first, &detail))?;
        for &r in &instr.results {
            let ty = local_type(&self.func.value(r).ty, layout, self.ranks).ok_or_else(|| {
                self.unsupported(
                    instr.op.name(),
                    r,
                    "the split dim is not static or does not divide",
                )
            })?;
            self.out.values[r.index()].ty = ty;
            self.layouts[r.index()] = layout;
        }
        self.out.body.push(Instr {
            operands,
            ..instr.clone()
        });
        Ok(())
    }

    /// The layout of `instr`'s results given its operands', or why it has none.
    fn rule(&self, instr: &Instr, operands: &[Operand], lay: &[Layout]) -> Result<Layout, String> {
        use Layout::{Partial, Pending, Split as S, Whole};
        let ty = |i: usize| self.whole_type(operands[i]);
        let result = instr
            .results
            .first()
            .map(|&r| &self.func.value(r).ty)
            .ok_or("no result")?;
        if lay.iter().all(|l| *l == Whole) {
            return match instr.op {
                Op::AllReduce { .. } | Op::AllReduceStart { .. } if self.ranks > 1 => Err(
                    "it reduces a value every rank holds whole, which would multiply it by the ranks"
                        .into(),
                ),
                _ => Ok(Whole),
            };
        }
        match (&instr.op, lay) {
            (Op::AllReduce { .. }, [Partial]) => Ok(Whole),
            (Op::AllReduceStart { .. }, [Partial]) => Ok(Pending),
            (Op::AllReduceWait, [Pending]) => Ok(Whole),
            (Op::MatMul, [x, w]) => matmul(*x, *w, ty(0).rank(), ty(1).rank()),
            (Op::GatedMatMul { .. }, [Whole, S(g), S(u)]) if g == u && g.axis == 1 => {
                Ok(S(g.on(result.rank() - 1)))
            }
            (Op::MatMulAdd, [Whole, S(w), _]) if w.axis == 1 => {
                let split = S(w.on(result.rank() - 1));
                self.elementwise(&operands[2..], &lay[2..], result)
                    .ok()
                    .filter(|r| *r == split)
                    .ok_or_else(|| "the added operand is not split as the product".to_string())
            }
            (Op::Unary(_) | Op::Binary(_) | Op::Fused { .. } | Op::Cast | Op::Cache { .. }, _) => {
                self.elementwise(operands, lay, result)
            }
            (Op::Moe { .. }, [Whole, Whole, Whole, S(g), S(u), S(d), shared @ ..])
                if g.axis == 0 && u == g && d == g =>
            {
                match shared {
                    [] => Ok(Partial),
                    [S(sg), S(su), S(sd)] if sg.axis == 1 && su == sg && sd.axis == 0 => {
                        Ok(Partial)
                    }
                    _ => Err("its shared expert is not split as its experts".into()),
                }
            }
            (Op::Reshape, [S(s)]) => reshape(*s, ty(0).shape.dims(), result.shape.dims()),
            (Op::Rope { .. }, [S(s), Whole]) if s.axis + 2 == ty(0).rank() => Ok(S(*s)),
            (Op::Attention { .. }, [S(q), S(k), S(v)]) if k == v => {
                self.attention(*q, *k, ty(0), ty(1)).map(S)
            }
            (Op::WriteTail, [S(buf), S(new)]) if buf == new => Ok(S(*buf)),
            (Op::WriteRows, [S(pool), Whole, Whole, S(new)]) if *pool == new.on(new.axis + 1) => {
                Ok(S(*pool))
            }
            (Op::PooledAttention { .. }, [S(q), S(k), S(v), Whole, Whole]) if k == v => self
                .attention(*q, k.on(1), ty(0), &pooled_rows(ty(1)))
                .map(S),
            (Op::WriteTail | Op::WriteRows, _) => Err(
                "only a session state split as the rows written into it can take split rows".into(),
            ),
            _ => Err(format!(
                "its operands are held {lay:?}; it only runs on whole values"
            )),
        }
    }

    /// An element-wise op's result layout: every split operand split alike
    /// (aligned from the last axis, as broadcasting is), every whole operand
    /// broadcast along the split axis.
    fn elementwise(
        &self,
        operands: &[Operand],
        lay: &[Layout],
        result: &TensorType,
    ) -> Result<Layout, String> {
        let rank = result.rank();
        let mut split: Option<Split> = None;
        for (&o, l) in operands.iter().zip(lay) {
            let offset = rank - self.whole_type(o).rank().min(rank);
            match l {
                Layout::Whole => {}
                Layout::Split(s) => {
                    let s = s.on(s.axis + offset);
                    if split.is_some_and(|t| t != s) {
                        return Err("its operands are split differently".into());
                    }
                    split = Some(s);
                }
                Layout::Partial | Layout::Pending => {
                    return Err("it reads an all-reduce still in flight".into())
                }
            }
        }
        let split = split.ok_or("no operand is split")?;
        for (&o, l) in operands.iter().zip(lay) {
            let dims = self.whole_type(o).shape.dims();
            let offset = rank - dims.len().min(rank);
            let broadcast = split
                .axis
                .checked_sub(offset)
                .and_then(|a| dims.get(a))
                .is_none_or(Dim::is_one);
            if *l == Layout::Whole && !broadcast {
                return Err("a whole operand is not broadcast along the split axis".into());
            }
        }
        Ok(Layout::Split(split))
    }

    /// The layout of `attention(q, k, v)` with q split `q` and k, v split `kv`:
    /// q's, when each rank's query heads read exactly its key/value heads.
    fn attention(
        &self,
        q: Split,
        kv: Split,
        tq: &TensorType,
        tk: &TensorType,
    ) -> Result<Split, String> {
        let heads = |t: &TensorType| t.shape.dims().get(1).and_then(Dim::as_static);
        let (Some(hq), Some(hkv)) = (heads(tq), heads(tk)) else {
            return Err("attention heads must be static".into());
        };
        if q.axis != 1 || kv.axis != 1 || hkv == 0 || hq % hkv != 0 {
            return Err("q, k and v must be split by heads".into());
        }
        let group = hq / hkv;
        for rank in 0..self.ranks {
            let (qs, qe) = q.range(hq, rank, self.ranks);
            let (ks, ke) = kv.range(hkv, rank, self.ranks);
            let (lq, lk) = (qe - qs, ke - ks);
            let reads_own =
                lk > 0 && lq % lk == 0 && (0..lq).all(|j| (qs + j) / group == ks + j / (lq / lk));
            if !reads_own {
                return Err(format!(
                    "rank {rank}'s query heads {qs}..{qe} do not read its key/value heads {ks}..{ke}"
                ));
            }
        }
        Ok(q)
    }
}

/// The type of one slot's rows of a pool `[S, L, ...]`: `[L, ...]`.
fn pooled_rows(pool: &TensorType) -> TensorType {
    TensorType {
        dtype: pool.dtype,
        shape: seam_ir::Shape(pool.shape.dims().iter().skip(1).cloned().collect()),
    }
}

/// A product's layout: whole rows times split columns is split; split rows
/// (the contraction) times the weight's matching rows is a partial sum.
fn matmul(x: Layout, w: Layout, x_rank: usize, w_rank: usize) -> Result<Layout, String> {
    match (x, w) {
        (Layout::Whole, Layout::Split(s)) if w_rank == 2 && s.axis == 1 => {
            Ok(Layout::Split(s.on(x_rank - 1)))
        }
        (Layout::Split(a), Layout::Split(b))
            if w_rank == 2 && a.axis + 1 == x_rank && b.axis == 0 && a.blocks == b.blocks =>
        {
            Ok(Layout::Partial)
        }
        _ => Err(format!(
            "a product of a {x:?} operand by a {w:?} weight is not column- or row-parallel"
        )),
    }
}

/// The layout of a reshape of a value split `s` from dims `from` to `to`: the
/// same blocks on the axis of `to` that has the same leading dims and the same
/// trailing volume.
fn reshape(s: Split, from: &[Dim], to: &[Dim]) -> Result<Layout, String> {
    let volume = |dims: &[Dim]| dims.iter().map(Dim::as_static).product::<Option<u64>>();
    let refused = || {
        format!(
            "a reshape of a value split on axis {} changes its leading dims",
            s.axis
        )
    };
    let tail = volume(&from[s.axis..]).ok_or_else(refused)?;
    (0..to.len())
        .find(|&b| {
            to[..b] == from[..s.axis]
                && volume(&to[b..]) == Some(tail)
                && to[b].as_static().is_some_and(|m| m % s.blocks == 0)
        })
        .map(|b| Layout::Split(s.on(b)))
        .ok_or_else(refused)
}
