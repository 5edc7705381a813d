//! Kernel fusion: a gated activation and a bias or residual add as epilogues of
//! a matmul, and chains of element-wise ops as one `fused` kernel.
//!
//! Every rule adds the fused form to the e-class it equals; extraction under
//! the cost model (one dispatch, the real bytes and FLOPs) decides. All rules
//! require f32 values: the fused forms compute every step in f32 exactly as the
//! unfused ops do, so their results are bit-identical; for f16 the single final
//! rounding would differ from the per-op rounding.
//!
//! A producer is only folded into a consumer when the consumer is its only
//! user ([`only_used_by`]): folding a shared matmul would compute it twice, and
//! folding a shared element-wise producer saves no dispatch (the producer runs
//! for its other users anyway) while reading its inputs again.

use std::collections::BTreeSet;

use egg::{rewrite, Id, Language, Rewrite, Subst, Var};
use seam_ir::infer::infer;
use seam_ir::{DType, FusedExpr, GatedAct, Op, TensorType, UnaryFn};

use crate::optimize::analysis::{tensor_type, SeamGraph, TypeAnalysis};
use crate::optimize::language::SeamLang;
use crate::optimize::rules::matchers::{attrs, const_value};
use crate::optimize::rules::whole_class::{class_rewrite, ClassRule};

/// Most operands of a `fused` kernel (each is a storage binding; with the
/// output this stays within the 8 storage buffers every device offers).
pub const MAX_FUSED_OPERANDS: usize = 6;

/// Most function applications in one fused expression.
pub const MAX_FUSED_OPS: usize = 64;

/// The fusion rules' names: each matches an e-class at most once per distinct
/// fused form and never matches its own output, so saturation need not back
/// off from them however many classes they match (see [`crate::optimize::saturate`]).
pub const NAMES: &[&str] = &[
    "gated-swiglu",
    "gated-swiglu-rev",
    "gated-geglu",
    "gated-geglu-rev",
    "matmul-add",
    "matmul-add-rev",
    "fuse-elementwise",
];

/// The fusion rules.
pub fn rules() -> Result<Vec<Rewrite<SeamLang, TypeAnalysis>>, String> {
    Ok(vec![
        // `mul(silu(x·Wg), x·Wu)`, either operand order → `gated_matmul {act=swiglu}`.
        // Legal when the three classes are single-use, x is f32 of rank ≥ 2 and
        // Wg, Wu rank-2 of one type; the gated product then equals the class.
        rewrite!("gated-swiglu"; "(mul (silu (matmul ?x ?wg)) (matmul ?x ?wu))"
            => "(gated_matmul swiglu ?x ?wg ?wu)" if gated_fits(GatedAct::SwiGlu)),
        rewrite!("gated-swiglu-rev"; "(mul (matmul ?x ?wu) (silu (matmul ?x ?wg)))"
            => "(gated_matmul swiglu ?x ?wg ?wu)" if gated_fits(GatedAct::SwiGlu)),
        // The same with the exact GELU → `act=geglu` (GeGLU's activation is the
        // exact GELU; `gelu_tanh` does not match and never fuses). A `gelu` node's
        // first child is its `approx` leaf.
        rewrite!("gated-geglu"; "(mul (gelu_erf ?approx (matmul ?x ?wg)) (matmul ?x ?wu))"
            => "(gated_matmul geglu ?x ?wg ?wu)" if gated_fits(GatedAct::GeGlu)),
        rewrite!("gated-geglu-rev"; "(mul (matmul ?x ?wu) (gelu_erf ?approx (matmul ?x ?wg)))"
            => "(gated_matmul geglu ?x ?wg ?wu)" if gated_fits(GatedAct::GeGlu)),
        // `add(x·W, r)`, either order → `matmul_add(x, W, r)`: legal when W is
        // rank 2, the values are f32, the product is used only by this add, and r
        // is a bias `[N]` or has the product's type (so the add does not enlarge
        // the product and `matmul_add`'s two addend forms cover it).
        rewrite!("matmul-add"; "(add (matmul ?x ?w) ?r)" => "(matmul_add ?x ?w ?r)"
            if addend_fits("?x", "?w", "?r")),
        rewrite!("matmul-add-rev"; "(add ?r (matmul ?x ?w))" => "(matmul_add ?x ?w ?r)"
            if addend_fits("?x", "?w", "?r")),
        // Element-wise chains → one `fused` op (see [`FuseElementwise`]).
        class_rewrite::<FuseElementwise>("fuse-elementwise")?,
    ])
}

