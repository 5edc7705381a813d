//! Weight entries occupy disjoint byte ranges: a bundle cannot make the
//! runtime upload the same bytes many times over by declaring thousands of
//! weights on one range, so the weight bytes loaded are bounded by the
//! lengths of the weights section and the external files.

use std::collections::HashMap;

use crate::{BundleError, ExternalFile, WeightEntry};

/// Checks that no two of `weights` overlap within the weights section or
/// within one external file (`files` names them, for errors).
/// Empty weights occupy no bytes and never overlap. Sorts the ranges once:
/// `O(n log n)` for `n` weights.
pub(crate) fn check_disjoint(
    weights: &[WeightEntry],
    files: &[ExternalFile],
) -> Result<(), BundleError> {
    let mut by_place: HashMap<Option<u32>, Vec<(u64, u64, usize)>> = HashMap::new();
    for (i, w) in weights.iter().enumerate().filter(|(_, w)| w.bytes > 0) {
        let end = w.offset.saturating_add(w.bytes);
        by_place.entry(w.file).or_default().push((w.offset, end, i));
    }
    for (place, mut ranges) in by_place {
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            let ((_, end, first), (start, _, second)) = (pair[0], pair[1]);
            if start < end {
                return Err(BundleError::WeightOverlap {
                    first,
                    first_name: weights[first].name.clone(),
                    second,
                    second_name: weights[second].name.clone(),
                    place: match place {
                        None => "the weights section".to_string(),
                        Some(f) => format!(
                            "external file `{}`",
                            files.get(f as usize).map_or("?", |f| f.path.as_str())
                        ),
                    },
                });
            }
        }
    }
    Ok(())
}
