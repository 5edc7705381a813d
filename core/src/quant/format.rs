//! [`WeightFormat`]: how a weight is stored on the device, and the row layout
//! kernels read it in.
//!
//! # Row planes
//!
//! A weight used as the right operand of `x · W` (`W: [K, N]`) is stored
//! transposed, one *row* per output column `n` holding that column's `K`
//! weights, because a product reads a column's weights together. WGSL storage
//! has no 8- or 16-bit types, so each row is repacked at compile time into
//! 32-bit words, in planes (all words of a row are contiguous; rows follow each
//! other, `row_words(K)` words apart). Each row is zero-padded to a multiple
//! of 4 words, so every row, and every plane in it, starts on a 16-byte
//! boundary and kernels may read it 16 bytes at a time. With
//! `nb = K / block_elems` blocks, a row holds, before that padding:
//!
//! | format | words of one row, in order |
//! |--------|----------------------------|
//! | `f32`  | `K` words, element `i` in word `i` |
//! | `f16`, `bf16` | `ceil(K/2)` words, element `2i` in the low half of word `i`, `2i+1` in the high half |
//! | `q8_0` | quants: `8·nb` words (block `b`'s int8 `j` in byte `j % 4` of word `8b + j/4`); then scales: `ceil(nb/2)` words (block `b`'s f16 `d` in half `b % 2` of word `b/2`) |
//! | `q4_0` | quants: `4·nb` words (block `b`'s ggml byte `j` — element `j` in its low nibble, element `j+16` in its high nibble — in byte `j % 4` of word `4b + j/4`); then scales as for `q8_0` |
//! | `q4_1` | quants as for `q4_0`; then `nb` words, block `b`'s f16 `d` in the low half and f16 `m` in the high half of word `b` |
//! | `q4_k` | `36·nb` words: each 256-weight super-block's 144 ggml bytes as they are (`d`, `dmin` in word 0; the 12 bytes of 6-bit scales and mins in words 1–3; 128 bytes of nibbles in words 4–35) |
//!
//! Bytes within a word are little-endian. The block semantics are ggml's
//! (`ggml-common.h`): `q8_0` value `q·d`; `q4_0` value `(q − 8)·d`; `q4_1`
//! value `q·d + m`; `q4_k` value `d·sc·q − dmin·m` with 6-bit `sc`, `m` per
//! 32-weight sub-block.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Words every row is padded to a multiple of (16 bytes: one `vec4<u32>`).
pub const ROW_ALIGN_WORDS: u64 = 4;

/// How a weight's elements are stored on the device.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// IEEE binary32, 32 bits per weight.
    #[default]
    F32,
    /// IEEE binary16, 16 bits per weight.
    F16,
    /// bfloat16 (the high half of a binary32), 16 bits per weight.
    Bf16,
    /// ggml `Q8_0`: blocks of 32 int8 with one f16 scale (8.5 bits per weight).
    Q8_0,
    /// ggml `Q4_0`: blocks of 32 4-bit values with one f16 scale, value
    /// `(q − 8)·d` (4.5 bits per weight).
    Q4_0,
    /// ggml `Q4_1`: blocks of 32 4-bit values with an f16 scale and min, value
    /// `q·d + m` (5 bits per weight).
    Q4_1,
    /// ggml `Q4_K`: 256-weight super-blocks of eight 32-weight sub-blocks with
    /// 6-bit scales and mins (4.5 bits per weight).
    Q4K,
}

impl WeightFormat {
    /// Every format, in a fixed order.
    pub const ALL: [WeightFormat; 7] = [
        WeightFormat::F32,
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::Q8_0,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q4K,
    ];

