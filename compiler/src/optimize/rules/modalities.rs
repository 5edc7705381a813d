//! The naive masked per-modality projection → `grouped_matmul`
//! (Mixture-of-Transformers).
//!
//! A per-modality projection in its naive form computes every modality's
//! dense product for all tokens and keeps each token's own with 0/1 masks:
//!
//! ```text
//! y = Σ_e mul(matmul(x, W_e), mask_e)        (a sum of adds, any association)
//! W_e    = reshape(slice(w, axis=0, start=e, end=e+1))     w: [E, K, N]
//! mask_e = reshape(cast(eq(ids, const e)))                 ids: int [T] → f32[T, 1]
//! ```
//!
//! [`MaskedToGrouped`] recognises such a sum in one e-class and adds
//! `grouped_matmul(x, ids, w)` to it: one grouped dispatch instead of `E`
//! dense products, `E` masks and `E − 1` adds.
//!
//! Legality ([`recognize`]), every condition required:
//! 1. every term reads the same `x`, the same stack `w` and the same `ids`;
//! 2. the masks are a one-hot of that one id input: each is `eq(ids, e)` of an
//!    integer `ids` of rank 1 (one id per token) with a scalar integer
//!    constant `e`, cast to a float and reshaped to a column — so for each
//!    token at most one mask is 1, the one of its id (arbitrary float masks,
//!    or masks of several id inputs, do not match);
//! 3. the terms' indices are exactly `0..E`, each once, `E` the static leading
//!    dim of `w`: then `y[t] = x[t]·w[ids[t]]` for every id in `0..E`, which is
//!    `grouped_matmul` (the sum's order only changes float rounding, and the
//!    other terms are exact zeros while the products are finite: a NaN or
//!    infinite product of another modality, which the masked form turns into
//!    a NaN row, does not reach the grouped form's row);
//! 4. the `grouped_matmul` type-checks to exactly the type of the e-class.
//!
//! The ids are the model's modality ids, in `0..E` by the model's input
//! contract (exactly one modality per token). An id outside `0..E` gets a zero
//! row from the masked form but is rejected by `grouped_matmul` (an
//! evaluation error; `seam run` refuses such an input before running, its
//! bound read from the op), so a violated contract is reported, not hidden.

use egg::{Id, Language};
use seam_ir::infer::infer;
use seam_ir::{BinaryFn, Dim, Op, TensorType};

use crate::optimize::analysis::{tensor_type, SeamGraph};
use crate::optimize::language::SeamLang;
use crate::optimize::rules::matchers::{const_value, expert_matrix, find_node, matmul_operands};
use crate::optimize::rules::whole_class::ClassRule;

/// The class rule of `masked-to-grouped`.
pub struct MaskedToGrouped;

/// One term `mul(matmul(x, W_e), mask_e)`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Term {
    e: u64,
    /// `x, ids, w`.
    key: [Id; 3],
}

/// Deepest `add` nesting explored.
const MAX_DEPTH: usize = 64;

/// The children of the first node of class `id` that `f` accepts.
fn child(egraph: &SeamGraph, id: Id, f: fn(&SeamLang) -> bool) -> Option<Vec<Id>> {
    find_node(egraph, id, |n| f(n).then(|| n.children().to_vec()))
}

/// `reshape(cast(eq(ids, const e)))` to a float `[T, 1]`, `ids` an integer
/// `[T]` and `e` a scalar integer constant → `(ids, e)`.
fn one_hot_mask(egraph: &SeamGraph, id: Id) -> Option<(Id, u64)> {
    let column = tensor_type(egraph, id)?;
    if !column.dtype.is_float() || column.rank() != 2 || column.shape.dims()[1] != Dim::Static(1) {
        return None;
    }
    let reshaped = child(
        egraph,
        id,
        |n| matches!(n, SeamLang::Reshape(c) if c.len() == 2),
    )?;
    let cast = child(
        egraph,
        reshaped[1],
        |n| matches!(n, SeamLang::Cast(c) if c.len() == 2),
    )?;
    let hit = child(
        egraph,
        cast[1],
        |n| matches!(n, SeamLang::Binary(BinaryFn::Eq, c) if c.len() == 2),
    )?;
    let (ids, constant) = (hit[0], hit[1]);
    let ids_ty = tensor_type(egraph, ids)?;
    let const_ty = tensor_type(egraph, constant)?;
    let e = const_value(egraph, constant)?;
    let one_per_token = ids_ty.dtype.is_int() && ids_ty.rank() == 1;
    let scalar_int = const_ty.dtype.is_int() && const_ty.rank() == 0;
    let index = e >= 0.0 && e.fract() == 0.0;
    (one_per_token && scalar_int && index).then_some((ids, e as u64))
}

