//! `Q5_0` and `Q5_1`: 32 weights as nibbles plus a 32-bit word of fifth
//! bits (bit `j` of the little-endian `qh` is element `j`'s fifth bit, bit
//! `j + 16` element `j + 16`'s). `Q5_0` (22 bytes: `d`, `qh`, nibbles) has
//! value `(q − 16)·d`; `Q5_1` (24 bytes: `d`, `m`, `qh`, nibbles) has
//! value `q·d + m`.

use super::f16_at;

/// `dequantize_row_q5_0` for one block.
pub(super) fn decode_q5_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    decode_5bit(&b[2..6], &b[6..22], out, |q| (q - 16) as f32 * d);
}

/// `dequantize_row_q5_1` for one block.
pub(super) fn decode_q5_1(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    decode_5bit(&b[4..8], &b[8..24], out, |q| q as f32 * d + m);
}

/// Assembles the 5-bit values of one block and maps each through `value`.
fn decode_5bit(qh: &[u8], qs: &[u8], out: &mut [f32], value: impl Fn(i32) -> f32) {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    for (j, &q) in qs.iter().enumerate() {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        out[j] = value((u32::from(q & 0x0f) | h0) as i32);
        out[j + 16] = value((u32::from(q >> 4) | h1) as i32);
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, GgmlType};

    #[test]
    fn blocks_by_hand() {
        // Q5_0, d = 2 (0x4000), qh bit 0 and bit 17 set, nibbles 0x21 in byte
        // 0 and 0x00 in byte 1 elsewhere 0x00: element 0 = (1 | 16) − 16 = 1
        // → 2; element 16 = 2 − 16 = −14 → −28; element 17 = (0 | 16) − 16
        // = 0; element 1 = 0 − 16 → −32.
        let mut b = [0u8; 22];
        b[..2].copy_from_slice(&[0x00, 0x40]);
        b[2..6].copy_from_slice(&(1u32 | 1 << 17).to_le_bytes());
        b[6] = 0x21;
        let mut out = [0f32; 32];
        dequantize(GgmlType::Q5_0, &b, &mut out).unwrap();
        assert_eq!((out[0], out[16], out[17], out[1]), (2.0, -28.0, 0.0, -32.0));
        // Q5_1, d = 0.5, m = −1 (0xbc00), qh bit 31: element 31 has q = 16 |
        // 0xf (byte 15 high nibble) = 31 → 14.5; element 0 has q = 0 → −1.
        let mut b = [0u8; 24];
        b[..4].copy_from_slice(&[0x00, 0x38, 0x00, 0xbc]);
        b[4..8].copy_from_slice(&(1u32 << 31).to_le_bytes());
        b[23] = 0xf0;
        dequantize(GgmlType::Q5_1, &b, &mut out).unwrap();
        assert_eq!((out[31], out[0], out[15]), (14.5, -1.0, -1.0));
    }
}