fn var(name: &str) -> Var {
    name.parse()
        .unwrap_or_else(|_| unreachable!("`{name}` is a variable"))
}

fn is_f32(t: Option<&TensorType>) -> bool {
    t.is_some_and(|t| t.dtype == DType::F32)
}

/// Whether every user of class `id` (every e-node that has it as a child) lies
/// in one of the classes `users`.
pub fn only_used_by(egraph: &SeamGraph, id: Id, users: &[Id]) -> bool {
    egraph[egraph.find(id)]
        .parents()
        .all(|p| users.contains(&egraph.find(p)))
}

/// The matmul in the matched class `(add …)` is used only there, `w` is rank 2,
/// everything is f32 and `r` is a bias `[N]` or has the product's type.
fn addend_fits(x: &str, w: &str, r: &str) -> impl Fn(&mut SeamGraph, Id, &Subst) -> bool {
    let (x, w, r) = (var(x), var(w), var(r));
    move |egraph, matched, subst| {
        let Some(product) = matmul_class(egraph, subst[x], subst[w]) else {
            return false;
        };
        let (Some(pt), Some(wt), Some(rt)) = (
            tensor_type(egraph, product),
            tensor_type(egraph, subst[w]),
            tensor_type(egraph, subst[r]),
        ) else {
            return false;
        };
        let bias = rt.shape.dims() == &pt.shape.dims()[pt.rank() - 1..];
        wt.rank() == 2
            && is_f32(Some(pt))
            && rt.dtype == DType::F32
            && (bias || rt == pt)
            && tensor_type(egraph, matched) == Some(pt)
            && only_used_by(egraph, product, &[egraph.find(matched)])
    }
}

/// The class of `matmul(x, w)`, if the e-graph holds it.
fn matmul_class(egraph: &SeamGraph, x: Id, w: Id) -> Option<Id> {
    egraph.lookup(SeamLang::MatMul(vec![x, w].into()))
}

/// The legality of a gated rule matched at class `matched`: `x` is f32, the
/// gated product type-checks to exactly the matched class's type, and the gate
/// product, its activation and the up product are used only inside the match
/// (so nothing else still needs them once the class is a `gated_matmul`).
fn gated_fits(act: GatedAct) -> impl Fn(&mut SeamGraph, Id, &Subst) -> bool {
    let (x, wg, wu, approx) = (var("?x"), var("?wg"), var("?wu"), var("?approx"));
    move |egraph, matched, subst| {
        let (Some(gate), Some(up)) = (
            matmul_class(egraph, subst[x], subst[wg]),
            matmul_class(egraph, subst[x], subst[wu]),
        ) else {
            return false;
        };
        let activation = match act {
            GatedAct::SwiGlu => SeamLang::Unary(UnaryFn::Silu, vec![gate].into()),
            GatedAct::GeGlu => SeamLang::Unary(UnaryFn::GeluErf, vec![subst[approx], gate].into()),
        };
        let Some(activated) = egraph.lookup(activation) else {
            return false;
        };
        let class = egraph.find(matched);
        let types: Option<Vec<&TensorType>> = [x, wg, wu]
            .iter()
            .map(|&v| tensor_type(egraph, subst[v]))
            .collect();
        let typed = types.is_some_and(|t| {
            is_f32(Some(t[0]))
                && infer(&Op::GatedMatMul { act }, &t, &[t[0].clone()])
                    .ok()
                    .as_deref()
                    == tensor_type(egraph, class).map(std::slice::from_ref)
        });
        typed
            && only_used_by(egraph, gate, &[activated, class])
            && only_used_by(egraph, activated, &[class])
            && only_used_by(egraph, up, &[class])
    }
}

