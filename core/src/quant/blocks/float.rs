//! The float "blocks" (one element each): f32, f16 and bf16, little-endian.

use half::{bf16, f16};

/// Decodes one little-endian f32.
pub(super) fn decode_f32(b: &[u8], out: &mut [f32]) {
    out[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
}

/// Decodes one little-endian f16.
pub(super) fn decode_f16(b: &[u8], out: &mut [f32]) {
    out[0] = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
}

/// Decodes one little-endian bf16.
pub(super) fn decode_bf16(b: &[u8], out: &mut [f32]) {
    out[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
}

/// Encodes one f32.
pub(super) fn encode_f32(x: &[f32], out: &mut [u8]) {
    out.copy_from_slice(&x[0].to_le_bytes());
}

/// Encodes one f32 as f16, rounding to nearest even.
pub(super) fn encode_f16(x: &[f32], out: &mut [u8]) {
    out.copy_from_slice(&f16::from_f32(x[0]).to_bits().to_le_bytes());
}

/// Encodes one f32 as bf16, rounding to nearest even (NaN stays a quiet NaN,
/// as `ggml_compute_fp32_to_bf16`).
pub(super) fn encode_bf16(x: &[f32], out: &mut [u8]) {
    out.copy_from_slice(&bf16::from_f32(x[0]).to_bits().to_le_bytes());
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, quantize, GgmlType, WeightFormat};

    #[test]
    fn half_encodings_by_hand() {
        // f16 1.0 = 0x3c00, -2.0 = 0xc000; bf16 1.0 = 0x3f80, -2.0 = 0xc000.
        let f16 = quantize(WeightFormat::F16, &[1.0, -2.0]).unwrap();
        assert_eq!(f16, [0x00, 0x3c, 0x00, 0xc0]);
        let bf16 = quantize(WeightFormat::Bf16, &[1.0, -2.0]).unwrap();
        assert_eq!(bf16, [0x80, 0x3f, 0x00, 0xc0]);
        // bf16 of 1 + 2^-8 (0x3f808000) is a tie: rounds to even 0x3f80;
        // 1 + 3·2^-8 (0x3f818000) rounds up to 0x3f82.
        let ties = quantize(WeightFormat::Bf16, &[1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0]).unwrap();
        assert_eq!(ties, [0x80, 0x3f, 0x82, 0x3f]);
        let mut out = [0f32; 2];
        dequantize(GgmlType::Bf16, &ties, &mut out).unwrap();
        assert_eq!(out, [1.0, 1.0 + 2.0 / 128.0]);
        dequantize(GgmlType::F16, &f16, &mut out).unwrap();
        assert_eq!(out, [1.0, -2.0]);
        let f32 = quantize(WeightFormat::F32, &[0.1]).unwrap();
        assert_eq!(f32, 0.1f32.to_le_bytes());
    }
}
