//! Declaring the imported model's params, each with its checkpoint source.

use seam_ir::{DType, ParamId, TensorType};

use super::weights::Source;
use crate::builder::ModelBuilder;

/// A model builder that records, for every param it declares, where its values
/// come from in the checkpoint.
pub(super) struct Declarer {
    /// The model being built.
    pub m: ModelBuilder,
    /// The source of every param declared so far, in order.
    pub sources: Vec<Source>,
}

impl Declarer {
    /// Declares an f32 param named after its source tensor.
    pub(super) fn param(&mut self, dims: &[u64], source: Source) -> ParamId {
        self.named(param_name(&source), dims, source)
    }

    /// Declares an f32 param of the given name.
    pub(super) fn named(&mut self, name: String, dims: &[u64], source: Source) -> ParamId {
        self.sources.push(source);
        self.m
            .param(name, TensorType::new(DType::F32, dims.iter().copied()))
    }
}

/// A param's name: its (first) source tensor's, without `.weight`.
fn param_name(source: &Source) -> String {
    match source {
        Source::Direct(n) | Source::Linear(n) => n.trim_end_matches(".weight").to_string(),
        Source::Experts(ns) => stacked_name(&ns[0]),
        Source::FusedExperts { tensor, .. } => tensor.clone(),
        Source::Either(a, _) => param_name(a),
    }
}

/// `…experts.0.gate_proj.weight` → `…experts.gate_proj` (the stacked param's name).
fn stacked_name(first: &str) -> String {
    let base = first.trim_end_matches(".weight");
    let (head, proj) = base.rsplit_once('.').unwrap_or((base, ""));
    let head = head.rsplit_once('.').map_or(head, |(h, _)| h);
    format!("{head}.{proj}")
}

#[cfg(test)]
mod tests {
    use super::stacked_name;

    #[test]
    fn stacked_expert_params_drop_the_expert_index() {
        assert_eq!(
            stacked_name("model.layers.3.mlp.experts.0.gate_proj.weight"),
            "model.layers.3.mlp.experts.gate_proj"
        );
        assert_eq!(
            stacked_name("model.layers.0.block_sparse_moe.experts.0.w2.weight"),
            "model.layers.0.block_sparse_moe.experts.w2"
        );
    }
}
