//! Last-axis row kernels: RMSNorm, LayerNorm, softmax, sum.

use seam_shaders::{row_kernel, Dim, RowConfig, RowOp};

use crate::common::*;

const SHAPES: &[(usize, usize)] = &[(1, 1), (1, 4096), (7, 5), (33, 257), (3, 1000)];

fn run_row(
    op: RowOp,
    rows: usize,
    d: usize,
    workgroup: Option<u32>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let lim = limits();
    let x: Vec<f32> = rand_f32(rows as u64 * 31 + d as u64, rows * d)
        .iter()
        .map(|v| v * 3.0)
        .collect();
    let w = rand_f32(7, d);
    let b = rand_f32(8, d);
    let mut cfg = RowConfig::new(op, Dim::Dynamic, &lim);
    if let Some(wg) = workgroup {
        cfg.workgroup = wg;
    }
    let p = pipeline(&row_kernel(&cfg).unwrap());
    let n_out = if op == RowOp::Sum { rows } else { rows * d };
    let o = out(n_out);
    let (xb, wb, bb) = (up(&x), up(&w), up(&b));
    let bufs: Vec<&seam_runtime::device::GpuBuffer> = match op {
        RowOp::RmsNorm { .. } => vec![&xb, &wb, &o],
        RowOp::LayerNorm { .. } => vec![&xb, &wb, &bb, &o],
        _ => vec![&xb, &o],
    };
    run(&p, &bufs, &[("rows", rows as u32), ("d", d as u32)]);
    (x, w, b, read_f32(&o, n_out))
}

#[test]
fn rms_norm() {
    for &(rows, d) in SHAPES {
        for wg in [None, Some(1), Some(64)] {
            let (x, w, _, got) = run_row(RowOp::RmsNorm { eps: 1e-5 }, rows, d, wg);
            let mut want = Vec::new();
            for r in 0..rows {
                let row = &x[r * d..(r + 1) * d];
                let ms = row
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>()
                    / d as f64;
                let inv = 1.0 / (ms + 1e-5).sqrt();
                want.extend(
                    row.iter()
                        .zip(&w)
                        .map(|(&v, &g)| f64::from(v) * inv * f64::from(g)),
                );
            }
            assert_close(&format!("rms_norm {rows}x{d} {wg:?}"), &got, &want);
        }
    }
}

#[test]
fn layer_norm() {
    for &(rows, d) in SHAPES {
        let (x, w, b, got) = run_row(RowOp::LayerNorm { eps: 1e-5 }, rows, d, None);
        let mut want = Vec::new();
        for r in 0..rows {
            let row = row_f64(&x, r, d);
            let mean = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
            let inv = 1.0 / (var + 1e-5).sqrt();
            want.extend((0..d).map(|c| (row[c] - mean) * inv * f64::from(w[c]) + f64::from(b[c])));
        }
        // Scale: |x − mean|·inv·|w| + |b| bounds the rounding of each term.
        assert_close(&format!("layer_norm {rows}x{d}"), &got, &want);
    }
}

#[test]
fn softmax() {
    for &(rows, d) in SHAPES {
        let (x, _, _, got) = run_row(RowOp::Softmax, rows, d, None);
        let mut want = Vec::new();
        for r in 0..rows {
            let row = row_f64(&x, r, d);
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            want.extend(row.iter().map(|v| (v - m).exp() / s));
        }
        assert_close(&format!("softmax {rows}x{d}"), &got, &want);
    }
}

#[test]
fn reduce_sum() {
    for &(rows, d) in SHAPES {
        let (x, _, _, got) = run_row(RowOp::Sum, rows, d, None);
        let want: Vec<f64> = (0..rows)
            .map(|r| x[r * d..(r + 1) * d].iter().map(|&v| f64::from(v)).sum())
            .collect();
        let scale: Vec<f64> = (0..rows)
            .map(|r| {
                x[r * d..(r + 1) * d]
                    .iter()
                    .map(|&v| f64::from(v).abs())
                    .sum()
            })
            .collect();
        assert_close_scaled(&format!("reduce_sum {rows}x{d}"), &got, &want, &scale);
    }
}

/// Row `r` of the `[rows, d]` matrix `x`, widened to f64.
fn row_f64(x: &[f32], r: usize, d: usize) -> Vec<f64> {
    x[r * d..(r + 1) * d]
        .iter()
        .map(|&v| f64::from(v))
        .collect()
}
