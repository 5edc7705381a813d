//! Quantization against ggml's block semantics on random data: round-trip
//! error bounds per format, the row-plane layout read back word by word as
//! `WeightFormat`'s docs describe it, and the errors bad sizes give.

use half::{bf16, f16};
use seam_core::quant::{dequantize, pack_rows, quantize, unpack_ggml, unpack_rows};
use seam_core::{GgmlType, QuantError, WeightFormat};

/// A tiny deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// `n` values: blocks of 32 with magnitudes from 1e-3 to 50, some
    /// all-zero, some constant, some one-signed, some with one outlier.
    fn weights(&mut self, n: usize) -> Vec<f32> {
        let mut x = Vec::with_capacity(n);
        while x.len() < n {
            let scale = [1e-3, 0.02, 1.0, 50.0][(self.next() % 4) as usize];
            let kind = self.next() % 8;
            let c = self.unit() * scale;
            for i in 0..32 {
                let u = self.unit() * scale;
                x.push(match kind {
                    0 => 0.0,
                    1 => c,
                    2 => u.abs(),
                    3 if i == 7 => 40.0 * scale,
                    _ => u,
                });
            }
        }
        x.truncate(n);
        x
    }
}

fn round_trip(format: WeightFormat, x: &[f32]) -> Vec<f32> {
    let bytes = quantize(format, x).unwrap();
    let mut y = vec![f32::NAN; x.len()];
    dequantize(GgmlType::from_format(format), &bytes, &mut y).unwrap();
    y
}

fn f16_round(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

#[test]
fn float_formats_round_to_nearest() {
    let x = Rng(1).weights(4096);
    assert_eq!(round_trip(WeightFormat::F32, &x), x);
    for (format, rel) in [
        (WeightFormat::F16, 2f32.powi(-11)),
        (WeightFormat::Bf16, 2f32.powi(-8)),
    ] {
        for (a, b) in x.iter().zip(round_trip(format, &x)) {
            // Half an ulp relative, plus the f16 subnormal spacing 2^-24 / 2.
            assert!(
                (a - b).abs() <= a.abs() * rel + 2f32.powi(-25),
                "{format}: {a} → {b}"
            );
        }
    }
    // bf16 keeps the f32 exponent range; f16 overflows to infinity.
    assert_eq!(
        round_trip(WeightFormat::Bf16, &[1e30])[0],
        bf16::from_f32(1e30).to_f32()
    );
    assert_eq!(round_trip(WeightFormat::F16, &[1e6])[0], f32::INFINITY);
}

#[test]
fn q8_0_error_is_half_a_step() {
    let x = Rng(2).weights(32 * 300);
    let y = round_trip(WeightFormat::Q8_0, &x);
    for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
        let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        // |q·d − x| ≤ d/2; decoding with d rounded to f16 adds |q|·|d16 − d|.
        let bound = d / 2.0 + 127.0 * (f16_round(d) - d).abs() + amax * 1e-6;
        for (a, b) in xb.iter().zip(yb) {
            assert!((a - b).abs() <= bound, "{a} → {b} (d {d})");
        }
    }
}

#[test]
fn q4_0_error_is_half_a_step_except_at_the_clamp() {
    let x = Rng(3).weights(32 * 300);
    let y = round_trip(WeightFormat::Q4_0, &x);
    for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
        let max = xb
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let f16_err = 8.0 * (f16_round(d) - d).abs() + max.abs() * 1e-6;
        for (a, b) in xb.iter().zip(yb) {
            // Levels run −8..=7 in steps of d: x/d up to 7.5 rounds to within
            // |d|/2; beyond (the side opposite `max`, up to 8) clamps to 7,
            // within |d|.
            let steps = if d != 0.0 { a / d } else { 0.0 };
            let half_steps = if steps > 7.5 { 1.0 } else { 0.5 };
            let bound = d.abs() * half_steps + f16_err;
            assert!((a - b).abs() <= bound, "{a} → {b} (d {d})");
        }
    }
}

#[test]
fn q4_1_error_is_half_a_step() {
    let x = Rng(4).weights(32 * 300);
    let y = round_trip(WeightFormat::Q4_1, &x);
    for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
        let min = xb.iter().fold(f32::MAX, |a, &v| a.min(v));
        let max = xb.iter().fold(-f32::MAX, |a, &v| a.max(v));
        let d = (max - min) / 15.0;
        let bound = d / 2.0
            + 15.0 * (f16_round(d) - d).abs()
            + (f16_round(min) - min).abs()
            + (max.abs() + min.abs()) * 1e-6;
        for (a, b) in xb.iter().zip(yb) {
            assert!((a - b).abs() <= bound, "{a} → {b} (d {d}, min {min})");
        }
    }
}

