//! [`EncodedWeight`]: a parameter's values as the blocks of a weight format,
//! kept beside the decoded values the evaluator computes with, so the compiler
//! stores a checkpoint's (or its own quantizer's) blocks as they are instead of
//! quantizing decoded values again.

use std::sync::Arc;

use thiserror::Error;

use seam_core::WeightFormat;

/// A parameter `[.., K, N]` encoded in a weight format, in ggml's byte layout,
/// *transposed*: `rows = (product of the leading dims) · N` rows of `K`
/// weights each, one per output column, as a GGUF file stores an `nn.Linear`
/// weight `[out, in]`.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedWeight {
    /// The format of the blocks.
    pub format: WeightFormat,
    /// Number of rows (output columns, times the leading dims).
    pub rows: u64,
    /// Weights per row (the contraction size `K`).
    pub k: u64,
    /// The ggml bytes, `rows · format.ggml_row_bytes(k)` of them.
    pub bytes: Arc<[u8]>,
}

/// Why an encoding does not fit its parameter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodingError {
    /// The parameter has fewer than two dims.
    #[error("param `@{name}` has rank {rank}: only `[.., K, N]` weights can be encoded")]
    Rank {
        /// The param.
        name: String,
        /// Its rank.
        rank: usize,
    },
    /// `K` is not a multiple of the format's block.
    #[error("param `@{name}`: K = {k} is not a multiple of {format}'s {block}-weight block")]
    Block {
        /// The param.
        name: String,
        /// Its contraction size.
        k: u64,
        /// The format.
        format: WeightFormat,
        /// The format's block size.
        block: u64,
    },
    /// The rows or byte count differ from what the parameter's shape needs.
    #[error(
        "param `@{name}`: a {format} encoding of {rows}×{k} needs {} bytes, got {found}",
        expected.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string())
    )]
    Size {
        /// The param.
        name: String,
        /// The format.
        format: WeightFormat,
        /// Rows the shape needs.
        rows: u64,
        /// Weights per row.
        k: u64,
        /// Bytes needed (`None`: the count overflows).
        expected: Option<u64>,
        /// Bytes given.
        found: u64,
    },
}

impl EncodedWeight {
    /// The rows and `K` of a parameter of `shape` in the transposed layout.
    pub fn rows_and_k(name: &str, shape: &[usize]) -> Result<(u64, u64), EncodingError> {
        let r = shape.len();
        if r < 2 {
            return Err(EncodingError::Rank {
                name: name.into(),
                rank: r,
            });
        }
        let k = shape[r - 2] as u64;
        let rows = shape[..r - 2]
            .iter()
            .chain(&shape[r - 1..])
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        Ok((rows.unwrap_or(u64::MAX), k))
    }

    /// Checks that this encoding holds exactly a parameter `name` of `shape`.
    pub fn check(&self, name: &str, shape: &[usize]) -> Result<(), EncodingError> {
        let (rows, k) = EncodedWeight::rows_and_k(name, shape)?;
        if !self.format.fits(k) {
            return Err(EncodingError::Block {
                name: name.into(),
                k,
                format: self.format,
                block: self.format.block_elems(),
            });
        }
        let expected = self
            .format
            .ggml_row_bytes(k)
            .and_then(|b| b.checked_mul(rows));
        if rows != self.rows || k != self.k || expected != Some(self.bytes.len() as u64) {
            return Err(EncodingError::Size {
                name: name.into(),
                format: self.format,
                rows,
                k,
                expected,
                found: self.bytes.len() as u64,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_the_leading_dims_times_n() {
        assert_eq!(EncodedWeight::rows_and_k("w", &[64, 96]), Ok((96, 64)));
        assert_eq!(EncodedWeight::rows_and_k("w", &[4, 64, 96]), Ok((384, 64)));
        assert!(EncodedWeight::rows_and_k("w", &[64]).is_err());
    }

    #[test]
    fn sizes_are_checked() {
        let enc = |bytes: usize| EncodedWeight {
            format: WeightFormat::Q4_0,
            rows: 3,
            k: 64,
            bytes: vec![0u8; bytes].into(),
        };
        // 3 rows of 2 blocks of 18 bytes.
        assert_eq!(enc(108).check("w", &[64, 3]), Ok(()));
        assert!(matches!(
            enc(107).check("w", &[64, 3]),
            Err(EncodingError::Size { .. })
        ));
        assert!(matches!(
            enc(108).check("w", &[48, 3]),
            Err(EncodingError::Block { .. })
        ));
    }
}
