//! `matmul`: `a[..., M, K] × b[K, N]` or batched `a[..., M, K] × b[..., K, N]`.

use super::tensor::Tensor;
use super::{At, EvalError};
use crate::op::GatedAct;

/// `out[M, N] += a[M, K] · b[K, N]` for row-major slices, in i-k-j order so the
/// inner loop runs over contiguous rows of `b` and `out` (f32 accumulation).
pub(crate) fn matmul_into(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let out_row = &mut out[i * n..(i + 1) * n];
        let a_row = &a[i * k..(i + 1) * k];
        for (p, &a_ip) in a_row.iter().enumerate() {
            let b_row = &b[p * n..(p + 1) * n];
            for (o, &b_pj) in out_row.iter_mut().zip(b_row) {
                *o += a_ip * b_pj;
            }
        }
    }
}

/// `matmul`, computed in `f32` and rounded to the operands' dtype.
pub(crate) fn matmul(a: &Tensor, b: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    let (shape, out) = product(a, b, at)?;
    at.floats(a.dtype, shape, out)
}

/// `gated_matmul`: `act(a·gate) * (a·up)` in `f32`, rounded to the dtype once.
pub(crate) fn gated_matmul(
    a: &Tensor,
    gate: &Tensor,
    up: &Tensor,
    act: GatedAct,
    at: &At,
) -> Result<Tensor, EvalError> {
    let (shape, g) = product(a, gate, at)?;
    let (_, u) = product(a, up, at)?;
    let f = act.activation();
    let out = g.iter().zip(&u).map(|(&g, &u)| f.apply(g) * u).collect();
    at.floats(a.dtype, shape, out)
}

/// `matmul_add`: `a·b + r` in `f32` (`r` a bias of the last dim's size or of
/// the product's shape), rounded to the dtype once.
pub(crate) fn matmul_add(a: &Tensor, b: &Tensor, r: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    let (shape, mut out) = product(a, b, at)?;
    let rf = r.floats();
    let n = *shape.last().ok_or_else(|| at.bug("rank 0 product"))?;
    if rf.len() != n && rf.len() != out.len() {
        return Err(at.bug(format!("addend {:?} for product {shape:?}", r.shape)));
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o += rf[i % rf.len()];
    }
    at.floats(a.dtype, shape, out)
}

/// The product's shape and its `f32` values.
fn product(a: &Tensor, b: &Tensor, at: &At) -> Result<(Vec<usize>, Vec<f32>), EvalError> {
    let (ra, rb) = (a.rank(), b.rank());
    if ra < 2 || (rb != 2 && rb != ra) {
        return Err(at.bug(format!("ranks {ra} and {rb}")));
    }
    let (m, k) = (a.shape[ra - 2], a.shape[ra - 1]);
    let (kb, n) = (b.shape[rb - 2], b.shape[rb - 1]);
    let batch: usize = a.shape[..ra - 2].iter().product();
    if kb != k || (rb > 2 && b.shape[..rb - 2] != a.shape[..ra - 2]) {
        return Err(at.bug(format!("shapes {:?} and {:?}", a.shape, b.shape)));
    }
    let (af, bf) = (a.floats(), b.floats());
    let mut out = vec![0.0f32; batch * m * n];
    for bi in 0..batch {
        let a_mat = &af[bi * m * k..(bi + 1) * m * k];
        let b_mat = if rb == 2 {
            &bf[..]
        } else {
            &bf[bi * k * n..(bi + 1) * k * n]
        };
        matmul_into(
            a_mat,
            b_mat,
            &mut out[bi * m * n..(bi + 1) * m * n],
            m,
            k,
            n,
        );
    }
    let mut shape = a.shape[..ra - 1].to_vec();
    shape.push(n);
    Ok((shape, out))
}