#[test]
fn q4_k_error_is_within_one_plain_step() {
    // Stated bound: within each 32-weight sub-block, every weight is within
    // one step of a plain min/max 4-bit fit, `(max − min(0, min))/15`, and
    // the RMS error within 0.4 of it (uniform rounding alone gives 0.29);
    // plus f16 and 6-bit scale rounding, bounded by 2 % of the super-block's
    // largest magnitude.
    let x = Rng(5).weights(256 * 64);
    let y = round_trip(WeightFormat::Q4K, &x);
    for (xs, ys) in x.chunks(256).zip(y.chunks(256)) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (xb, yb) in xs.chunks(32).zip(ys.chunks(32)) {
            let min = xb.iter().fold(0f32, |a, &v| a.min(v));
            let max = xb.iter().fold(f32::MIN, |a, &v| a.max(v));
            let step = (max - min) / 15.0;
            let slack = 0.02 * amax;
            let mut sq = 0f32;
            for (a, b) in xb.iter().zip(yb) {
                assert!((a - b).abs() <= step + slack, "{a} → {b} (step {step})");
                sq += (a - b) * (a - b);
            }
            let rms = (sq / 32.0).sqrt();
            assert!(rms <= 0.4 * step + slack, "rms {rms}, step {step}");
        }
    }
}

/// Element `i` of a row read word by word as the table in `WeightFormat`'s
/// docs lays it out (independently of `pack_rows`).
fn read_plane_row(format: WeightFormat, row: &[u32], k: usize) -> Vec<f32> {
    let byte = |w: usize, i: usize| (row[w] >> (8 * i)) as u8;
    let half = |w: usize, h: usize| (row[w] >> (16 * h)) as u16;
    let f16_half = |w: usize, h: usize| f16::from_bits(half(w, h)).to_f32();
    let nb = k / 32;
    match format {
        WeightFormat::F32 => (0..k).map(|i| f32::from_bits(row[i])).collect(),
        WeightFormat::F16 => (0..k).map(|i| f16_half(i / 2, i % 2)).collect(),
        WeightFormat::Bf16 => (0..k)
            .map(|i| bf16::from_bits(half(i / 2, i % 2)).to_f32())
            .collect(),
        WeightFormat::Q8_0 => (0..k)
            .map(|i| {
                let (b, j) = (i / 32, i % 32);
                f32::from(byte(8 * b + j / 4, j % 4) as i8) * f16_half(8 * nb + b / 2, b % 2)
            })
            .collect(),
        WeightFormat::Q4_0 | WeightFormat::Q4_1 => (0..k)
            .map(|i| {
                let (b, e) = (i / 32, i % 32);
                let j = e % 16;
                let packed = byte(4 * b + j / 4, j % 4);
                let q = if e < 16 { packed & 0xf } else { packed >> 4 };
                if format == WeightFormat::Q4_0 {
                    (i32::from(q) - 8) as f32 * f16_half(4 * nb + b / 2, b % 2)
                } else {
                    f32::from(q) * f16_half(4 * nb + b, 0) + f16_half(4 * nb + b, 1)
                }
            })
            .collect(),
        WeightFormat::Q4K => {
            // The super-blocks' ggml bytes as they are, little-endian.
            let bytes: Vec<u8> = row.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut out = vec![0f32; k];
            dequantize(GgmlType::Q4K, &bytes, &mut out).unwrap();
            out
        }
    }
}

#[test]
fn rows_are_padded_to_whole_vec4s_with_zeros() {
    // Plane words before the padding, counted from the layout table at
    // K = 576 (18 blocks): q4_0 72 quants + 9 scales, q8_0 144 + 9, q4_1
    // 72 + 18; f32 and f16 at K = 3: 3 and 2 words.
    let cases = [
        (WeightFormat::Q4_0, 576, 81),
        (WeightFormat::Q8_0, 576, 153),
        (WeightFormat::Q4_1, 576, 90),
        (WeightFormat::F32, 3, 3),
        (WeightFormat::F16, 3, 2),
    ];
    let mut rng = Rng(9);
    for (format, k, unpadded) in cases {
        let x = rng.weights(2 * k as usize);
        let words = pack_rows(format, &quantize(format, &x).unwrap(), 2, k).unwrap();
        let row_words = format.row_words(k).unwrap() as usize;
        assert!(row_words > unpadded, "{format} k {k}");
        for row in words.chunks(row_words) {
            assert!(
                row[unpadded..].iter().all(|&w| w == 0),
                "{format}: padding is zero"
            );
            assert!(
                row[..unpadded].iter().any(|&w| w != 0),
                "{format}: the planes hold data"
            );
        }
    }
}

