//! `Q4_0`: 32 weights as an f16 scale `d` and 16 bytes of nibbles (18
//! bytes); byte `j` holds element `j` in its low nibble and element `j + 16`
//! in its high nibble; value `(q − 8)·d`.

use super::{f16_at, put_f16};

/// `dequantize_row_q4_0` for one block.
pub(super) fn decode(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let (low, high) = out.split_at_mut(16);
    for ((&q, lo), hi) in b[2..18].iter().zip(low).zip(high) {
        *lo = (i32::from(q & 0x0f) - 8) as f32 * d;
        *hi = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

/// `quantize_row_q4_0_ref` for one block: `max` is the signed value of
/// largest magnitude (the first one on ties), `d = max/−8`,
/// `q = min(15, (int8)(x/d + 8.5))`.
pub(super) fn encode(x: &[f32], out: &mut [u8]) {
    let mut amax = 0f32;
    let mut max = 0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(out, 0, d);
    let nibble = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    for (j, q) in out[2..18].iter_mut().enumerate() {
        *q = nibble(x[j]) | (nibble(x[j + 16]) << 4);
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, quantize, GgmlType, WeightFormat};

    #[test]
    fn block_by_hand() {
        // d = 0.5 (f16 0x3800). Byte 0 = 0x9f: element 0 has nibble 0xf →
        // (15 − 8)·0.5 = 3.5, element 16 has nibble 0x9 → (9 − 8)·0.5 = 0.5.
        // Byte 15 = 0x08: element 15 → 0, element 31 → (0 − 8)·0.5 = −4.
        // The other bytes are 0x88 → both elements 0.
        let mut block = [0x88u8; 18];
        block[..2].copy_from_slice(&[0x00, 0x38]);
        block[2] = 0x9f;
        block[17] = 0x08;
        let mut out = [0f32; 32];
        dequantize(GgmlType::Q4_0, &block, &mut out).unwrap();
        let mut want = [0f32; 32];
        want[0] = 3.5;
        want[16] = 0.5;
        want[31] = -4.0;
        assert_eq!(out, want);
    }

    #[test]
    fn encodes_by_hand() {
        // The value of largest magnitude is −4 (element 3): d = −4/−8 = 0.5,
        // id = 2. Element 3: −4·2 + 8.5 = 0.5 → 0; element 0 (= 3.5): 15.5 →
        // min(15, 15) = 15; element 16 (= 1.2): 10.9 → 10; the rest (0):
        // 8.5 → 8.
        let mut x = [0f32; 32];
        x[3] = -4.0;
        x[0] = 3.5;
        x[16] = 1.2;
        let b = quantize(WeightFormat::Q4_0, &x).unwrap();
        assert_eq!(&b[..2], &[0x00, 0x38]);
        assert_eq!(b[2], 0xaf);
        assert_eq!(b[5], 0x80);
        assert!(b[6..].iter().all(|&q| q == 0x88));
        // An all-zero block: max stays 0.0, d = 0/−8 = −0.0 (f16 0x8000).
        let b = quantize(WeightFormat::Q4_0, &[0.0; 32]).unwrap();
        assert_eq!(&b[..2], &[0x00, 0x80]);
        // A positive value of largest magnitude gives a negative d: −0.5.
        let mut y = x;
        y[3] = 4.0;
        let b = quantize(WeightFormat::Q4_0, &y).unwrap();
        assert_eq!(&b[..2], &[0x00, 0xb8]);
    }
}
