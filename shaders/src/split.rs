//! Splitting a weight larger than the device's storage-binding limit across
//! several bindings.
//!
//! **Scheme.** A weight is a row-major matrix of `rows × row_bytes` as stored (for
//! a matmul's `b[K, N]` the rows are K; for a transposed `b[N, K]` they are N). It is
//! cut along its rows into `parts` consecutive ranges of `rows_per_part` rows (the
//! last may be shorter); part `p` holds rows `p·rows_per_part ..`. Each part is one
//! storage binding (`b_0`, `b_1`, …) — either its own buffer or a sub-range of one
//! large buffer, in which case `rows_per_part · row_bytes` is a multiple of the
//! device's storage-offset alignment ([`WeightSplit::plan`] ensures it). The
//! kernels loop over the parts in order (for `b[K, N]`, the K loop runs part by
//! part) or branch once per workgroup on the part that holds its columns (for
//! `b[N, K]`, where `rows_per_part` is also a multiple of the workgroup's column
//! block so no workgroup straddles two parts).

use crate::error::ShaderError;

/// How a weight is cut into bindings (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct WeightSplit {
    /// Number of bindings.
    pub parts: u32,
    /// Rows in each part but possibly the last.
    pub rows_per_part: u32,
}

impl WeightSplit {
    /// No split: one binding holds all `rows`.
    pub fn whole(rows: u32) -> Self {
        WeightSplit {
            parts: 1,
            rows_per_part: rows.max(1),
        }
    }

    /// Plans the fewest parts such that each part of whole rows fits
    /// `max_binding_bytes`, with `rows_per_part` a multiple of `row_align` and each
    /// part's byte size a multiple of `offset_align` (so parts can be sub-ranges of
    /// one buffer).
    pub fn plan(
        rows: u32,
        row_bytes: u64,
        max_binding_bytes: u64,
        row_align: u32,
        offset_align: u64,
    ) -> Result<Self, ShaderError> {
        if rows == 0 || row_bytes == 0 {
            return Err(ShaderError::config("weight_split", "empty weight"));
        }
        if u64::from(rows) * row_bytes <= max_binding_bytes {
            return Ok(WeightSplit::whole(rows));
        }
        // Smallest row multiple that keeps parts aligned.
        let g = gcd(row_bytes, offset_align.max(1));
        let byte_rows = offset_align.max(1) / g;
        let step = lcm(byte_rows, u64::from(row_align.max(1)));
        let fit = max_binding_bytes / row_bytes;
        let rows_per_part = fit / step * step;
        if rows_per_part == 0 {
            return Err(ShaderError::config(
                "weight_split",
                format!(
                    "a block of {step} rows of {row_bytes} bytes exceeds the binding limit of {max_binding_bytes} bytes"
                ),
            ));
        }
        let parts = u64::from(rows).div_ceil(rows_per_part);
        Ok(WeightSplit {
            parts: parts as u32,
            rows_per_part: rows_per_part as u32,
        })
    }

    /// The rows of part `p` of a weight with `rows` rows: `(first_row, row_count)`.
    pub fn part_rows(&self, rows: u32, p: u32) -> (u32, u32) {
        let start = (p.saturating_mul(self.rows_per_part)).min(rows);
        let end = (start.saturating_add(self.rows_per_part)).min(rows);
        (start, end - start)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_fit_and_align() {
        // 4096 x 11008 f32 stored as [N=11008, K=4096]: rows of 16 KiB.
        let s = WeightSplit::plan(11008, 4096 * 4, 128 << 20, 256, 256).unwrap();
        assert_eq!(s.parts, 2);
        assert!(u64::from(s.rows_per_part) * 16384 <= 128 << 20);
        assert_eq!(s.rows_per_part % 256, 0);
        assert_eq!(
            s.part_rows(11008, 1),
            (s.rows_per_part, 11008 - s.rows_per_part)
        );
        // Stored as [K=4096, N=11008]: rows of 44032 bytes.
        let s = WeightSplit::plan(4096, 11008 * 4, 128 << 20, 1, 256).unwrap();
        assert_eq!(s.parts, 2);
        assert_eq!((u64::from(s.rows_per_part) * 44032) % 256, 0);
        assert_eq!(
            WeightSplit::plan(10, 4, 1 << 20, 1, 256).unwrap(),
            WeightSplit::whole(10)
        );
        assert!(WeightSplit::plan(10, 1 << 20, 1 << 19, 1, 256).is_err());
    }
}
