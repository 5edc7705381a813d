//! Rewrite rules as data, one module per group. Every rule's doc comment says
//! what it does and when it is legal; conditional rules check legality
//! explicitly and are tested where they must fire and where they must not.

pub mod algebra;
pub mod comm;
pub mod experts;
pub mod fusion;
pub(crate) mod matchers;
pub mod modalities;
pub mod routers;
pub(crate) mod whole_class;

use egg::Rewrite;

use crate::optimize::analysis::TypeAnalysis;
use crate::optimize::language::SeamLang;

/// A group of rules, enabled together.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleGroup {
    /// Per-expert dense form → `moe` ([`experts`]) and masked per-modality
    /// projections → `grouped_matmul` ([`modalities`]); a fusion.
    Experts,
    /// Matmuls reading the same input merged into one, per-layer pre-gating
    /// router heads batched into one matmul and one `route` ([`routers`]); a fusion.
    Routers,
    /// Targeted algebraic identities ([`algebra`]).
    Algebra,
    /// `all_reduce` split into start/wait ([`comm`]), scheduled after extraction.
    Comm,
    /// Matmul epilogues and element-wise chains as single kernels ([`fusion`]).
    Fusion,
}

impl RuleGroup {
    /// Whether the group only fuses ops (the groups `-O1` runs).
    pub fn is_fusion(self) -> bool {
        matches!(
            self,
            RuleGroup::Experts | RuleGroup::Routers | RuleGroup::Fusion
        )
    }
}

/// The rules of `groups`, in group order.
pub fn rules(groups: &[RuleGroup]) -> Result<Vec<Rewrite<SeamLang, TypeAnalysis>>, String> {
    let mut out = Vec::new();
    for group in groups {
        out.extend(match group {
            RuleGroup::Experts => experts::rules()?,
            RuleGroup::Routers => routers::rules()?,
            RuleGroup::Algebra => algebra::rules(),
            RuleGroup::Comm => comm::rules()?,
            RuleGroup::Fusion => fusion::rules()?,
        });
    }
    Ok(out)
}
