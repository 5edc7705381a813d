//! Weight entries in the weights section occupy disjoint byte ranges: a
//! bundle cannot make the runtime upload the same bytes many times over by
//! declaring thousands of weights on one range, so the embedded weight bytes
//! loaded are bounded by the section's length. (Ranges of external files may
//! be shared, e.g. by tied embeddings; the external reader bounds those reads
//! by the files' lengths.)

use crate::{BundleError, WeightEntry};

/// Checks that no two embedded weights of `weights` overlap in the weights
/// section. Empty weights occupy no bytes and never overlap. Sorts the ranges
/// once: `O(n log n)` for `n` weights.
pub(crate) fn check_disjoint(weights: &[WeightEntry]) -> Result<(), BundleError> {
    let mut ranges: Vec<(u64, u64, usize)> = weights
        .iter()
        .enumerate()
        .filter(|(_, w)| w.file.is_none() && w.bytes > 0)
        .map(|(i, w)| (w.offset, w.offset.saturating_add(w.bytes), i))
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((_, end, first), (start, _, second)) = (pair[0], pair[1]);
        if start < end {
            return Err(BundleError::WeightOverlap {
                first,
                first_name: weights[first].name.clone(),
                second,
                second_name: weights[second].name.clone(),
            });
        }
    }
    Ok(())
}
