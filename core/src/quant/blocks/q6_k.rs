//! `Q6_K`: 256-weight super-blocks (210 bytes): 128 bytes of low nibbles
//! `ql`, 64 bytes of high 2-bit pairs `qh`, 16 int8 scales, f16 `d`. Value
//! `d·sc·(q − 32)` with one scale per 16 weights.

use super::f16_at;

/// `dequantize_row_q6_K` for one super-block.
pub(super) fn decode(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 208);
    for (n, y) in out.chunks_exact_mut(128).enumerate() {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let scale = |i: usize| d * f32::from(sc[i] as i8);
        for l in 0..32 {
            let is = l / 16;
            let h = qh[l];
            let q1 = i32::from((ql[l] & 0x0f) | ((h & 3) << 4)) - 32;
            let q2 = i32::from((ql[l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
            let q3 = i32::from((ql[l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            let q4 = i32::from((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            y[l] = scale(is) * q1 as f32;
            y[l + 32] = scale(is + 2) * q2 as f32;
            y[l + 64] = scale(is + 4) * q3 as f32;
            y[l + 96] = scale(is + 6) * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, GgmlType};

    #[test]
    fn super_block_by_hand() {
        // d = 0.5; scale 0 = 2, scale 3 = −1, scale 15 = 4.
        let mut b = [0u8; 210];
        b[208..].copy_from_slice(&[0x00, 0x38]);
        b[192] = 2;
        b[195] = (-1i8) as u8;
        b[207] = 4;
        // Element 0: ql[0] low nibble 0xf, qh[0] bits 0–1 = 0b11 → 63 − 32 =
        // 31 → 0.5·2·31 = 31. Element 48 (l = 16, second 32 of half 0, is 1
        // + 2 = scale 3): ql[48] low nibble 0, qh[16] bits 2–3 = 0 → −32 →
        // 0.5·(−1)·(−32) = 16.
        b[0] = 0x0f;
        b[128] = 0b11;
        // Element 255 (half 1, l = 31, q4, scale 8 + 1 + 6 = 15): ql[64 + 63]
        // high nibble 1, qh[32 + 31] bits 6–7 = 0b10 → 33 − 32 = 1 → 2.
        b[127] = 0x10;
        b[191] = 0b1000_0000;
        let mut out = [0f32; 256];
        dequantize(GgmlType::Q6K, &b, &mut out).unwrap();
        assert_eq!((out[0], out[48], out[255]), (31.0, 16.0, 2.0));
        // Element 1: q = −32 with scale 2 → −32.
        assert_eq!(out[1], -32.0);
    }
}
