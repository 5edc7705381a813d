//! Rules that recognise a whole tensor e-class by analysis, with no pattern:
//! a [`ClassRule`] plans one op over other classes, and [`WholeClass`] is its
//! egg searcher (one empty substitution where the plan exists) and applier (adds
//! the op and unions it into the class).

use std::marker::PhantomData;

use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use seam_ir::Op;

use crate::optimize::analysis::{ClassType, SeamGraph, TypeAnalysis};
use crate::optimize::language::{attrs_leaf, SeamLang};

/// A rule recognising a whole e-class and adding one op equal to it.
pub trait ClassRule: 'static {
    /// The op equal to class `eclass` and its operand classes, if recognised.
    fn plan(egraph: &SeamGraph, eclass: Id) -> Option<(Op, Vec<Id>)>;

    /// The node of the op over `children` (its attributes leaf first, when
    /// the op has attributes).
    fn node(children: Box<[Id]>) -> SeamLang;
}

/// The egg searcher and applier of a [`ClassRule`].
pub struct WholeClass<R>(PhantomData<fn() -> R>);

/// The rewrite `name` running class rule `R`.
pub fn class_rewrite<R: ClassRule>(name: &str) -> Result<Rewrite<SeamLang, TypeAnalysis>, String> {
    Rewrite::new(
        name,
        WholeClass::<R>(PhantomData),
        WholeClass::<R>(PhantomData),
    )
}

impl<R: ClassRule> Searcher<SeamLang, TypeAnalysis> for WholeClass<R> {
    fn search_eclass_with_limit(
        &self,
        egraph: &SeamGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, SeamLang>> {
        let tensor = matches!(egraph[eclass].data, ClassType::Tensor(_));
        if limit == 0 || !tensor || R::plan(egraph, eclass).is_none() {
            return None;
        }
        Some(SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

impl<R: ClassRule> Applier<SeamLang, TypeAnalysis> for WholeClass<R> {
    fn apply_one(
        &self,
        egraph: &mut SeamGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<SeamLang>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let Some((op, operands)) = R::plan(egraph, eclass) else {
            return Vec::new();
        };
        let leaf = attrs_leaf(&op).map(|l| egraph.add(SeamLang::Leaf(l)));
        let children: Vec<Id> = leaf.into_iter().chain(operands).collect();
        let id = egraph.add(R::node(children.into()));
        if egraph.union(eclass, id) {
            vec![eclass]
        } else {
            Vec::new()
        }
    }
}
