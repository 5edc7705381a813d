//! Instruction selection over several instructions: an attention layer's
//! split of a merged q‖k‖v product, the RoPE of q and k and the writes of k and
//! v into their KV cache (or slot pool) become one `rotary_split` dispatch
//! instead of five (`split`, two `rope`, two `slice_update`/`write_rows`).
//!
//! A group starts from
//! - the slices of one `x[T, W]` along its last axis (every such slice is a
//!   piece), or
//! - a `rope` whose result reaches a cache write (one piece: the whole row of
//!   its input, viewed as `[T, H·Dh]`), for models whose q, k and v are
//!   separate products;
//!
//! and each piece follows its value through single-use `reshape`s (keeping
//! the leading `T`), at most one `rope` and a `write_tail`/`write_rows` into a
//! state input, as far as that chain goes. A piece whose chain stops early is
//! written to the value it stops at. The group is lowered where its last
//! instruction stood, so it is only formed when nothing outside it reads one
//! of its values before that point. Everything is element for element what the
//! separate kernels compute (the RoPE expressions are the `rope` kernel's), so
//! results are bit-identical; the GPU tests check them against the evaluator.

use std::collections::{HashMap, HashSet};

use seam_core::SizeExpr;
use seam_ir::{DType, Function, Instr, Op, Operand, ValueId};
use seam_shaders::kernels::rotary_split::{rotary_split, PieceDest, PieceRope, SplitPiece};

use crate::lower::{dims_of, kdim, whole, LowerCx, LowerError};

/// A group of instructions lowered as one `rotary_split` dispatch.
#[derive(Clone, Debug)]
pub(crate) struct RotarySplit {
    /// The split value, `[T, ...]` viewed as `[T, W]`.
    x: Operand,
    /// The pieces, in column order.
    pieces: Vec<Piece>,
    /// Body indices of every instruction the group replaces, ascending.
    pub members: Vec<usize>,
}

/// One piece of a [`RotarySplit`].
#[derive(Clone, Debug)]
struct Piece {
    start: u64,
    len: u64,
    /// The `rope` instruction rotating it, if any.
    rope: Option<usize>,
    dest: Dest,
}

/// Where a piece's rows go.
#[derive(Clone, Copy, Debug)]
enum Dest {
    /// The tensor of this value (`[T, len]` in memory).
    Value(ValueId),
    /// The state updated by this `write_tail` instruction.
    Tail(usize),
    /// The pool updated by this `write_rows` instruction.
    Rows(usize),
}

/// The rotary splits of `func` (see the module docs); their members are
/// disjoint.
pub(crate) fn rotary_splits(func: &Function) -> Vec<RotarySplit> {
    let uses = Uses::of(func);
    let mut claimed: HashSet<usize> = HashSet::new();
    let mut groups = Vec::new();
    // Slices of one value along its last axis, in body order of their first.
    let mut slices: Vec<(Operand, Vec<usize>)> = Vec::new();
    for (i, instr) in func.body.iter().enumerate() {
        let (Op::Slice { axis: 1, .. }, [x]) = (&instr.op, instr.operands.as_slice()) else {
            continue;
        };
        match slices.iter_mut().find(|(o, _)| o == x) {
            Some((_, group)) => group.push(i),
            None => slices.push((*x, vec![i])),
        }
    }
    for (x, group) in slices {
        if operand_rank(func, x) != Some(2) {
            continue;
        }
        let mut members = group.clone();
        let pieces = group
            .iter()
            .map(|&i| {
                let Op::Slice { start, end, .. } = func.body[i].op else {
                    unreachable!("collected as slices")
                };
                let (rope, dest) = uses.follow(func, func.body[i].results[0], None, &mut members);
                Piece {
                    start,
                    len: end - start,
                    rope,
                    dest,
                }
            })
            .collect();
        if let Some(g) = RotarySplit::checked(func, &uses, x, pieces, members) {
            claimed.extend(&g.members);
            groups.push(g);
        }
    }
    for (i, instr) in func.body.iter().enumerate() {
        if claimed.contains(&i) || !matches!(instr.op, Op::Rope { .. }) {
            continue;
        }
        let x = instr.operands[0];
        let mut members = vec![i];
        let (rope, dest) = uses.follow(func, instr.results[0], Some(i), &mut members);
        if matches!(dest, Dest::Value(_)) {
            continue;
        }
        let len = func.value(instr.results[0]).ty.shape.dims()[1..]
            .iter()
            .map(|d| d.as_static())
            .product::<Option<u64>>();
        let Some(len) = len else { continue };
        let piece = Piece {
            start: 0,
            len,
            rope,
            dest,
        };
        if let Some(g) = RotarySplit::checked(func, &uses, x, vec![piece], members) {
            claimed.extend(&g.members);
            groups.push(g);
        }
    }
    groups
}

