//! Products with a weight stored in a `WeightFormat` (`quant_matmul`): every
//! format × epilogue × M ∈ {1, 3, 8, 17} × each reduction (none, subgroup
//! shuffles, workgroup tree) on awkward shapes — N not a multiple of the
//! column group, K an odd number of blocks (q4_k: 3 super-blocks), K = 576 —
//! against an f64 reference computed from the dequantized weights, with
//! several output columns per invocation too (rows padded to whole `vec4`s:
//! K = 576 is 81 plane words of `q4_0`, 84 stored). Tolerance:
//! |got − want| ≤ 1e-4 · max|want| + 1e-6 over the whole output.
//!
//! The stored words are random bit patterns (every int8 and nibble value, any
//! 6-bit q4_k scale) with f16 scales of moderate size, so the test covers more
//! than what a quantizer would produce.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seam_core::quant::{pack_rows, quantize, unpack_rows};
use seam_shaders::{
    quant_matmul, Dim, Epilogue, GatedAct, QuantMatmulConfig, QuantTile, WeightFormat,
};

use crate::common::*;
use crate::moe::act;

const EPILOGUES: [Epilogue; 5] = [
    Epilogue::None,
    Epilogue::AddBias,
    Epilogue::AddResidual,
    Epilogue::Gated(GatedAct::SwiGlu),
    Epilogue::Gated(GatedAct::GeGlu),
];

/// Relative tolerance against the output's largest magnitude.
const QTOL: f64 = 1e-4;

/// The K values tested for a format: an odd number of blocks and 576.
fn ks(format: WeightFormat) -> [usize; 2] {
    match format {
        WeightFormat::F32 => [36, 576],
        WeightFormat::F16 | WeightFormat::Bf16 => [40, 576],
        WeightFormat::Q4K => [768, 512],
        _ => [32 * 9, 576],
    }
}

/// The tiles: the device's choice for 16 rows (16 on lavapipe, 8 on a GPU)
/// and for 1 (on lavapipe one invocation per column, `a` shared by subgroup
/// broadcasts, several columns per invocation for most formats), one
/// invocation per column without subgroups, a subgroup-shuffle reduction of
/// 8 invocations per column, a workgroup tree of 4; then 3 columns per
/// invocation sharing broadcasts, 2 per column of a workgroup tree, and a
/// 4-row tile whose one-row path (M = 1) computes 2 columns per invocation.
fn tiles(format: WeightFormat) -> Vec<QuantTile> {
    let lim = limits();
    let sg = lim.subgroup_size.expect("lavapipe has subgroups");
    let mut tiles = vec![
        QuantTile::for_device(&lim, format, 16),
        QuantTile::for_device(&lim, format, 1),
    ];
    tiles.extend(reduction_tiles());
    tiles.extend([
        QuantTile {
            rows: 1,
            threads: 1,
            cols: 16,
            col_reps: 3,
            one_row_reps: 1,
            subgroup: Some(sg),
        },
        QuantTile {
            rows: 1,
            threads: 4,
            cols: 3,
            col_reps: 2,
            one_row_reps: 1,
            subgroup: None,
        },
        QuantTile {
            rows: 4,
            threads: 1,
            cols: 16,
            col_reps: 1,
            one_row_reps: 2,
            subgroup: Some(sg),
        },
    ]);
    tiles
}

/// One tile per reduction: one invocation per column without subgroups, a
/// subgroup-shuffle reduction, a workgroup tree (shared with the MoE tests).
pub(crate) fn reduction_tiles() -> Vec<QuantTile> {
    let sg = limits().subgroup_size.expect("lavapipe has subgroups");
    vec![
        QuantTile {
            rows: 5,
            threads: 1,
            cols: 16,
            col_reps: 1,
            one_row_reps: 1,
            subgroup: None,
        },
        QuantTile {
            rows: 3,
            threads: sg,
            cols: 4,
            col_reps: 1,
            one_row_reps: 1,
            subgroup: Some(sg),
        },
        QuantTile {
            rows: 2,
            threads: 4,
            cols: 3,
            col_reps: 1,
            one_row_reps: 1,
            subgroup: None,
        },
    ]
}

