//! Reductions over the last axis: `rms_norm`, `layer_norm`, `softmax`, `reduce_sum`.

use super::tensor::{Tensor, TensorData};
use super::{At, EvalError};

/// The size of the last axis (1 for a scalar).
fn last_dim(t: &Tensor) -> usize {
    t.shape.last().copied().unwrap_or(1)
}

/// `x / sqrt(mean(x²) + eps) · w` over the last axis.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f32, at: &At) -> Result<Tensor, EvalError> {
    let d = last_dim(x);
    let (xf, wf) = (x.floats(), w.floats());
    if wf.len() != d {
        return Err(at.bug(format!("weight has {} elements for rows of {d}", wf.len())));
    }
    let mut out = Vec::with_capacity(xf.len());
    for row in xf.chunks(d.max(1)) {
        let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        out.extend(row.iter().zip(wf.iter()).map(|(v, g)| v * inv * g));
    }
    at.floats(x.dtype, x.shape.clone(), out)
}

/// `(x - mean) / sqrt(var + eps) · w + b` over the last axis, biased variance.
pub(crate) fn layer_norm(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f32,
    at: &At,
) -> Result<Tensor, EvalError> {
    let d = last_dim(x);
    let (xf, wf, bf) = (x.floats(), w.floats(), b.floats());
    if wf.len() != d || bf.len() != d {
        return Err(at.bug(format!("weight/bias sizes differ from rows of {d}")));
    }
    let mut out = Vec::with_capacity(xf.len());
    for row in xf.chunks(d.max(1)) {
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        out.extend(
            row.iter()
                .zip(wf.iter().zip(bf.iter()))
                .map(|(v, (g, c))| (v - mean) * inv * g + c),
        );
    }
    at.floats(x.dtype, x.shape.clone(), out)
}

/// Softmax of one row, max-subtracted: `exp(x - max) / Σ exp(x - max)`.
pub(crate) fn softmax_row(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Softmax over the last axis.
pub(crate) fn softmax(x: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    let d = last_dim(x);
    let xf = x.floats();
    let out = xf.chunks(d.max(1)).flat_map(softmax_row).collect();
    at.floats(x.dtype, x.shape.clone(), out)
}

/// Sum over the last axis, which is removed: `f32` accumulation for floats,
/// wrapping for integers.
pub(crate) fn reduce_sum(x: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    let d = last_dim(x);
    let shape = x.shape[..x.rank().saturating_sub(1)].to_vec();
    let rows: usize = shape.iter().product();
    let data = match &x.data {
        TensorData::I32(v) => TensorData::I32(
            (0..rows)
                .map(|r| {
                    v[r * d..(r + 1) * d]
                        .iter()
                        .fold(0i32, |s, &p| s.wrapping_add(p))
                })
                .collect(),
        ),
        TensorData::U32(v) => TensorData::U32(
            (0..rows)
                .map(|r| {
                    v[r * d..(r + 1) * d]
                        .iter()
                        .fold(0u32, |s, &p| s.wrapping_add(p))
                })
                .collect(),
        ),
        _ => {
            let xf = x.floats();
            let sums = (0..rows)
                .map(|r| xf[r * d..(r + 1) * d].iter().sum())
                .collect();
            return at.floats(x.dtype, shape, sums);
        }
    };
    at.tensor(shape, data)
}
