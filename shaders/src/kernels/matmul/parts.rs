//! The parts of a weight split across bindings ([`WeightSplit`]): the name of
//! each part's binding and the stored rows it holds.

use crate::split::WeightSplit;

/// The binding of part `part` of right operand `mat` split into `parts`
/// (`mat` itself when it is whole).
pub(crate) fn part_binding(mat: &str, part: u32, parts: u32) -> String {
    if parts == 1 {
        mat.to_string()
    } else {
        format!("{mat}_{part}")
    }
}

/// The stored rows `[lo, hi)` of part `part` of a split weight, clamped to `u32`.
pub(crate) fn part_rows(split: &WeightSplit, part: u32) -> (u64, u64) {
    let per_part = u64::from(split.rows_per_part);
    let lo = (u64::from(part) * per_part).min(u64::from(u32::MAX));
    let hi = (lo + per_part).min(u64::from(u32::MAX));
    (lo, hi)
}
