//! `Q4_1`: 32 weights as an f16 scale `d`, an f16 minimum `m` and 16 bytes of
//! nibbles (20 bytes), nibbles placed as in `Q4_0`; value `q·d + m`.

use super::{f16_at, put_f16};

/// `dequantize_row_q4_1` for one block.
pub(super) fn decode(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let (low, high) = out.split_at_mut(16);
    for ((&q, lo), hi) in b[4..20].iter().zip(low).zip(high) {
        *lo = f32::from(q & 0x0f) * d + m;
        *hi = f32::from(q >> 4) * d + m;
    }
}

/// `quantize_row_q4_1_ref` for one block: `d = (max − min)/15`, `m = min`,
/// `q = min(15, (int8)((x − min)/d + 0.5))`.
pub(super) fn encode(x: &[f32], out: &mut [u8]) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(out, 0, d);
    put_f16(out, 2, min);
    let nibble = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
    for (j, q) in out[4..20].iter_mut().enumerate() {
        *q = nibble(x[j]) | (nibble(x[j + 16]) << 4);
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, quantize, GgmlType, WeightFormat};

    #[test]
    fn round_trip_by_hand() {
        // min −1, max 14: d = 1 (0x3c00), m = −1 (0xbc00). Element 0 (−1) →
        // q 0; element 16 (14) → q 15; element 1 (2.4) → 3.4 + 0.5 → 3;
        // zeros → 1.5 → 1.
        let mut x = [0f32; 32];
        x[0] = -1.0;
        x[16] = 14.0;
        x[1] = 2.4;
        let b = quantize(WeightFormat::Q4_1, &x).unwrap();
        assert_eq!(&b[..4], &[0x00, 0x3c, 0x00, 0xbc]);
        assert_eq!(b[4], 0xf0);
        assert_eq!(b[5], 0x13);
        assert!(b[6..].iter().all(|&q| q == 0x11));
        let mut out = [0f32; 32];
        dequantize(GgmlType::Q4_1, &b, &mut out).unwrap();
        // q·1 − 1: −1, 14, 2, and 0 for the zeros.
        assert_eq!((out[0], out[16], out[1], out[2]), (-1.0, 14.0, 2.0, 0.0));
    }
}