#[test]
fn planes_hold_what_the_layout_table_says() {
    let mut rng = Rng(6);
    for format in WeightFormat::ALL {
        for k in [1u64, 3, 32, 96, 256, 512, 544, 576] {
            if !format.fits(k) {
                continue;
            }
            for rows in [1u64, 3, 5] {
                let x = rng.weights((rows * k) as usize);
                let ggml = quantize(format, &x).unwrap();
                let words = pack_rows(format, &ggml, rows, k).unwrap();
                let row_words = format.row_words(k).unwrap() as usize;
                assert_eq!(words.len(), rows as usize * row_words, "{format} k {k}");
                assert_eq!(
                    row_words % 4,
                    0,
                    "{format} k {k}: rows start 16 bytes apart"
                );

                let mut want = vec![0f32; x.len()];
                dequantize(GgmlType::from_format(format), &ggml, &mut want).unwrap();
                let read: Vec<f32> = words
                    .chunks(row_words)
                    .flat_map(|row| read_plane_row(format, row, k as usize))
                    .collect();
                assert_eq!(bits(&read), bits(&want), "{format} k {k} rows {rows}");
                let unpacked = unpack_rows(format, &words, rows, k).unwrap();
                assert_eq!(bits(&unpacked), bits(&want), "{format} k {k} rows {rows}");
                assert_eq!(unpack_ggml(format, &words, rows, k).unwrap(), ggml);
            }
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn plane_padding_is_zero() {
    // Three f16 weights: the fourth half of word 1 is zero, and words 2, 3
    // pad the row. Seventeen Q8_0 blocks: the high half of the last scale
    // word is zero.
    let words = pack_rows(WeightFormat::F16, &[1, 2, 3, 4, 5, 6], 1, 3).unwrap();
    assert_eq!(words, [0x0403_0201, 0x0000_0605, 0, 0]);
    let x = Rng(7).weights(544);
    let ggml = quantize(WeightFormat::Q8_0, &x).unwrap();
    let words = pack_rows(WeightFormat::Q8_0, &ggml, 1, 544).unwrap();
    assert_eq!(words.len(), 17 * 8 + 9 + 3);
    assert_eq!(words[17 * 8 + 8] >> 16, 0);
    assert_eq!(
        words[17 * 8 + 8] as u16,
        u16::from_le_bytes([ggml[16 * 34], ggml[16 * 34 + 1]])
    );
}

#[test]
fn bad_sizes_are_named_errors() {
    let ggml = quantize(WeightFormat::Q4_0, &[0.5; 64]).unwrap();
    assert_eq!(
        pack_rows(WeightFormat::Q4_0, &ggml, 3, 32),
        Err(QuantError::LengthMismatch {
            what: "ggml bytes",
            expected: 54,
            actual: 36
        })
    );
    assert_eq!(
        pack_rows(WeightFormat::Q4_0, &ggml, 1, 48),
        Err(QuantError::BadRowLength {
            format: "q4_0",
            k: 48,
            block: 32
        })
    );
    assert!(matches!(
        pack_rows(WeightFormat::Q4K, &ggml, 1, 0),
        Err(QuantError::BadRowLength { k: 0, .. })
    ));
    assert!(matches!(
        pack_rows(WeightFormat::Q8_0, &ggml, u64::MAX, 32),
        Err(QuantError::TooLarge { .. })
    ));
    let words = pack_rows(WeightFormat::Q4_0, &ggml, 2, 32).unwrap();
    assert_eq!(
        unpack_rows(WeightFormat::Q4_0, &words[1..], 2, 32),
        Err(QuantError::LengthMismatch {
            what: "plane words",
            expected: 16,
            actual: 15
        })
    );
    assert!(matches!(
        unpack_rows(WeightFormat::Q4_0, &words, u64::MAX / 2, 32),
        Err(QuantError::TooLarge { .. })
    ));
    assert_eq!(pack_rows(WeightFormat::Q4_1, &[], 0, 32), Ok(Vec::new()));
}

#[test]
fn non_finite_and_extreme_inputs_never_panic() {
    // C leaves these undefined; here every format still returns whole blocks
    // and decodes them without panicking. A finite block next to them is
    // unaffected.
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -f32::MAX,
        1e-45,
    ];
    for format in WeightFormat::ALL {
        for &s in &specials {
            let mut x = vec![0.25f32; 512];
            x[5] = s;
            x[300] = 1.0;
            let bytes = quantize(format, &x).unwrap();
            assert_eq!(bytes.len() as u64, format.ggml_row_bytes(512).unwrap());
            let mut y = vec![0f32; 512];
            dequantize(GgmlType::from_format(format), &bytes, &mut y).unwrap();
            // Element 300 lives in another 256-block than element 5.
            assert!(
                (y[300] - 1.0).abs() <= 1.0 / 16.0,
                "{format} with {s}: {}",
                y[300]
            );
        }
    }
}
