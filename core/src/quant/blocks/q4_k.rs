//! `Q4_K`: 256-weight super-blocks (144 bytes): f16 `d`, f16 `dmin`, 12 bytes
//! of 6-bit scales and mins (see `k_scales`), 128 bytes of nibbles. Each
//! 64-weight chunk `c` uses bytes `32c..32c + 32` of the nibbles: low nibbles
//! are sub-block `2c`, high nibbles sub-block `2c + 1`. Value
//! `d·sc·q − dmin·m`.

use half::f16;

use super::k_scales::{pack_scale_mins, scale_min};
use super::qkx2::{make_qkx2_quants, Search};
use super::{f16_at, nearest_int};

/// `dequantize_row_q4_K` for one super-block.
pub(super) fn decode(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    for (c, (qs, y)) in b[16..144]
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(64))
        .enumerate()
    {
        let (sc1, m1) = scale_min(2 * c, scales);
        let (sc2, m2) = scale_min(2 * c + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let (low, high) = y.split_at_mut(32);
        for ((&q, lo), hi) in qs.iter().zip(low).zip(high) {
            *lo = d1 * f32::from(q & 0x0f) - m1;
            *hi = d2 * f32::from(q >> 4) - m2;
        }
    }
}

/// `quantize_row_q4_K_ref` for one super-block, faithfully: each 32-weight
/// sub-block is fitted by `make_qkx2_quants` (weights `rms + |x|`, levels
/// 0–15, candidates `rmin = −1`, `rdelta = 0.1`, 20 steps); the scales and
/// mins are quantized to 6 bits against their maxima, and the levels are
/// recomputed against the quantized scales.
pub(super) fn encode(x: &[f32], out: &mut [u8]) {
    let search = Search {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
    };
    let mut l = [0u8; 256];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let weights = sub_block_weights(xs);
        (scales[j], mins[j]) = make_qkx2_quants(&search, xs, &weights, ls);
    }
    let max_scale = scales.iter().fold(0f32, |a, &s| if s > a { s } else { a });
    let max_min = mins.iter().fold(0f32, |a, &m| if m > a { m } else { a });
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let six_bit = |v: f32| (nearest_int(v) as u8).min(63);
    let packed = pack_scale_mins(
        &scales.map(|s| six_bit(inv_scale * s)),
        &mins.map(|m| six_bit(inv_min * m)),
    );
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    requantize(x, &packed, d.to_f32(), dmin.to_f32(), &mut l);
    out[0..2].copy_from_slice(&d.to_bits().to_le_bytes());
    out[2..4].copy_from_slice(&dmin.to_bits().to_le_bytes());
    out[4..16].copy_from_slice(&packed);
    for (c, qs) in out[16..144].chunks_exact_mut(32).enumerate() {
        for (i, q) in qs.iter_mut().enumerate() {
            *q = l[64 * c + i] | (l[64 * c + i + 32] << 4);
        }
    }
}

/// ggml's importance weights of one sub-block without an imatrix:
/// `sqrt(Σx²/32) + |x_i|`.
fn sub_block_weights(x: &[f32]) -> [f32; 32] {
    let mut sum_x2 = 0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    let av_x = (sum_x2 / 32.0).sqrt();
    let mut w = [0f32; 32];
    for (w, &v) in w.iter_mut().zip(x) {
        *w = av_x + v.abs();
    }
    w
}

/// Recomputes the levels of every sub-block against its quantized scale and
/// min; a sub-block whose scale is 0 keeps the levels of its fit.
fn requantize(x: &[f32], packed: &[u8; 12], d: f32, dmin: f32, l: &mut [u8; 256]) {
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = scale_min(j, packed);
        let dj = d * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(m);
        for (q, &v) in ls.iter_mut().zip(xs) {
            *q = nearest_int((v + dm) / dj).clamp(0, 15) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize, GgmlType};

    #[test]
    fn super_block_by_hand() {
        // d = 0.5 (0x3800), dmin = 0.25 (0x3400). Sub-block 0: scale 2, min
        // 4 (bytes 0 and 4); sub-block 1: scale 3, min 0 (bytes 1, 5);
        // sub-block 7: scale 17 = 0b01_0001, min 2: byte 11 = 0x21, top bits
        // of byte 3 = 0b01 (scale), byte 7 = 0b00 (min).
        let mut b = [0u8; 144];
        b[..4].copy_from_slice(&[0x00, 0x38, 0x00, 0x34]);
        b[4] = 2;
        b[5] = 3;
        b[8] = 4;
        b[7] = 0b0100_0000;
        b[15] = 0x21;
        // Nibble byte 0 = 0x5a: element 0 (sub-block 0) q = 10 → 0.5·2·10 −
        // 0.25·4 = 9; element 32 (sub-block 1) q = 5 → 0.5·3·5 = 7.5.
        b[16] = 0x5a;
        // Nibble byte 96 + 31 (chunk 3, last byte): element 255 (sub-block
        // 7) high nibble 0xf → 0.5·17·15 − 0.25·2 = 127.
        b[16 + 127] = 0xf0;
        let mut out = [0f32; 256];
        dequantize(GgmlType::Q4K, &b, &mut out).unwrap();
        assert_eq!((out[0], out[1], out[32], out[255]), (9.0, -1.0, 7.5, 127.0));
        // Element 224 (sub-block 7, high nibble of byte 96): q = 0 → −0.5.
        assert_eq!(out[224], -0.5);
    }
}
