//! [`GgmlType`]: the tensor types of GGUF files and their block geometry, as
//! `ggml-common.h` defines them.

use std::fmt;

use super::{QuantError, WeightFormat};

/// A GGUF tensor type (`enum ggml_type`); the discriminant is its id in a
/// GGUF file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// IEEE binary32.
    F32 = 0,
    /// IEEE binary16.
    F16 = 1,
    /// 32-weight blocks: f16 `d`, 16 bytes of nibbles; value `(q − 8)·d`.
    Q4_0 = 2,
    /// 32-weight blocks: f16 `d`, f16 `m`, 16 bytes of nibbles; value `q·d + m`.
    Q4_1 = 3,
    /// 32-weight blocks: f16 `d`, 32 high bits, 16 bytes of nibbles; value `(q − 16)·d`.
    Q5_0 = 6,
    /// 32-weight blocks: f16 `d`, f16 `m`, 32 high bits, nibbles; value `q·d + m`.
    Q5_1 = 7,
    /// 32-weight blocks: f16 `d`, 32 int8; value `q·d`.
    Q8_0 = 8,
    /// 32-weight blocks: f16 `d`, f16 sum, 32 int8 (an activation format).
    Q8_1 = 9,
    /// 256-weight super-blocks of 2-bit values.
    Q2K = 10,
    /// 256-weight super-blocks of 3-bit values.
    Q3K = 11,
    /// 256-weight super-blocks of 4-bit values with 6-bit scales and mins.
    Q4K = 12,
    /// 256-weight super-blocks of 5-bit values with 6-bit scales and mins.
    Q5K = 13,
    /// 256-weight super-blocks of 6-bit values with int8 scales.
    Q6K = 14,
    /// 256-weight super-blocks of int8 with an f32 scale (an activation format).
    Q8K = 15,
    /// bfloat16.
    Bf16 = 30,
}

