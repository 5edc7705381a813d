//! The naive per-expert dense form → `moe`.
//!
//! Importers and [`seam_ir::expand_moe`] write a mixture of experts as one block
//! per expert `e` (see that function's docs for the exact instructions):
//!
//! ```text
//! out_e = mul(matmul(mul(act(matmul(x, G_e)), matmul(x, U_e)), D_e), scale_e)
//! G_e   = reshape(slice(w_gate, axis=0, start=e, end=e+1))   (U_e, D_e alike)
//! scale_e = reshape(reduce_sum(mul(cast(eq(ids, const e)), weights)))
//! ```
//!
//! summed with `add`, plus optionally an always-on gated FFN (the shared expert).
//! [`DenseToMoe`] recognises such a sum in one e-class and adds
//! `moe(x, ids, weights, w_gate, w_up, w_down[, s_gate, s_up, s_down], act)` to it.
//!
//! Legality ([`recognize`]), every condition required:
//! 1. every block reads the same `x`, `ids`, `weights`, stacked weights and activation;
//! 2. the blocks' expert indices are exactly `0..E`, each once, `E` the static
//!    leading dim of `w_gate`;
//! 3. the ids are provably in `0..E` — result 0 of a `route` or `topk` over a last
//!    axis of static size ≤ `E` — because the dense form gives 0 for an
//!    out-of-range id while `moe` rejects it;
//! 4. a shared expert, if any, reads the same `x` with the same activation;
//! 5. the `moe` type-checks to exactly the type of the e-class.
//!
//! With a shared expert the rule fires twice per layer: once on the experts'
//! sum alone (a `moe` without shared expert) and once on the whole sum.
//!
//! The sum may be in any association and order (`moe` sums in its own order; the
//! results agree up to float rounding). Each class is matched greedily: the first
//! node of a class that matches is taken.
//!
//! Dropping the combine for top-1 routing with weight 1 (Read-ME) needs no
//! rule: the `moe` lowering does it when the ids and weights come from a
//! `route {k=1, mode=topk_softmax}` (see `crate::lower`).

use egg::{Id, Language, Rewrite};
use seam_ir::infer::infer;
use seam_ir::{BinaryFn, Dim, GatedAct, Op, TensorType, UnaryFn};

use crate::optimize::analysis::{leaf, tensor_type, SeamGraph, TypeAnalysis};
use crate::optimize::language::{Leaf, SeamLang};
use crate::optimize::rules::matchers::{const_value, expert_matrix, find_node, matmul_operands};
use crate::optimize::rules::whole_class::{class_rewrite, ClassRule};

/// The expert rules: `dense-to-moe`, and `masked-to-grouped`
/// ([`super::modalities`]), which groups per-modality projections the same way.
pub fn rules() -> Result<Vec<Rewrite<SeamLang, TypeAnalysis>>, String> {
    Ok(vec![
        class_rewrite::<DenseToMoe>("dense-to-moe")?,
        class_rewrite::<super::modalities::MaskedToGrouped>("masked-to-grouped")?,
    ])
}

/// The class rule of `dense-to-moe`.
pub struct DenseToMoe;

/// A recognised dense form: the `moe` to add.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeMatch {
    /// The gated activation.
    pub act: GatedAct,
    /// `x, ids, weights, w_gate, w_up, w_down[, s_gate, s_up, s_down]`.
    pub operands: Vec<Id>,
}

/// A gated FFN `matmul(mul(act(matmul(x, gate)), matmul(x, up)), down)`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ffn {
    x: Id,
    gate: Id,
    up: Id,
    down: Id,
    act: GatedAct,
}

/// One expert block: expert `e` of the stacked weights, scaled by its routing weight.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Block {
    e: u64,
    /// `x, ids, weights, w_gate, w_up, w_down`.
    key: [Id; 6],
    act: GatedAct,
}

#[derive(Clone, Default)]
struct Parts {
    blocks: Vec<Block>,
    shared: Option<Ffn>,
}

/// Deepest `add` nesting explored (bounds the search on long residual chains).
const MAX_DEPTH: usize = 4096;

fn activation(egraph: &SeamGraph, id: Id) -> Option<(GatedAct, Id)> {
    find_node(egraph, id, |n| match n {
        SeamLang::Unary(UnaryFn::Silu, c) if c.len() == 1 => Some((GatedAct::SwiGlu, c[0])),
        // The children of `gelu` are its `approx` leaf and the operand.
        SeamLang::Unary(UnaryFn::GeluErf, c) if c.len() == 2 => Some((GatedAct::GeGlu, c[1])),
        _ => None,
    })
}

fn gated_ffn(egraph: &SeamGraph, id: Id) -> Option<Ffn> {
    let (h, down) = matmul_operands(egraph, id)?;
    find_node(egraph, h, |n| match n {
        SeamLang::Binary(BinaryFn::Mul, c) if c.len() == 2 => {
            let (act, gx) = activation(egraph, c[0])?;
            let (x, gate) = matmul_operands(egraph, gx)?;
            let (x2, up) = matmul_operands(egraph, c[1])?;
            (x == x2).then_some(Ffn {
                x,
                gate,
                up,
                down,
                act,
            })
        }
        _ => None,
    })
}

