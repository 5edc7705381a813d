//! The 12 bytes of 6-bit scales and mins of `Q4_K` and `Q5_K` super-blocks:
//! sub-blocks 0–3 keep scale and min in the low 6 bits of bytes 0–3 and
//! 4–7; sub-blocks 4–7 keep their low 4 bits in the nibbles of bytes 8–11
//! and their high 2 bits in the top bits of bytes 0–7.

/// `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0–7).
pub(super) fn scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Packs eight 6-bit scales and mins as `quantize_row_q4_K_ref` does (each
/// below 64).
pub(super) fn pack_scale_mins(scales: &[u8; 8], mins: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = (scales[j], mins[j]);
        if j < 4 {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
            q[j - 4] |= (ls >> 4) << 6;
            q[j] |= (lm >> 4) << 6;
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_then_unpack_is_identity() {
        let scales = [0, 63, 17, 32, 48, 5, 63, 21];
        let mins = [63, 0, 40, 1, 33, 62, 16, 15];
        let q = pack_scale_mins(&scales, &mins);
        for j in 0..8 {
            assert_eq!(scale_min(j, &q), (scales[j], mins[j]), "sub-block {j}");
        }
        // By hand: sub-block 4's scale 48 = 0b11_0000 puts 0b0000 in the low
        // nibble of byte 8 and 0b11 in the top bits of byte 0 (scale 0).
        assert_eq!(q[0], 0b1100_0000);
        // Sub-block 4's min 33 = 0b10_0001: high nibble of byte 8 is 1, top
        // bits of byte 4 (min 63) are 0b10.
        assert_eq!(q[8], 0x10);
        assert_eq!(q[4], 0b1011_1111);
    }
}
