//! `matmul`: `a[..., M, K] × b[K, N]` or batched `a[..., M, K] × b[..., K, N]`.

use super::tensor::Tensor;
use super::{At, EvalError};

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
    at.floats(a.dtype, shape, out)
}
