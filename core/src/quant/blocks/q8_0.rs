//! `Q8_0`: 32 weights as an f16 scale `d` and 32 int8 `q` (34 bytes); value
//! `q·d`.

use super::{f16_at, put_f16};

/// `dequantize_row_q8_0` for one block.
pub(super) fn decode(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for (y, &q) in out.iter_mut().zip(&b[2..34]) {
        *y = f32::from(q as i8) * d;
    }
}

/// `quantize_row_q8_0_ref` for one block: `d = amax/127`, `q = round(x/d)`.
pub(super) fn encode(x: &[f32], out: &mut [u8]) {
    let amax = x
        .iter()
        .fold(0f32, |a, v| if a > v.abs() { a } else { v.abs() });
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(out, 0, d);
    for (q, &v) in out[2..34].iter_mut().zip(x) {
        *q = (v * id).round() as i8 as u8;
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, quantize, GgmlType, WeightFormat};

    #[test]
    fn block_by_hand() {
        // x_j = j − 16 for j < 31, x_31 = 127: amax 127, d = 1.0 (f16 0x3c00),
        // q_j = x_j exactly.
        let mut x: Vec<f32> = (0..32).map(|j| j as f32 - 16.0).collect();
        x[31] = 127.0;
        let b = quantize(WeightFormat::Q8_0, &x).unwrap();
        assert_eq!(&b[..2], &[0x00, 0x3c]);
        assert_eq!(b[2], (-16i8) as u8);
        assert_eq!(b[33], 127);
        // Decode a block with d = 0.25 (0x3400): q = -128 → -32, q = 3 → 0.75.
        let mut block = [0u8; 34];
        block[..2].copy_from_slice(&[0x00, 0x34]);
        block[2] = 0x80;
        block[3] = 3;
        let mut out = [9f32; 32];
        dequantize(GgmlType::Q8_0, &block, &mut out).unwrap();
        assert_eq!(out[0], -32.0);
        assert_eq!(out[1], 0.75);
        assert!(out[2..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn rounds_half_away_from_zero() {
        // amax 127 → d = 1; 2.5 → 3 and -2.5 → -3 (roundf), not to even.
        let mut x = [0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        let b = quantize(WeightFormat::Q8_0, &x).unwrap();
        assert_eq!([b[3], b[4]], [3, (-3i8) as u8]);
    }
}
