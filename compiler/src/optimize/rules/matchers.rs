//! Small helpers rules use to look into e-classes.

use egg::Id;
use seam_ir::Op;

use crate::optimize::analysis::{leaf, tensor_type, SeamGraph};
use crate::optimize::language::{attrs_leaf, Leaf, SeamLang};

/// The first `f(node)` that is `Some` over the nodes of class `id`, in node order.
pub fn find_node<T>(
    egraph: &SeamGraph,
    id: Id,
    f: impl FnMut(&SeamLang) -> Option<T>,
) -> Option<T> {
    egraph[id].nodes.iter().find_map(f)
}

/// The op a metadata leaf class carries.
pub fn attrs(egraph: &SeamGraph, id: Id) -> Option<&Op> {
    match leaf(egraph, id) {
        Some(Leaf::Attrs(a)) => Some(a.op()),
        _ => None,
    }
}

/// The fill value of a `const` in class `id`, if it holds one.
pub fn const_value(egraph: &SeamGraph, id: Id) -> Option<f64> {
    find_node(egraph, id, |n| match n {
        SeamLang::Const(c) => match c.first().and_then(|&a| attrs(egraph, a)) {
            Some(Op::Const { value }) => Some(*value),
            _ => None,
        },
        _ => None,
    })
}

/// The param index of class `id`, if it is a param.
pub fn param(egraph: &SeamGraph, id: Id) -> Option<u32> {
    match leaf(egraph, id) {
        Some(Leaf::Param(p)) => Some(*p),
        _ => None,
    }
}

/// The two operands of a `matmul` in class `id`.
pub fn matmul_operands(egraph: &SeamGraph, id: Id) -> Option<(Id, Id)> {
    find_node(egraph, id, |n| match n {
        SeamLang::MatMul(c) if c.len() == 2 => Some((c[0], c[1])),
        _ => None,
    })
}

/// `reshape(slice(w, axis=0, start=e, end=e+1))` dropping the unit dim → `(w, e)`.
pub fn expert_matrix(egraph: &SeamGraph, id: Id) -> Option<(Id, u64)> {
    find_node(egraph, id, |n| match n {
        SeamLang::Reshape(c) if c.len() == 2 => {
            let declared = match leaf(egraph, c[0]) {
                Some(Leaf::Type(t)) => t,
                _ => return None,
            };
            find_node(egraph, c[1], |s| match s {
                SeamLang::Slice(sc) if sc.len() == 2 => match attrs(egraph, sc[0]) {
                    Some(Op::Slice {
                        axis: 0,
                        start,
                        end,
                    }) if *end == start + 1 => {
                        let mut sliced = tensor_type(egraph, c[1])?.clone();
                        sliced.shape.0.remove(0);
                        (sliced == *declared).then_some((sc[1], *start))
                    }
                    _ => None,
                },
                _ => None,
            })
        }
        _ => None,
    })
}

/// Adds the metadata leaf carrying `op`'s attributes (as
/// [`crate::optimize::language::attrs_leaf`] chooses it).
pub fn add_attrs(egraph: &mut SeamGraph, op: Op) -> Id {
    let leaf =
        attrs_leaf(&op).unwrap_or_else(|| Leaf::Attrs(crate::optimize::language::OpAttrs::new(op)));
    egraph.add(SeamLang::Leaf(leaf))
}
