//! ggml-exact reference encodings of weight blocks: [`dequantize`] is
//! `dequantize_row_*` of `ggml-quants.c`, [`quantize`] is
//! `quantize_row_*_ref`, block for block and bit for bit (ggml's C code
//! is compiled without fused multiply-adds for the comparison; Rust never
//! fuses).

mod float;
mod k_scales;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_k;
mod q5_legacy;
mod q6_k;
mod q8_0;
mod qkx2;

use half::f16;

use super::{GgmlType, QuantError, WeightFormat};

/// Decodes one block: `bytes` is exactly one block, `out` its elements.
type DecodeBlock = fn(&[u8], &mut [f32]);

/// Encodes one block: `x` is exactly one block's elements, `out` its bytes.
type EncodeBlock = fn(&[f32], &mut [u8]);

/// Decodes `bytes`, a whole number of `ty` blocks, into `out`: `out.len()`
/// is the element count, and `bytes` must be exactly
/// `ty.tensor_bytes(out.len())` long.
///
/// Implemented for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K
/// and Q6_K; the others give [`QuantError::Unsupported`].
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let decode = decoder(ty)?;
    let elems = out.len() as u64;
    let expected = ty.tensor_bytes(elems).ok_or(QuantError::NotBlockMultiple {
        ty: ty.name(),
        elems,
        block: ty.block_elems(),
    })?;
    if bytes.len() as u64 != expected {
        return Err(QuantError::LengthMismatch {
            what: "ggml bytes",
            expected,
            actual: bytes.len() as u64,
        });
    }
    let block_bytes = ty.block_bytes() as usize;
    let block_elems = ty.block_elems() as usize;
    for (src, dst) in bytes
        .chunks_exact(block_bytes)
        .zip(out.chunks_exact_mut(block_elems))
    {
        decode(src, dst);
    }
    Ok(())
}

/// Encodes `x` in `format`'s ggml encoding (the bytes a GGUF file holds).
///
/// F32, F16 and BF16 round to nearest even (F16 overflows to infinity);
/// Q8_0, Q4_0, Q4_1 and Q4_K are `quantize_row_q8_0_ref`,
/// `quantize_row_q4_0_ref`, `quantize_row_q4_1_ref` and
/// `quantize_row_q4_K_ref`. Where C's float-to-int8 conversion is
/// undefined (NaN or infinite inputs) Rust's saturating `as` decides.
/// `x.len()` must be a multiple of the block.
pub fn quantize(format: WeightFormat, x: &[f32]) -> Result<Vec<u8>, QuantError> {
    let ty = GgmlType::from_format(format);
    let elems = x.len() as u64;
    let total = ty.tensor_bytes(elems).ok_or(QuantError::NotBlockMultiple {
        ty: ty.name(),
        elems,
        block: ty.block_elems(),
    })?;
    let total = usize::try_from(total).map_err(|_| QuantError::TooLarge {
        what: "quantized bytes",
    })?;
    let encode = encoder(format);
    let mut out = vec![0u8; total];
    for (src, dst) in x
        .chunks_exact(ty.block_elems() as usize)
        .zip(out.chunks_exact_mut(ty.block_bytes() as usize))
    {
        encode(src, dst);
    }
    Ok(out)
}

/// The block decoder of `ty`.
fn decoder(ty: GgmlType) -> Result<DecodeBlock, QuantError> {
    Ok(match ty {
        GgmlType::F32 => float::decode_f32,
        GgmlType::F16 => float::decode_f16,
        GgmlType::Bf16 => float::decode_bf16,
        GgmlType::Q8_0 => q8_0::decode,
        GgmlType::Q4_0 => q4_0::decode,
        GgmlType::Q4_1 => q4_1::decode,
        GgmlType::Q5_0 => q5_legacy::decode_q5_0,
        GgmlType::Q5_1 => q5_legacy::decode_q5_1,
        GgmlType::Q4K => q4_k::decode,
        GgmlType::Q5K => q5_k::decode,
        GgmlType::Q6K => q6_k::decode,
        GgmlType::Q8_1 | GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q8K => {
            return Err(QuantError::Unsupported {
                ty: ty.name(),
                op: "dequantizer",
            })
        }
    })
}

/// The block encoder of `format`.
fn encoder(format: WeightFormat) -> EncodeBlock {
    match format {
        WeightFormat::F32 => float::encode_f32,
        WeightFormat::F16 => float::encode_f16,
        WeightFormat::Bf16 => float::encode_bf16,
        WeightFormat::Q8_0 => q8_0::encode,
        WeightFormat::Q4_0 => q4_0::encode,
        WeightFormat::Q4_1 => q4_1::encode,
        WeightFormat::Q4K => q4_k::encode,
    }
}

/// The little-endian f16 at byte `at` of `b`, widened.
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Writes `v` rounded to f16 (`GGML_FP32_TO_FP16`) at byte `at` of `out`.
fn put_f16(out: &mut [u8], at: usize, v: f32) {
    out[at..at + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
}

/// ggml's `nearest_int`: round to nearest, ties to even, by the
/// `1.5·2^23` trick (exact for `|v| ≤ 2^22`, garbage but no panic beyond).
fn nearest_int(v: f32) -> i32 {
    let shifted = v + 12_582_912.0;
    (shifted.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (2.49, 2),
            (-7.51, -8),
            (15.0, 15),
        ];
        for (v, want) in cases {
            assert_eq!(nearest_int(v), want, "{v}");
        }
    }

    #[test]
    fn unsupported_types_and_bad_lengths_are_errors() {
        let mut out = [0f32; 256];
        for ty in [GgmlType::Q2K, GgmlType::Q3K, GgmlType::Q8_1, GgmlType::Q8K] {
            let bytes = vec![0u8; ty.block_bytes() as usize];
            assert!(matches!(
                dequantize(ty, &bytes, &mut out),
                Err(QuantError::Unsupported { .. })
            ));
        }
        let mut out = [0f32; 32];
        assert_eq!(
            dequantize(GgmlType::Q8_0, &[0u8; 33], &mut out),
            Err(QuantError::LengthMismatch {
                what: "ggml bytes",
                expected: 34,
                actual: 33
            })
        );
        let mut out = [0f32; 40];
        assert!(matches!(
            dequantize(GgmlType::Q4_0, &[0u8; 18], &mut out),
            Err(QuantError::NotBlockMultiple { elems: 40, .. })
        ));
        assert!(matches!(
            quantize(WeightFormat::Q4K, &[0.0; 255]),
            Err(QuantError::NotBlockMultiple { block: 256, .. })
        ));
        assert_eq!(quantize(WeightFormat::Q4_1, &[]), Ok(Vec::new()));
    }
}
