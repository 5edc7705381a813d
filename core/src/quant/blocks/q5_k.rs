//! `Q5_K`: 256-weight super-blocks (176 bytes): f16 `d`, f16 `dmin`, 12 bytes
//! of 6-bit scales and mins, 32 bytes of fifth bits `qh`, 128 bytes of
//! nibbles. Chunk `c` (64 weights) takes its fifth bits from bits `2c`
//! (low nibbles) and `2c + 1` (high nibbles) of `qh[l]`. Value
//! `d·sc·q − dmin·m`.

use super::f16_at;
use super::k_scales::scale_min;

/// `dequantize_row_q5_K` for one super-block.
pub(super) fn decode(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    for (c, (ql, y)) in b[48..176]
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(64))
        .enumerate()
    {
        let (sc1, m1) = scale_min(2 * c, scales);
        let (sc2, m2) = scale_min(2 * c + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
        let fifth = |h: u8, u: u8| if h & u != 0 { 16 } else { 0 };
        for (l, &q) in ql.iter().enumerate() {
            y[l] = d1 * f32::from((q & 0x0f) + fifth(qh[l], u1)) - m1;
            y[l + 32] = d2 * f32::from((q >> 4) + fifth(qh[l], u2)) - m2;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, GgmlType};

    #[test]
    fn super_block_by_hand() {
        // d = 1, dmin = 1; sub-block 0: scale 1, min 1; sub-block 7: scale 2,
        // min 3 (byte 11 = 0x32, no high bits).
        let mut b = [0u8; 176];
        b[..4].copy_from_slice(&[0x00, 0x3c, 0x00, 0x3c]);
        b[4] = 1;
        b[8] = 1;
        b[15] = 0x32;
        // Element 0: nibble 3, fifth bit (qh[0] bit 0) set → 19 − 1 = 18.
        b[48] = 0x03;
        b[16] = 0b1000_0001;
        // Element 255 (chunk 3, high nibble of ql byte 127, qh[31] bit 7):
        // nibble 4 + 16 → 2·20 − 3 = 37.
        b[48 + 127] = 0x40;
        b[16 + 31] = 0b1000_0000;
        let mut out = [0f32; 256];
        dequantize(GgmlType::Q5K, &b, &mut out).unwrap();
        // Element 224 (chunk 3, high nibble of ql byte 96 = 0) takes its fifth
        // bit from qh[0] bit 7, set above: 2·16 − 3 = 29. Element 1 has
        // nibble 0 and no fifth bit: −1.
        assert_eq!(
            (out[0], out[1], out[255], out[224]),
            (18.0, -1.0, 37.0, 29.0)
        );
    }
}