/// `mul(matmul(x, W_e), mask_e)`, in either operand order.
fn term(egraph: &SeamGraph, id: Id) -> Option<Term> {
    find_node(egraph, id, |n| match n {
        SeamLang::Binary(BinaryFn::Mul, c) if c.len() == 2 => [(c[0], c[1]), (c[1], c[0])]
            .into_iter()
            .find_map(|(product, mask)| {
                let (x, w_e) = matmul_operands(egraph, product)?;
                let (w, e) = expert_matrix(egraph, w_e)?;
                let (ids, es) = one_hot_mask(egraph, mask)?;
                (e == es).then_some(Term {
                    e,
                    key: [x, ids, w],
                })
            }),
        _ => None,
    })
}

/// Collects the terms of an `add` tree.
fn collect(egraph: &SeamGraph, id: Id, terms: &mut Vec<Term>, depth: usize) -> bool {
    if depth == 0 {
        return false;
    }
    if let Some(t) = term(egraph, id) {
        terms.push(t);
        return true;
    }
    for node in &egraph[id].nodes {
        if let SeamLang::Binary(BinaryFn::Add, c) = node {
            if c.len() != 2 {
                continue;
            }
            let saved = terms.len();
            if collect(egraph, c[0], terms, depth - 1) && collect(egraph, c[1], terms, depth - 1) {
                return true;
            }
            terms.truncate(saved);
        }
    }
    false
}

/// The `grouped_matmul` operands `[x, ids, w]` equal to the masked form in
/// class `id`, if it is one and the rewrite is legal (see the module docs).
pub fn recognize(egraph: &SeamGraph, id: Id) -> Option<[Id; 3]> {
    if !egraph[id].nodes.iter().any(|n| {
        matches!(
            n,
            SeamLang::Binary(BinaryFn::Add, _) | SeamLang::Binary(BinaryFn::Mul, _)
        )
    }) {
        return None;
    }
    let mut terms = Vec::new();
    if !collect(egraph, id, &mut terms, MAX_DEPTH) {
        return None;
    }
    let key = terms.first()?.key;
    if terms.iter().any(|t| t.key != key) {
        return None;
    }
    let experts = match tensor_type(egraph, key[2])?.shape.dims().first()? {
        Dim::Static(n) => *n,
        Dim::Sym(_) => return None,
    };
    let mut seen: Vec<u64> = terms.iter().map(|t| t.e).collect();
    seen.sort_unstable();
    if !seen.iter().copied().eq(0..experts) {
        return None;
    }
    let types: Option<Vec<&TensorType>> = key.iter().map(|&o| tensor_type(egraph, o)).collect();
    let class_ty = tensor_type(egraph, id)?;
    let inferred = infer(&Op::GroupedMatMul, &types?, std::slice::from_ref(class_ty)).ok()?;
    (inferred.as_slice() == std::slice::from_ref(class_ty)).then_some(key)
}

impl ClassRule for MaskedToGrouped {
    fn plan(egraph: &SeamGraph, eclass: Id) -> Option<(Op, Vec<Id>)> {
        recognize(egraph, eclass).map(|key| (Op::GroupedMatMul, key.to_vec()))
    }

    fn node(children: Box<[Id]>) -> SeamLang {
        SeamLang::GroupedMatMul(children)
    }
}
