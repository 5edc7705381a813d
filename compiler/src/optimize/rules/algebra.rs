//! Small targeted algebraic identities (no general commutativity or
//! associativity: they bloat the e-graph). Each right side is never worse than
//! its left, and each drops a node, so the simpler form wins extraction outright.

use egg::{rewrite, Id, Rewrite, Subst, Var};

use crate::optimize::analysis::{leaf, tensor_type, SeamGraph, TypeAnalysis};
use crate::optimize::language::{Leaf, SeamLang};
use crate::optimize::rules::matchers::const_value;

/// The algebra rules.
pub fn rules() -> Vec<Rewrite<SeamLang, TypeAnalysis>> {
    vec![
        // `reshape(reshape(x))` → `reshape(x)`: always legal, a reshape only
        // reinterprets the row-major element sequence, whatever shape it had before.
        rewrite!("reshape-reshape"; "(reshape ?t (reshape ?u ?x))" => "(reshape ?t ?x)"),
        // `reshape(x)` to x's own type → `x`: legal when the declared type equals x's.
        rewrite!("reshape-noop"; "(reshape ?t ?x)" => "?x" if declared_is("?t", "?x")),
        // `mul(x, const 1)` → `x`: legal when the product has x's type (the constant
        // does not broadcast x to a larger shape). Written for both operand orders.
        rewrite!("mul-one"; "(mul ?x ?c)" => "?x" if identity("?c", 1.0, "?x")),
        rewrite!("one-mul"; "(mul ?c ?x)" => "?x" if identity("?c", 1.0, "?x")),
        // `add(x, const 0)` → `x`: legal under the same type condition (x + 0 = x,
        // -0 becoming +0 aside). Written for both operand orders.
        rewrite!("add-zero"; "(add ?x ?c)" => "?x" if identity("?c", 0.0, "?x")),
        rewrite!("zero-add"; "(add ?c ?x)" => "?x" if identity("?c", 0.0, "?x")),
    ]
}

fn var(name: &str) -> Var {
    name.parse()
        .unwrap_or_else(|_| unreachable!("`{name}` is a variable"))
}

/// The type leaf bound to `t` equals the type of the class bound to `x`.
fn declared_is(t: &str, x: &str) -> impl Fn(&mut SeamGraph, Id, &Subst) -> bool {
    let (t, x) = (var(t), var(x));
    move |egraph, _, subst| match (leaf(egraph, subst[t]), tensor_type(egraph, subst[x])) {
        (Some(Leaf::Type(declared)), Some(actual)) => declared == actual,
        _ => false,
    }
}

/// The class bound to `c` is `const(value)` and the matched class has the type of `x`.
fn identity(c: &str, value: f64, x: &str) -> impl Fn(&mut SeamGraph, Id, &Subst) -> bool {
    let (c, x) = (var(c), var(x));
    move |egraph, matched, subst| {
        const_value(egraph, subst[c]) == Some(value)
            && tensor_type(egraph, matched).is_some()
            && tensor_type(egraph, matched) == tensor_type(egraph, subst[x])
    }
}
