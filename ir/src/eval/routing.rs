//! `topk` and `route`.

use std::cmp::Ordering;

use super::norm::softmax_row;
use super::tensor::{Tensor, TensorData};
use super::{At, EvalError};
use crate::op::RouteMode;

/// Compares floats for "larger first" selection: NaN counts as larger than every
/// number (and equal to NaN); `-0` and `+0` tie.
fn cmp_f32(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Indices of the `k` largest elements of `row`, descending; ties keep the lower
/// index first (a stable sort).
fn top_indices<T: Copy>(row: &[T], k: usize, cmp: impl Fn(T, T) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&i, &j| cmp(row[j], row[i]));
    idx.truncate(k);
    idx
}

/// Top-k of every row of a float tensor's values (already widened to `f32`).
fn top_indices_f32(row: &[f32], k: usize) -> Vec<usize> {
    top_indices(row, k, cmp_f32)
}

/// `topk` over the last axis: `values[..., k]` (operand dtype, exact) and
/// `indices[..., k]` (`i32`), descending, ties lower index first.
pub(crate) fn topk(x: &Tensor, k: usize, at: &At) -> Result<Vec<Tensor>, EvalError> {
    let n = *x.shape.last().ok_or_else(|| at.bug("rank 0 operand"))?;
    if k > n {
        return Err(at.bug(format!("k={k} over {n}")));
    }
    let rows = x.len().checked_div(n).unwrap_or(0);
    let mut flat = Vec::with_capacity(rows * k);
    let mut local = Vec::with_capacity(rows * k);
    let floats = x.dtype.is_float().then(|| x.floats());
    let ints = (!x.dtype.is_float()).then(|| x.to_i64_vec());
    for r in 0..rows {
        let top = match (&floats, &ints) {
            (Some(f), _) => top_indices_f32(&f[r * n..(r + 1) * n], k),
            (_, Some(i)) => top_indices(&i[r * n..(r + 1) * n], k, |a: i64, b| a.cmp(&b)),
            _ => return Err(at.bug("neither float nor integer")),
        };
        for j in top {
            flat.push(r * n + j);
            local.push(j as i32);
        }
    }
    let mut shape = x.shape.clone();
    if let Some(last) = shape.last_mut() {
        *last = k;
    }
    Ok(vec![
        at.tensor(shape.clone(), x.data.take(&flat))?,
        at.tensor(shape, TensorData::I32(local))?,
    ])
}

/// `route`: `logits[T, E]` (and `scores[T, E]` for [`RouteMode::Take`]) →
/// `ids: i32[T, k]`, `weights[T, k]` in the logits' dtype; more leading dims are
/// more rows (`[T, L, E]` → `[T, L, k]`). Per row:
///
/// - `SoftmaxTopk`: `p = softmax(logits)`, ids = top-k of `p`, weights = `p[ids]`
///   (divided by their sum with `renorm`);
/// - `TopkSoftmax`: ids = top-k of `logits`, weights = softmax of the k selected logits;
/// - `Take`: ids = top-k of `logits`, weights = `scores[ids]`.
///
/// Top-k is descending with ties to the lower index, as [`topk`].
pub(crate) fn route(
    logits: &Tensor,
    scores: Option<&Tensor>,
    k: usize,
    mode: RouteMode,
    renorm: bool,
    at: &At,
) -> Result<Vec<Tensor>, EvalError> {
    let e = match logits.shape.as_slice() {
        [_, .., e] if k <= *e => *e,
        _ => return Err(at.bug(format!("logits {:?}, k={k}", logits.shape))),
    };
    let t_len = logits.len().checked_div(e).unwrap_or(0);
    let lf = logits.floats();
    let sf = match (mode, scores) {
        (RouteMode::Take, Some(s)) if s.shape == logits.shape => Some(s.floats()),
        (RouteMode::Take, _) => return Err(at.bug("`take` needs scores of the logits' shape")),
        _ => None,
    };
    let mut ids = Vec::with_capacity(t_len * k);
    let mut weights = Vec::with_capacity(t_len * k);
    for t in 0..t_len {
        let row = &lf[t * e..(t + 1) * e];
        let (top, w) = match mode {
            RouteMode::SoftmaxTopk => {
                let p = softmax_row(row);
                let top = top_indices_f32(&p, k);
                let mut w: Vec<f32> = top.iter().map(|&i| p[i]).collect();
                if renorm {
                    let sum: f32 = w.iter().sum();
                    w.iter_mut().for_each(|x| *x /= sum);
                }
                (top, w)
            }
            RouteMode::TopkSoftmax => {
                let top = top_indices_f32(row, k);
                let selected: Vec<f32> = top.iter().map(|&i| row[i]).collect();
                (top, softmax_row(&selected))
            }
            RouteMode::Take => {
                let top = top_indices_f32(row, k);
                let s = sf.as_ref().ok_or_else(|| at.bug("no scores"))?;
                let w = top.iter().map(|&i| s[t * e + i]).collect();
                (top, w)
            }
        };
        ids.extend(top.iter().map(|&i| i as i32));
        weights.extend(w);
    }
    let mut shape = logits.shape.clone();
    if let Some(last) = shape.last_mut() {
        *last = k;
    }
    Ok(vec![
        at.tensor(shape.clone(), TensorData::I32(ids))?,
        at.floats(logits.dtype, shape, weights)?,
    ])
}