/// The rank of an operand's type, for values.
fn operand_rank(func: &Function, x: Operand) -> Option<usize> {
    match x {
        Operand::Value(v) => Some(func.value(v).ty.rank()),
        Operand::Param(_) => None,
    }
}

/// Who reads each value.
struct Uses {
    /// Body indices of the instructions reading a value, once per operand.
    readers: HashMap<ValueId, Vec<usize>>,
    /// Values a function returns.
    returned: HashSet<ValueId>,
    /// The function's state inputs.
    states: HashSet<ValueId>,
}

impl Uses {
    fn of(func: &Function) -> Uses {
        let mut readers: HashMap<ValueId, Vec<usize>> = HashMap::new();
        for (i, instr) in func.body.iter().enumerate() {
            for o in &instr.operands {
                if let Operand::Value(v) = o {
                    readers.entry(*v).or_default().push(i);
                }
            }
        }
        let states = (0..func.inputs.len())
            .filter(|&i| func.is_state_input(i))
            .map(|i| func.inputs[i])
            .collect();
        Uses {
            readers,
            returned: func.outputs.iter().copied().collect(),
            states,
        }
    }

    /// The one instruction reading `v`, when `v` has exactly one use and is
    /// not returned.
    fn sole_reader(&self, v: ValueId) -> Option<usize> {
        match self.readers.get(&v).map(Vec::as_slice) {
            Some(&[i]) if !self.returned.contains(&v) => Some(i),
            _ => None,
        }
    }

    /// Follows a piece from value `v` through single-use reshapes, one `rope`
    /// (unless `rope` is already set) and a cache write, adding the
    /// instructions taken to `members`; returns the rope and where the chain ends.
    fn follow(
        &self,
        func: &Function,
        mut v: ValueId,
        mut rope: Option<usize>,
        members: &mut Vec<usize>,
    ) -> (Option<usize>, Dest) {
        let tokens = func.value(v).ty.shape.dims()[0].clone();
        while let Some(u) = self.sole_reader(v) {
            let instr = &func.body[u];
            let result = instr.results.first().copied();
            let keeps_tokens = |r: ValueId| func.value(r).ty.shape.dims().first() == Some(&tokens);
            let state = |o: Operand| matches!(o, Operand::Value(s) if self.states.contains(&s));
            let reads = |k: usize| instr.operands.get(k) == Some(&Operand::Value(v));
            match instr.op {
                Op::Reshape if result.is_some_and(keeps_tokens) => {}
                Op::Rope { .. } if rope.is_none() && reads(0) && func.value(v).ty.rank() == 3 => {
                    rope = Some(u);
                }
                Op::WriteTail if reads(1) && state(instr.operands[0]) => {
                    members.push(u);
                    return (rope, Dest::Tail(u));
                }
                Op::WriteRows if reads(3) && state(instr.operands[0]) => {
                    members.push(u);
                    return (rope, Dest::Rows(u));
                }
                _ => break,
            }
            members.push(u);
            v = instr.results[0];
        }
        (rope, Dest::Value(v))
    }
}