/// Searcher and applier of `fuse-elementwise`: for every f32 class holding an
/// element-wise op (a unary function, a binary one allowed in a fused
/// expression, or a `fused`), the largest region of element-wise producers below it that
///
/// 1. have exactly the class's shape (a producer that broadcasts into the class
///    would be recomputed per output element: it stays an operand), and
/// 2. are used only inside the region (see the module docs),
///
/// becomes one `fused` node, with scalar f32 `const`s inlined as literals. The
/// region grows to a fixpoint, so a chain fuses in one step and a `fused` of
/// `fused` ops merges. Legal because each fused element evaluates the same f32
/// functions on the same broadcast elements as the ops it replaces (numpy
/// broadcasting composes: broadcasting an operand to a producer's shape and that
/// to the result's equals broadcasting it to the result's directly); the
/// `fused` node must type-check to exactly the class's type. A region that
/// needs more than [`MAX_FUSED_OPERANDS`] operands or [`MAX_FUSED_OPS`]
/// functions is not fused (the regions rooted at its members still are).
pub struct FuseElementwise;

/// A `fused` op to add: its expression and operand classes.
#[derive(Clone, Debug, PartialEq)]
pub struct FusionPlan {
    /// The expression over `$0…`.
    pub expr: FusedExpr,
    /// The operand classes, in `$i` order.
    pub operands: Vec<Id>,
}

/// An element-wise node of class `id` as an expression template over its
/// operand children (`$i` = `children[i]`); plain ops before `fused` ones, and
/// never a node that reads its own class (identity rules create such nodes).
fn elementwise_node(egraph: &SeamGraph, id: Id) -> Option<(FusedExpr, Vec<Id>)> {
    let id = egraph.find(id);
    let nodes: Vec<&SeamLang> = egraph[id]
        .nodes
        .iter()
        .filter(|n| n.children().iter().all(|&c| egraph.find(c) != id))
        .collect();
    let plain = nodes.iter().find_map(|n| match n {
        SeamLang::Binary(f, c) if c.len() == 2 && f.in_fused() => {
            let (a, b) = (FusedExpr::Operand(0), FusedExpr::Operand(1));
            Some((FusedExpr::binary(*f, a, b), vec![c[0], c[1]]))
        }
        // A function picked by an attribute has that attribute's leaf first.
        SeamLang::Unary(f, c) if c.len() == 1 + usize::from(f.op_attr().is_some()) => {
            let x = c[c.len() - 1];
            Some((FusedExpr::unary(*f, FusedExpr::Operand(0)), vec![x]))
        }
        _ => None,
    });
    plain.or_else(|| {
        nodes.iter().find_map(|n| match n {
            SeamLang::Fused(c) if c.len() >= 2 => match attrs(egraph, c[0]) {
                Some(Op::Fused { expr }) => Some((expr.clone(), c[1..].to_vec())),
                _ => None,
            },
            _ => None,
        })
    })
}

/// Whether `node` is one of the ops [`elementwise_node`] reads (a cheap pre-check).
fn is_elementwise(node: &SeamLang) -> bool {
    match node {
        SeamLang::Binary(f, _) => f.in_fused(),
        SeamLang::Unary(..) | SeamLang::Fused(_) => true,
        _ => false,
    }
}

/// The fusion rooted at class `root`, if it fuses anything (see [`FuseElementwise`]).
pub fn plan_fusion(egraph: &SeamGraph, root: Id) -> Option<FusionPlan> {
    let root = egraph.find(root);
    if !egraph[root].nodes.iter().any(is_elementwise) {
        return None;
    }
    let root_ty = tensor_type(egraph, root)?;
    if root_ty.dtype != DType::F32 {
        return None;
    }
    elementwise_node(egraph, root)?;
    let region = grow_region(egraph, root, root_ty)?;
    let mut builder = Builder {
        egraph,
        region: &region,
        operands: Vec::new(),
        consts: 0,
        ops: 0,
    };
    let expr = builder.build(root)?;
    if region.len() < 2 && builder.consts == 0 {
        return None;
    }
    let operands = builder.operands;
    if operands.is_empty() || operands.len() > MAX_FUSED_OPERANDS {
        return None;
    }
    let op = Op::Fused { expr };
    let types: Option<Vec<&TensorType>> =
        operands.iter().map(|&o| tensor_type(egraph, o)).collect();
    let inferred = infer(&op, &types?, std::slice::from_ref(root_ty)).ok()?;
    let Op::Fused { expr } = op else {
        unreachable!("built as a fused op")
    };
    (inferred.as_slice() == std::slice::from_ref(root_ty)).then_some(FusionPlan { expr, operands })
}