/// An f16 bit pattern of a random value of magnitude in [lo, hi) and random sign.
fn f16_bits(r: &mut ChaCha8Rng, lo: f32, hi: f32) -> u32 {
    let v = r.random_range(lo..hi) * if r.random::<bool>() { 1.0 } else { -1.0 };
    u32::from(half::f16::from_f32(v).to_bits())
}

/// Random words of `n` rows of `k` weights in the row-plane layout.
fn random_rows(format: WeightFormat, n: usize, k: usize, seed: u64) -> Vec<u32> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let words = format.row_words(k as u64).unwrap() as usize;
    let nb = k / format.block_elems() as usize;
    let mut out = Vec::with_capacity(n * words);
    for _ in 0..n {
        let mut row: Vec<u32> = (0..words).map(|_| r.random()).collect();
        match format {
            WeightFormat::F32 => {
                for x in &mut row {
                    *x = r.random_range(-1.0f32..1.0).to_bits();
                }
            }
            WeightFormat::F16 => {
                for x in &mut row {
                    *x = f16_bits(&mut r, 0.0, 1.0) | f16_bits(&mut r, 0.0, 1.0) << 16;
                }
            }
            WeightFormat::Bf16 => {
                for x in &mut row {
                    let b = |v: f32| half::bf16::from_f32(v).to_bits() as u32;
                    *x = b(r.random_range(-1.0..1.0)) | b(r.random_range(-1.0..1.0)) << 16;
                }
            }
            WeightFormat::Q8_0 | WeightFormat::Q4_0 => {
                let q = if format == WeightFormat::Q8_0 { 8 } else { 4 };
                for (i, x) in row[q * nb..].iter_mut().enumerate() {
                    let hi = if 2 * i + 1 < nb {
                        f16_bits(&mut r, 0.001, 0.05)
                    } else {
                        0
                    };
                    *x = f16_bits(&mut r, 0.001, 0.05) | hi << 16;
                }
            }
            WeightFormat::Q4_1 => {
                for x in &mut row[4 * nb..] {
                    *x = f16_bits(&mut r, 0.001, 0.05) | f16_bits(&mut r, 0.0, 0.5) << 16;
                }
            }
            WeightFormat::Q4K => {
                for b in 0..nb {
                    row[36 * b] =
                        f16_bits(&mut r, 0.0001, 0.002) | f16_bits(&mut r, 0.0001, 0.01) << 16;
                }
            }
        }
        out.extend(row);
    }
    out
}

/// f64 reference of the product and its epilogue from dequantized `w` (`[n, k]`).
fn reference(
    epilogue: Epilogue,
    a: &[f32],
    (w, w_up): (&[f32], &[f32]),
    r: &[f32],
    (m, n, k): (usize, usize, usize),
) -> Vec<f64> {
    let dot = |w: &[f32], i: usize, j: usize| -> f64 {
        (0..k)
            .map(|p| f64::from(a[i * k + p]) * f64::from(w[j * k + p]))
            .sum()
    };
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let y = dot(w, i, j);
            out.push(match epilogue {
                Epilogue::None => y,
                Epilogue::AddBias => y + f64::from(r[j]),
                Epilogue::AddResidual => y + f64::from(r[i * n + j]),
                Epilogue::Gated(g) => act(g, y) * dot(w_up, i, j),
            });
        }
    }
    out
}

/// How the test makes a weight's words: `(format, n, k, seed)`.
type MakeRows = fn(WeightFormat, usize, usize, u64) -> Vec<u32>;

/// Random weights in [-1, 1) encoded with seam-core's quantizer.
fn quantized_rows(format: WeightFormat, n: usize, k: usize, seed: u64) -> Vec<u32> {
    let w = rand_f32(seed, n * k);
    pack_rows(format, &quantize(format, &w).unwrap(), n as u64, k as u64).unwrap()
}