impl GgmlType {
    /// Every type, in id order.
    pub const ALL: [GgmlType; 15] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::Bf16,
    ];

    /// The type with GGUF id `id`; [`QuantError::UnknownType`] for any other id.
    pub fn from_id(id: u32) -> Result<Self, QuantError> {
        Self::ALL
            .into_iter()
            .find(|t| t.id() == id)
            .ok_or(QuantError::UnknownType(id))
    }

    /// The GGUF id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// ggml's name for the type (`"q4_K"`, `"bf16"`, …).
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "f32",
            GgmlType::F16 => "f16",
            GgmlType::Q4_0 => "q4_0",
            GgmlType::Q4_1 => "q4_1",
            GgmlType::Q5_0 => "q5_0",
            GgmlType::Q5_1 => "q5_1",
            GgmlType::Q8_0 => "q8_0",
            GgmlType::Q8_1 => "q8_1",
            GgmlType::Q2K => "q2_K",
            GgmlType::Q3K => "q3_K",
            GgmlType::Q4K => "q4_K",
            GgmlType::Q5K => "q5_K",
            GgmlType::Q6K => "q6_K",
            GgmlType::Q8K => "q8_K",
            GgmlType::Bf16 => "bf16",
        }
    }

    /// Elements per block (1 for the float types).
    pub fn block_elems(self) -> u64 {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q8_1 => 32,
            GgmlType::Q2K
            | GgmlType::Q3K
            | GgmlType::Q4K
            | GgmlType::Q5K
            | GgmlType::Q6K
            | GgmlType::Q8K => 256,
        }
    }

    /// Bytes per block (`sizeof(block_*)` in `ggml-common.h`).
    pub fn block_bytes(self) -> u64 {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::Bf16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q8_1 => 36,
            GgmlType::Q2K => 84,
            GgmlType::Q3K => 110,
            GgmlType::Q4K => 144,
            GgmlType::Q5K => 176,
            GgmlType::Q6K => 210,
            GgmlType::Q8K => 292,
        }
    }

    /// Bytes of one row of `k` elements; `None` when `k` is not a multiple of
    /// the block or the count overflows.
    pub fn row_bytes(self, k: u64) -> Option<u64> {
        self.tensor_bytes(k)
    }

    /// Bytes of `elems` elements stored contiguously; `None` when `elems` is
    /// not a multiple of the block or the count overflows.
    pub fn tensor_bytes(self, elems: u64) -> Option<u64> {
        if elems % self.block_elems() != 0 {
            return None;
        }
        (elems / self.block_elems()).checked_mul(self.block_bytes())
    }

    /// The format Seam stores a tensor of this type in: the float types,
    /// `Q8_0`, `Q4_0`, `Q4_1` and `Q4_K` as themselves; every other type as
    /// `Q8_0`, the nearest format with a kernel (an importer dequantizes such
    /// a tensor and requantizes it to `Q8_0`).
    pub fn kernel_format(self) -> WeightFormat {
        match self {
            GgmlType::F32 => WeightFormat::F32,
            GgmlType::F16 => WeightFormat::F16,
            GgmlType::Bf16 => WeightFormat::Bf16,
            GgmlType::Q4_0 => WeightFormat::Q4_0,
            GgmlType::Q4_1 => WeightFormat::Q4_1,
            GgmlType::Q4K => WeightFormat::Q4K,
            GgmlType::Q8_0
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_1
            | GgmlType::Q2K
            | GgmlType::Q3K
            | GgmlType::Q5K
            | GgmlType::Q6K
            | GgmlType::Q8K => WeightFormat::Q8_0,
        }
    }

    /// The ggml type whose encoding `format` uses.
    pub fn from_format(format: WeightFormat) -> GgmlType {
        match format {
            WeightFormat::F32 => GgmlType::F32,
            WeightFormat::F16 => GgmlType::F16,
            WeightFormat::Bf16 => GgmlType::Bf16,
            WeightFormat::Q8_0 => GgmlType::Q8_0,
            WeightFormat::Q4_0 => GgmlType::Q4_0,
            WeightFormat::Q4_1 => GgmlType::Q4_1,
            WeightFormat::Q4K => GgmlType::Q4K,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_refused() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Ok(t));
        }
        // 4 and 5 were Q4_2 / Q4_3 (removed), 16.. are the IQ types.
        for id in [4, 5, 16, 29, 31, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), Err(QuantError::UnknownType(id)));
        }
        assert_eq!(GgmlType::from_id(30), Ok(GgmlType::Bf16));
        assert_eq!(GgmlType::from_id(12).map(GgmlType::name), Ok("q4_K"));
    }

    #[test]
    fn sizes_are_ggml_block_sizes() {
        // sizeof(block_q4_K) = 2 + 2 + 12 + 128; block_q6_K = 128 + 64 + 16 + 2.
        assert_eq!(GgmlType::Q4K.block_bytes(), 144);
        assert_eq!(GgmlType::Q6K.block_bytes(), 210);
        assert_eq!(GgmlType::Q4_0.row_bytes(64), Some(36));
        assert_eq!(GgmlType::Q4_0.row_bytes(48), None);
        assert_eq!(GgmlType::Q5K.tensor_bytes(512), Some(352));
        assert_eq!(GgmlType::F16.tensor_bytes(3), Some(6));
        assert_eq!(GgmlType::Q8_0.tensor_bytes(u64::MAX - 31), None);
    }

    #[test]
    fn kernel_formats_agree_with_weight_format_geometry() {
        for f in WeightFormat::ALL {
            let t = GgmlType::from_format(f);
            assert_eq!(t.kernel_format(), f);
            assert_eq!(t.block_elems(), f.block_elems());
            assert_eq!(t.block_bytes(), f.ggml_block_bytes());
        }
        for t in [GgmlType::Q5_0, GgmlType::Q6K, GgmlType::Q2K, GgmlType::Q8K] {
            assert_eq!(t.kernel_format(), WeightFormat::Q8_0);
        }
    }
}
