//! Checking the config's block counts (layers, experts) against the tensors the
//! checkpoint holds, before the graph is built: a config that claims more
//! blocks than its weights is refused at once, naming the field, instead of
//! building (and paying for) a graph of blocks whose tensors do not exist.

use std::collections::BTreeSet;
use std::path::Path;

use super::arch::{Family, MlpSpec, Spec};
use super::checkpoint::Checkpoint;
use super::HfError;

/// The prefix of backbone layer names, followed by the layer index.
const LAYER_PREFIX: &str = "model.layers.";
/// The marker of per-expert tensor names, followed by the expert index.
const EXPERT_MARKER: &str = ".experts.";
/// The suffix of transformers 5.x's fused expert tensor `[E, 2F, D]`.
const FUSED_GATE_UP: &str = ".experts.gate_up_proj";

/// Errors when `spec` has more layers, or more experts, than `ckpt` holds.
pub(crate) fn check(spec: &Spec, ckpt: &Checkpoint, config: &Path) -> Result<(), HfError> {
    let layers = spec.mlps.len() as u64;
    let held = contiguous(indices_after(ckpt, LAYER_PREFIX));
    if layers > held {
        return Err(mismatch(
            config,
            "num_hidden_layers",
            layers,
            held,
            "layers",
        ));
    }
    let experts = spec
        .mlps
        .iter()
        .filter_map(|m| match m {
            MlpSpec::Routed { experts, .. } | MlpSpec::PreGated { experts, .. } => Some(*experts),
            MlpSpec::Dense { .. } => None,
        })
        .max();
    if let Some(experts) = experts {
        let held = experts_held(ckpt);
        if experts > held {
            let field = match spec.family {
                Family::Mixtral => "num_local_experts",
                _ => "num_experts",
            };
            return Err(mismatch(config, field, experts, held, "experts per layer"));
        }
    }
    Ok(())
}

fn mismatch(config: &Path, field: &str, value: u64, held: u64, what: &str) -> HfError {
    HfError::CountMismatch {
        path: config.to_path_buf(),
        field: field.into(),
        value,
        held,
        what: what.into(),
    }
}

/// The most experts any layer holds: per-expert tensors `….experts.{e}.…`, or
/// the leading dim of a fused `….experts.gate_up_proj`.
fn experts_held(ckpt: &Checkpoint) -> u64 {
    let per_expert = contiguous(indices_after(ckpt, EXPERT_MARKER));
    let fused = ckpt
        .names()
        .filter(|n| n.ends_with(FUSED_GATE_UP))
        .filter_map(|n| ckpt.tensor(n).ok())
        .filter_map(|t| t.info.shape.first().map(|&e| e as u64))
        .max()
        .unwrap_or(0);
    per_expert.max(fused)
}

/// The indices `i` of tensor names containing `{marker}{i}.`.
fn indices_after(ckpt: &Checkpoint, marker: &str) -> BTreeSet<u64> {
    ckpt.names()
        .filter_map(|n| {
            let (_, rest) = n.split_once(marker)?;
            let (digits, _) = rest.split_once('.')?;
            digits.parse().ok()
        })
        .collect()
}

/// How many of `0, 1, 2, …` are in `indices` without a gap.
fn contiguous(indices: BTreeSet<u64>) -> u64 {
    indices
        .into_iter()
        .enumerate()
        .take_while(|&(i, n)| i as u64 == n)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_counts_the_gapless_run_from_zero() {
        assert_eq!(contiguous([0, 1, 2, 5].into()), 3);
        assert_eq!(contiguous([1, 2].into()), 0);
        assert_eq!(contiguous(BTreeSet::new()), 0);
    }
}