    /// The name used in the text format and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Q8_0 => "q8_0",
            WeightFormat::Q4_0 => "q4_0",
            WeightFormat::Q4_1 => "q4_1",
            WeightFormat::Q4K => "q4_k",
        }
    }

    /// Weights per block: a row's `K` must be a multiple of it.
    pub fn block_elems(self) -> u64 {
        match self {
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16 => 1,
            WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q4_1 => 32,
            WeightFormat::Q4K => 256,
        }
    }

    /// Bytes of one block in ggml's own (GGUF) encoding.
    pub fn ggml_block_bytes(self) -> u64 {
        match self {
            WeightFormat::F32 => 4,
            WeightFormat::F16 | WeightFormat::Bf16 => 2,
            WeightFormat::Q8_0 => 34,
            WeightFormat::Q4_0 => 18,
            WeightFormat::Q4_1 => 20,
            WeightFormat::Q4K => 144,
        }
    }

    /// Whether the format is a block-quantized one.
    pub fn is_quantized(self) -> bool {
        self.block_elems() > 1
    }

    /// Whether a row of `k` weights can be stored in this format.
    pub fn fits(self, k: u64) -> bool {
        k > 0 && k % self.block_elems() == 0
    }

    /// 32-bit words of one row of `k` weights in the row-plane layout (see the
    /// module docs), padding included: always a multiple of 4. `None` when
    /// `k` is not a multiple of the block size or the count overflows.
    pub fn row_words(self, k: u64) -> Option<u64> {
        if !self.fits(k) {
            return None;
        }
        let nb = k / self.block_elems();
        let planes = match self {
            WeightFormat::F32 => Some(k),
            WeightFormat::F16 | WeightFormat::Bf16 => Some(k.div_ceil(2)),
            WeightFormat::Q8_0 => nb.checked_mul(8)?.checked_add(nb.div_ceil(2)),
            WeightFormat::Q4_0 => nb.checked_mul(4)?.checked_add(nb.div_ceil(2)),
            WeightFormat::Q4_1 => nb.checked_mul(5),
            WeightFormat::Q4K => nb.checked_mul(36),
        }?;
        planes.checked_next_multiple_of(ROW_ALIGN_WORDS)
    }

    /// Bytes of one row of `k` weights in ggml's own encoding; `None` as for
    /// [`WeightFormat::row_words`].
    pub fn ggml_row_bytes(self, k: u64) -> Option<u64> {
        if !self.fits(k) {
            return None;
        }
        (k / self.block_elems()).checked_mul(self.ggml_block_bytes())
    }

    /// Storage bits per weight in ggml's encoding (what a decode step streams).
    pub fn bits_per_weight(self) -> f64 {
        self.ggml_block_bytes() as f64 * 8.0 / self.block_elems() as f64
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        WeightFormat::ALL
            .into_iter()
            .find(|f| f.name() == lower || (*f == WeightFormat::Q4K && lower == "q4k"))
            .ok_or_else(|| {
                let names: Vec<&str> = WeightFormat::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown weight format `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in WeightFormat::ALL {
            assert_eq!(f.name().parse::<WeightFormat>(), Ok(f));
        }
        assert!("q5_0".parse::<WeightFormat>().is_err());
    }

    #[test]
    fn row_sizes_follow_the_layout() {
        // K = 576: 18 blocks of 32, not a multiple of 256; rows padded to
        // whole vec4s.
        assert_eq!(WeightFormat::Q4_0.row_words(576), Some(72 + 9 + 3));
        assert_eq!(WeightFormat::Q8_0.row_words(576), Some(144 + 9 + 3));
        assert_eq!(WeightFormat::Q4_1.row_words(576), Some(90 + 2));
        assert_eq!(WeightFormat::Q4K.row_words(576), None);
        assert_eq!(WeightFormat::Q4K.row_words(512), Some(72));
        assert_eq!(WeightFormat::F16.row_words(3), Some(2 + 2));
        assert_eq!(WeightFormat::F32.row_words(3), Some(3 + 1));
        assert_eq!(WeightFormat::Q4_0.ggml_row_bytes(64), Some(36));
        assert_eq!(WeightFormat::Q4K.bits_per_weight(), 4.5);
        assert_eq!(WeightFormat::Q8_0.row_words(0), None);
    }
}