/// `reshape(reduce_sum(mul(cast(eq(ids, const e)), weights)))` → `(ids, weights, e)`.
fn routing_scale(egraph: &SeamGraph, id: Id) -> Option<(Id, Id, u64)> {
    let child = |id: Id, f: fn(&SeamLang) -> bool| {
        find_node(egraph, id, |n| f(n).then(|| n.children().to_vec()))
    };
    let reshaped = child(id, |n| matches!(n, SeamLang::Reshape(c) if c.len() == 2))?;
    let summed = child(
        reshaped[1],
        |n| matches!(n, SeamLang::ReduceSum(c) if c.len() == 1),
    )?;
    let product = child(
        summed[0],
        |n| matches!(n, SeamLang::Binary(BinaryFn::Mul, c) if c.len() == 2),
    )?;
    let cast = child(
        product[0],
        |n| matches!(n, SeamLang::Cast(c) if c.len() == 2),
    )?;
    if !tensor_type(egraph, product[0])?.dtype.is_float() {
        return None;
    }
    let hit = child(
        cast[1],
        |n| matches!(n, SeamLang::Binary(BinaryFn::Eq, c) if c.len() == 2),
    )?;
    let e = const_value(egraph, hit[1])?;
    let scalar = tensor_type(egraph, hit[1])?.rank() == 0;
    (scalar && e >= 0.0 && e.fract() == 0.0).then_some((hit[0], product[1], e as u64))
}

fn block(egraph: &SeamGraph, id: Id) -> Option<Block> {
    find_node(egraph, id, |n| match n {
        SeamLang::Binary(BinaryFn::Mul, c) if c.len() == 2 => {
            let ffn = gated_ffn(egraph, c[0])?;
            let (wg, e) = expert_matrix(egraph, ffn.gate)?;
            let (wu, eu) = expert_matrix(egraph, ffn.up)?;
            let (wd, ed) = expert_matrix(egraph, ffn.down)?;
            let (ids, weights, es) = routing_scale(egraph, c[1])?;
            (e == eu && e == ed && e == es).then_some(Block {
                e,
                key: [ffn.x, ids, weights, wg, wu, wd],
                act: ffn.act,
            })
        }
        _ => None,
    })
}

/// Collects the expert blocks (and at most one shared FFN) of an `add` tree.
fn collect(egraph: &SeamGraph, id: Id, parts: &mut Parts, depth: usize) -> bool {
    if depth == 0 {
        return false;
    }
    if let Some(b) = block(egraph, id) {
        parts.blocks.push(b);
        return true;
    }
    if parts.shared.is_none() {
        if let Some(f) = gated_ffn(egraph, id) {
            parts.shared = Some(f);
            return true;
        }
    }
    for node in &egraph[id].nodes {
        if let SeamLang::Binary(BinaryFn::Add, c) = node {
            if c.len() != 2 {
                continue;
            }
            let saved = parts.clone();
            if collect(egraph, c[0], parts, depth - 1) && collect(egraph, c[1], parts, depth - 1) {
                return true;
            }
            *parts = saved;
        }
    }
    false
}

/// Whether `ids` is result 0 of a `route` or `topk` choosing among at most `experts`.
fn ids_in_range(egraph: &SeamGraph, ids: Id, experts: u64) -> bool {
    let within = |id: Id| {
        tensor_type(egraph, id)
            .and_then(|t| t.shape.last())
            .is_some_and(|d| matches!(d, Dim::Static(n) if *n <= experts))
    };
    find_node(egraph, ids, |n| match n {
        SeamLang::Get([index, tuple]) if leaf(egraph, *index) == Some(&Leaf::Index(0)) => {
            find_node(egraph, *tuple, |t| match t {
                SeamLang::Route(c) | SeamLang::TopK(c) if c.len() >= 2 => {
                    within(c[1]).then_some(())
                }
                _ => None,
            })
        }
        _ => None,
    })
    .is_some()
}

/// The `moe` equal to the dense form in class `id`, if it is one and the
/// rewrite is legal (see the module docs).
pub fn recognize(egraph: &SeamGraph, id: Id) -> Option<MoeMatch> {
    if !egraph[id].nodes.iter().any(|n| {
        matches!(
            n,
            SeamLang::Binary(BinaryFn::Add, _) | SeamLang::Binary(BinaryFn::Mul, _)
        )
    }) {
        return None;
    }
    let mut parts = Parts::default();
    if !collect(egraph, id, &mut parts, MAX_DEPTH) {
        return None;
    }
    let first = *parts.blocks.first()?;
    let [x, ids, _, wg, _, _] = first.key;
    if parts
        .blocks
        .iter()
        .any(|b| b.key != first.key || b.act != first.act)
    {
        return None;
    }
    let experts = match tensor_type(egraph, wg)?.shape.dims().first()? {
        Dim::Static(n) => *n,
        Dim::Sym(_) => return None,
    };
    let mut seen: Vec<u64> = parts.blocks.iter().map(|b| b.e).collect();
    seen.sort_unstable();
    if !seen.iter().copied().eq(0..experts) || !ids_in_range(egraph, ids, experts) {
        return None;
    }
    let mut operands = first.key.to_vec();
    if let Some(s) = parts.shared {
        if s.x != x || s.act != first.act {
            return None;
        }
        operands.extend([s.gate, s.up, s.down]);
    }
    let op = Op::Moe { act: first.act };
    let types: Option<Vec<&TensorType>> =
        operands.iter().map(|&o| tensor_type(egraph, o)).collect();
    let class_ty = tensor_type(egraph, id)?;
    let inferred = infer(&op, &types?, std::slice::from_ref(class_ty)).ok()?;
    (inferred.as_slice() == std::slice::from_ref(class_ty)).then_some(MoeMatch {
        act: first.act,
        operands,
    })
}

impl ClassRule for DenseToMoe {
    fn plan(egraph: &SeamGraph, eclass: Id) -> Option<(Op, Vec<Id>)> {
        recognize(egraph, eclass).map(|m| (Op::Moe { act: m.act }, m.operands))
    }

    fn node(children: Box<[Id]>) -> SeamLang {
        SeamLang::Moe(children)
    }
}