/// The region of [`FuseElementwise`] rooted at `root` (of type `ty`): a
/// worklist over members' operand classes; a class refused only because some
/// user is not (yet) in the region is retried whenever the region grows.
/// `None` when it exceeds [`MAX_FUSED_OPS`] members.
fn grow_region(egraph: &SeamGraph, root: Id, ty: &TensorType) -> Option<BTreeSet<Id>> {
    let mut region = BTreeSet::from([root]);
    let mut work = vec![root];
    let mut waiting: BTreeSet<Id> = BTreeSet::new();
    let users_inside = |region: &BTreeSet<Id>, k: Id| {
        egraph[k].parents().all(|p| {
            let p = egraph.find(p);
            p == k || region.contains(&p)
        })
    };
    // Classes that can never join (not element-wise, another type): operands
    // for sure, so more than MAX_FUSED_OPERANDS of them end the search early.
    let mut outside: BTreeSet<Id> = BTreeSet::new();
    while let Some(c) = work.pop() {
        let Some((_, kids)) = elementwise_node(egraph, c) else {
            continue;
        };
        for k in kids.into_iter().map(|k| egraph.find(k)) {
            if region.contains(&k) {
                continue;
            }
            let kt = tensor_type(egraph, k);
            if kt != Some(ty) || elementwise_node(egraph, k).is_none() {
                let scalar = kt.is_some_and(|t| t.shape.dims().iter().all(|d| d.is_one()));
                if !scalar {
                    outside.insert(k);
                }
                if outside.len() > MAX_FUSED_OPERANDS {
                    return None;
                }
                continue;
            }
            waiting.insert(k);
        }
        // Admit every waiting class whose users are all inside, to a fixpoint.
        let mut grew = true;
        while grew {
            grew = false;
            let ready: Vec<Id> = waiting
                .iter()
                .copied()
                .filter(|&k| users_inside(&region, k))
                .collect();
            for k in ready {
                waiting.remove(&k);
                region.insert(k);
                work.push(k);
                grew = true;
            }
            // Every member adds at least one function: too large to fuse.
            if region.len() > MAX_FUSED_OPS {
                return None;
            }
        }
    }
    Some(region)
}

/// Builds the expression of a region top-down.
struct Builder<'a> {
    egraph: &'a SeamGraph,
    region: &'a BTreeSet<Id>,
    operands: Vec<Id>,
    consts: usize,
    ops: usize,
}

impl Builder<'_> {
    fn build(&mut self, id: Id) -> Option<FusedExpr> {
        let id = self.egraph.find(id);
        if self.region.contains(&id) {
            let (template, kids) = elementwise_node(self.egraph, id)?;
            self.ops += template.ops();
            if self.ops > MAX_FUSED_OPS {
                return None;
            }
            let kids: Option<Vec<FusedExpr>> = kids.iter().map(|&k| self.build(k)).collect();
            let kids = kids?;
            return Some(template.map_operands(&|i| kids[i].clone()));
        }
        let scalar = tensor_type(self.egraph, id)
            .is_some_and(|t| t.dtype == DType::F32 && t.shape.dims().iter().all(|d| d.is_one()));
        if let (true, Some(v)) = (scalar, const_value(self.egraph, id)) {
            self.consts += 1;
            return Some(FusedExpr::Const(v as f32));
        }
        let i = match self.operands.iter().position(|&o| o == id) {
            Some(i) => i,
            None => {
                self.operands.push(id);
                self.operands.len() - 1
            }
        };
        Some(FusedExpr::Operand(i))
    }
}

impl ClassRule for FuseElementwise {
    fn plan(egraph: &SeamGraph, eclass: Id) -> Option<(Op, Vec<Id>)> {
        plan_fusion(egraph, eclass).map(|p| (Op::Fused { expr: p.expr }, p.operands))
    }

    fn node(children: Box<[Id]>) -> SeamLang {
        SeamLang::Fused(children)
    }
}