impl RotarySplit {
    /// The group, when it is worth a kernel (some piece is rotated or written
    /// to a cache) and can be one: f32, disjoint pieces, one positions operand
    /// for every rope, one slot and position operand for every pool write, and
    /// no reader of a member's result before the last member.
    fn checked(
        func: &Function,
        uses: &Uses,
        x: Operand,
        mut pieces: Vec<Piece>,
        mut members: Vec<usize>,
    ) -> Option<RotarySplit> {
        let Operand::Value(xv) = x else { return None };
        if func.value(xv).ty.dtype != DType::F32 {
            return None;
        }
        if pieces
            .iter()
            .all(|p| p.rope.is_none() && matches!(p.dest, Dest::Value(_)))
        {
            return None;
        }
        pieces.sort_by_key(|p| p.start);
        if pieces
            .windows(2)
            .any(|w| w[0].start + w[0].len > w[1].start)
        {
            return None;
        }
        let positions: HashSet<Operand> = pieces
            .iter()
            .filter_map(|p| p.rope.map(|r| func.body[r].operands[1]))
            .collect();
        let pools: HashSet<(Operand, Operand)> = pieces
            .iter()
            .filter_map(|p| match p.dest {
                Dest::Rows(w) => Some((func.body[w].operands[1], func.body[w].operands[2])),
                _ => None,
            })
            .collect();
        let i32_operand = |o: &Operand| match o {
            Operand::Value(v) => func.value(*v).ty.dtype == DType::I32,
            Operand::Param(_) => false,
        };
        if positions.len() > 1
            || pools.len() > 1
            || !positions.iter().all(i32_operand)
            || !pools.iter().all(|(s, p)| i32_operand(s) && i32_operand(p))
        {
            return None;
        }
        members.sort_unstable();
        let last = *members.last()?;
        let early_reader = members.iter().any(|&m| {
            func.body[m].results.iter().any(|r| {
                uses.readers.get(r).is_some_and(|rs| {
                    rs.iter()
                        .any(|&i| i < last && members.binary_search(&i).is_err())
                })
            })
        });
        (!early_reader).then_some(RotarySplit { x, pieces, members })
    }

    /// Body index the group is lowered at: its last member.
    pub fn at(&self) -> usize {
        self.members[self.members.len() - 1]
    }
}

/// Lowers a rotary split as one dispatch at its last member.
pub(crate) fn lower(cx: &mut LowerCx<'_>, g: &RotarySplit) -> Result<(), LowerError> {
    let func = cx.func;
    let at: &Instr = &func.body[g.at()];
    let x_dims = dims_of(cx.ty(g.x));
    let tokens = x_dims[0].clone();
    let width = SizeExpr::product(x_dims[1..].iter().cloned());
    let mut args = vec![whole(cx.operand(g.x))];
    if let Some(r) = g.pieces.iter().find_map(|p| p.rope) {
        args.push(whole(cx.operand(func.body[r].operands[1])));
    }
    let mut sizes: Vec<(String, SizeExpr)> =
        vec![("tokens".into(), tokens), ("width".into(), width.clone())];
    if let Some(w) = g.pieces.iter().find_map(|p| match p.dest {
        Dest::Rows(w) => Some(w),
        _ => None,
    }) {
        let write = &func.body[w];
        let pool = dims_of(cx.ty(write.operands[0]));
        args.push(whole(cx.operand(write.operands[1])));
        args.push(whole(cx.operand(write.operands[2])));
        sizes.push(("slots".into(), pool[0].clone()));
        sizes.push(("slot_len".into(), pool[1].clone()));
    }
    let mut kernel_pieces = Vec::new();
    let mut writes = Vec::new();
    for (j, p) in g.pieces.iter().enumerate() {
        let (dest, out) = match p.dest {
            Dest::Value(v) => (PieceDest::Out, cx.value_tensor(v)),
            Dest::Tail(w) | Dest::Rows(w) => {
                let write = &func.body[w];
                let buf = cx.operand(write.operands[0]);
                cx.alias(write.results[0], buf);
                if matches!(p.dest, Dest::Tail(_)) {
                    let rows = dims_of(cx.ty(write.operands[0]))[0].clone();
                    sizes.push((format!("rows{j}"), rows));
                    (PieceDest::Tail, buf)
                } else {
                    (PieceDest::Rows, buf)
                }
            }
        };
        let rope = match p.rope {
            Some(r) => {
                let Op::Rope { theta } = func.body[r].op else {
                    unreachable!("planned as a rope")
                };
                let head_dim = dims_of(cx.ty(func.body[r].operands[0]))[2].as_const();
                let head_dim = head_dim
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(|| {
                        cx.unsupported(&func.body[r], "a rotated piece needs a static head dim")
                    })?;
                Some(PieceRope { theta, head_dim })
            }
            None => None,
        };
        let (Ok(start), Ok(len)) = (u32::try_from(p.start), u32::try_from(p.len)) else {
            return Err(cx.unsupported(at, "a split piece past u32 columns"));
        };
        kernel_pieces.push(SplitPiece {
            start,
            len,
            rope,
            dest,
        });
        args.push(whole(out));
        writes.push(out);
    }
    let kernel = rotary_split(&kernel_pieces, kdim(&width), &cx.target.limits);
    let sizes = sizes.iter().map(|(n, e)| (n.as_str(), e.clone())).collect();
    cx.step(at, kernel, args, writes, sizes)
}
