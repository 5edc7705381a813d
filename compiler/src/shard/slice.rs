//! Each rank's weights: its part of every split parameter, sliced from the
//! single-device weights, and every other parameter whole.

use seam_ir::{Model, ParamId, Weights};

use super::experts::ExpertTables;
use super::recognize::Plan;
use super::ShardError;

/// Rank `rank`'s weights (of `ranks`) for `sharded`, the rank model of
/// `model`: its own parameters, then the expert tables it adds.
pub(crate) fn rank_weights(
    model: &Model,
    sharded: &Model,
    weights: &Weights,
    plan: &Plan,
    tables: &ExpertTables,
    rank: u64,
    ranks: u64,
) -> Result<Weights, ShardError> {
    let mut tensors = Vec::with_capacity(model.params.len());
    for (i, (p, t)) in model.params.iter().zip(weights.tensors()).enumerate() {
        let id = ParamId(i as u32);
        let Some(split) = plan.get(&id) else {
            tensors.push(t.clone());
            continue;
        };
        if weights.encoding(id).is_some() {
            return Err(ShardError::BlockFormat {
                param: p.name.clone(),
                format: p.format.to_string(),
            });
        }
        let size = t.shape.get(split.axis).copied().unwrap_or(0) as u64;
        let (start, end) = split.range(size, rank, ranks);
        let part = t
            .slice_axis(split.axis, start as usize, end as usize)
            .ok_or_else(|| ShardError::Unrecognised {
                value: p.name.clone(),
                detail: format!(
                    "cannot slice {start}..{end} of axis {} of {:?}",
                    split.axis, t.shape
                ),
            })?;
        tensors.push(part);
    }
    tensors.extend(tables.tensors(rank, ranks)?);
    let mut sliced = Weights::new(sharded, tensors)?;
    for i in 0..model.params.len() {
        let id = ParamId(i as u32);
        if let (None, Some(e)) = (plan.get(&id), weights.encoding(id)) {
            sliced.set_encoding(id, e.clone())?;
        }
    }
    Ok(sliced)
}
