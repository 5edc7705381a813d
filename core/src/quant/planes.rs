//! Repacking ggml rows into the row-plane layout of [`WeightFormat`] (see
//! the table in its module docs) and back.

use super::{dequantize, GgmlType, QuantError, WeightFormat};

/// How a format's ggml row maps onto its planes.
enum Split {
    /// The row's bytes as they are, in little-endian words (zero-padded).
    Raw,
    /// Per 32-weight block, `header` bytes of scales then `quants` bytes of
    /// quants; the row's quants plane is followed by its headers plane.
    Blocks {
        /// Bytes of f16 scales (and mins) opening each block.
        header: usize,
        /// Bytes of quants after them.
        quants: usize,
    },
}

impl Split {
    /// The split of `format`.
    fn of(format: WeightFormat) -> Split {
        match format {
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16 | WeightFormat::Q4K => {
                Split::Raw
            }
            WeightFormat::Q8_0 => Split::Blocks {
                header: 2,
                quants: 32,
            },
            WeightFormat::Q4_0 => Split::Blocks {
                header: 2,
                quants: 16,
            },
            WeightFormat::Q4_1 => Split::Blocks {
                header: 4,
                quants: 16,
            },
        }
    }
}

/// The sizes of `rows` rows of `k` weights, checked to fit in memory.
struct Geometry {
    /// ggml bytes of one row.
    row_bytes: usize,
    /// Plane words of one row.
    row_words: usize,
    /// ggml bytes of all rows.
    total_bytes: u64,
    /// Plane words of all rows.
    total_words: u64,
    /// Weights of all rows.
    elems: usize,
}

impl Geometry {
    /// Checks `k` against the format's block and every count for overflow.
    fn new(format: WeightFormat, rows: u64, k: u64) -> Result<Geometry, QuantError> {
        if !format.fits(k) {
            return Err(QuantError::BadRowLength {
                format: format.name(),
                k,
                block: format.block_elems(),
            });
        }
        let too_large = |what| QuantError::TooLarge { what };
        let row_bytes = format.ggml_row_bytes(k).ok_or(too_large("row bytes"))?;
        let row_words = format.row_words(k).ok_or(too_large("row words"))?;
        let total_bytes = rows.checked_mul(row_bytes).ok_or(too_large("ggml bytes"))?;
        let total_words = rows
            .checked_mul(row_words)
            .ok_or(too_large("plane words"))?;
        let elems = rows.checked_mul(k).ok_or(too_large("weights"))?;
        let size = |v: u64, what| usize::try_from(v).map_err(|_| too_large(what));
        Ok(Geometry {
            row_bytes: size(row_bytes, "row bytes")?,
            row_words: size(row_words, "row words")?,
            total_bytes,
            total_words,
            elems: size(elems, "weights")?,
        })
    }
}

/// Repacks `ggml`, the ggml encoding of `rows` rows of `k` weights each, into
/// `rows · format.row_words(k)` words of row planes.
pub fn pack_rows(
    format: WeightFormat,
    ggml: &[u8],
    rows: u64,
    k: u64,
) -> Result<Vec<u32>, QuantError> {
    let g = Geometry::new(format, rows, k)?;
    check_len("ggml bytes", g.total_bytes, ggml.len())?;
    let mut words = Vec::with_capacity(usize::try_from(g.total_words).unwrap_or(0));
    for row in ggml.chunks_exact(g.row_bytes) {
        let row_end = words.len() + g.row_words;
        match Split::of(format) {
            Split::Raw => push_le_words(row, &mut words),
            Split::Blocks { header, quants } => {
                let mut headers = Vec::with_capacity(row.len() / (header + quants) * header);
                for block in row.chunks_exact(header + quants) {
                    push_le_words(&block[header..], &mut words);
                    headers.extend_from_slice(&block[..header]);
                }
                push_le_words(&headers, &mut words);
            }
        }
        words.resize(row_end, 0);
    }
    Ok(words)
}

/// The inverse of [`pack_rows`]: the ggml encoding of `rows` rows of `k`
/// weights held in `words` of row planes (padding bits are ignored).
pub fn unpack_ggml(
    format: WeightFormat,
    words: &[u32],
    rows: u64,
    k: u64,
) -> Result<Vec<u8>, QuantError> {
    let g = Geometry::new(format, rows, k)?;
    check_len("plane words", g.total_words, words.len())?;
    let mut bytes = Vec::with_capacity(words.len() * 4);
    for row in words.chunks_exact(g.row_words) {
        let row_bytes: Vec<u8> = row.iter().flat_map(|w| w.to_le_bytes()).collect();
        match Split::of(format) {
            Split::Raw => bytes.extend_from_slice(&row_bytes[..g.row_bytes]),
            Split::Blocks { header, quants } => {
                let blocks = g.row_bytes / (header + quants);
                let (quant_plane, header_plane) = row_bytes.split_at(blocks * quants);
                for (q, h) in quant_plane
                    .chunks_exact(quants)
                    .zip(header_plane.chunks_exact(header))
                {
                    bytes.extend_from_slice(h);
                    bytes.extend_from_slice(q);
                }
            }
        }
    }
    Ok(bytes)
}

/// Dequantizes `rows` rows of `k` weights straight from their row planes
/// (row-major, `rows · k` values), for tools that re-check a bundle's
/// weights on the CPU.
pub fn unpack_rows(
    format: WeightFormat,
    words: &[u32],
    rows: u64,
    k: u64,
) -> Result<Vec<f32>, QuantError> {
    let g = Geometry::new(format, rows, k)?;
    let bytes = unpack_ggml(format, words, rows, k)?;
    let mut out = vec![0f32; g.elems];
    dequantize(GgmlType::from_format(format), &bytes, &mut out)?;
    Ok(out)
}

/// `Ok` when a buffer holds exactly the `expected` units its sizes imply.
fn check_len(what: &'static str, expected: u64, actual: usize) -> Result<(), QuantError> {
    if actual as u64 == expected {
        Ok(())
    } else {
        Err(QuantError::LengthMismatch {
            what,
            expected,
            actual: actual as u64,
        })
    }
}

/// Appends `bytes` as little-endian words, the last one zero-padded.
fn push_le_words(bytes: &[u8], words: &mut Vec<u32>) {
    for chunk in bytes.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        words.push(u32::from_le_bytes(w));
    }
}