/// Runs one configuration on M rows with weights from `make` and checks it.
fn check(cfg: &QuantMatmulConfig, (m, n): (usize, usize), make: MakeRows, seed: u64) {
    let k = cfg.k as usize;
    let a = rand_f32(seed, m * k);
    let words = make(cfg.format, n, k, seed + 1);
    let words_up = make(cfg.format, n, k, seed + 2);
    let dequantize = |words: &[u32]| unpack_rows(cfg.format, words, n as u64, k as u64).unwrap();
    let (w, w_up) = (dequantize(&words), dequantize(&words_up));
    let r = rand_f32(
        seed + 3,
        if cfg.epilogue == Epilogue::AddBias {
            n
        } else {
            m * n
        },
    );
    let want = reference(cfg.epilogue, &a, (&w, &w_up), &r, (m, n, k));
    let kern = quant_matmul(cfg).unwrap();
    let p = pipeline(&kern);
    let mut bufs = vec![up(&a), up(&words)];
    if cfg.epilogue.gated().is_some() {
        bufs.push(up(&words_up));
    }
    if cfg.epilogue.adds() {
        bufs.push(up(&r));
    }
    bufs.push(out(m * n));
    let views: Vec<&_> = bufs.iter().collect();
    let mut sizes = vec![("m", m as u32)];
    if cfg.n == Dim::Dynamic {
        sizes.push(("n", n as u32));
    }
    run(&p, &views, &sizes);
    let got = read_f32(&bufs[bufs.len() - 1], m * n);
    let max = want.iter().fold(0.0f64, |x, y| x.max(y.abs()));
    assert!(
        max > 0.0,
        "{}: an all-zero reference checks nothing",
        kern.name
    );
    for (i, (&g, &y)) in got.iter().zip(&want).enumerate() {
        let d = (f64::from(g) - y).abs();
        assert!(
            d <= QTOL * max + 1e-6,
            "{} M={m} N={n} K={k}: element {i}: got {g}, want {y} (|diff| {d:e}, max|want| {max:e})",
            kern.name
        );
    }
}

/// Checks `cfg` on M ∈ {1, 3, 8, 17} rows of N = 67 random-word weights.
fn check_rows(cfg: &QuantMatmulConfig, seed: u64) {
    for (i, m) in [1, 3, 8, 17].into_iter().enumerate() {
        check(cfg, (m, 67), random_rows, seed + 10 * i as u64);
    }
}

#[test]
fn quant_matmul_every_format_and_epilogue() {
    let lim = limits();
    for (fi, format) in WeightFormat::ALL.into_iter().enumerate() {
        for (ei, epilogue) in EPILOGUES.into_iter().enumerate() {
            let n = if ei % 2 == 0 {
                Dim::Fixed(67)
            } else {
                Dim::Dynamic
            };
            let cfg =
                QuantMatmulConfig::new(format, (Dim::Dynamic, n, ks(format)[0] as u32), 8, &lim)
                    .with_epilogue(epilogue);
            check_rows(&cfg, 100 * (fi * 5 + ei) as u64);
        }
    }
}

/// Checks `format` with rows of `k` weights on every tile: `AddResidual`,
/// and gated (two weights decoded in one loop) on the two reducing tiles.
fn check_tiles(format: WeightFormat, k: u32, seed: u64) {
    let lim = limits();
    for (ti, tile) in tiles(format).into_iter().enumerate() {
        let epilogue = if ti >= 3 {
            Epilogue::Gated(GatedAct::SwiGlu)
        } else {
            Epilogue::AddResidual
        };
        let mut cfg = QuantMatmulConfig::new(format, (Dim::Dynamic, Dim::Dynamic, k), 1, &lim)
            .with_epilogue(epilogue);
        cfg.tile = tile;
        check_rows(&cfg, seed + 100 * ti as u64);
    }
}

#[test]
fn quant_matmul_every_format_and_tile() {
    for (fi, format) in WeightFormat::ALL.into_iter().enumerate() {
        check_tiles(format, ks(format)[0] as u32, 5000 + 500 * fi as u64);
    }
}

#[test]
fn quant_matmul_k576() {
    let lim = limits();
    for (fi, format) in WeightFormat::ALL.into_iter().enumerate() {
        let cfg = QuantMatmulConfig::new(
            format,
            (Dim::Dynamic, Dim::Fixed(67), ks(format)[1] as u32),
            1,
            &lim,
        );
        check_rows(&cfg, 9000 + 100 * fi as u64);
    }
}

#[test]
fn quant_matmul_on_quantizer_output() {
    let lim = limits();
    for (i, format) in WeightFormat::ALL.into_iter().enumerate() {
        let k = if format == WeightFormat::Q4K {
            768
        } else {
            576
        };
        let cfg = QuantMatmulConfig::new(format, (Dim::Dynamic, Dim::Dynamic, k), 3, &lim);
        check(&cfg, (3, 67), quantized_rows, 1000 + i as u64);
    }
}
