//! `moe`, evaluated directly and sparsely: each token runs only its k selected
//! experts, and `grouped_matmul`, each token's matrix only. `moe` is equivalent to the dense expansion of [`crate::expand::expand_moe`]
//! (which defines the op) up to `f32` rounding; the tests check that.

use super::linalg::matmul_into;
use super::tensor::Tensor;
use super::{At, EvalError};
use crate::op::GatedAct;

/// One gated FFN on one row: `(act(x·gate) * (x·up))·down`, with `gate`, `up`
/// of `[D, F]` and `down` of `[F, D]`, row-major, all `f32`.
fn gated_ffn(
    x: &[f32],
    gate: &[f32],
    up: &[f32],
    down: &[f32],
    f: usize,
    act: GatedAct,
) -> Vec<f32> {
    let d = x.len();
    let mut g = vec![0.0f32; f];
    let mut u = vec![0.0f32; f];
    matmul_into(x, gate, &mut g, 1, d, f);
    matmul_into(x, up, &mut u, 1, d, f);
    let act = act.activation();
    let h: Vec<f32> = g.iter().zip(&u).map(|(&a, &b)| act.apply(a) * b).collect();
    let mut y = vec![0.0f32; d];
    matmul_into(&h, down, &mut y, 1, f, d);
    y
}

/// `moe(x[T, D], ids[T, k], weights[T, k], w_gate[E, D, F], w_up[E, D, F],
/// w_down[E, F, D] [, s_gate[D, Fs], s_up[D, Fs], s_down[Fs, D]])`:
/// `y[t] = Σ_j weights[t, j] · expert_{ids[t, j]}(x[t]) + shared(x[t])`, in `f32`
/// and rounded once to `x`'s dtype. A token may select an expert more than once
/// (each selection counts). An id outside `0..E` is
/// [`EvalError::ExpertIdOutOfRange`].
pub(crate) fn moe(x: &[&Tensor], act: GatedAct, at: &At) -> Result<Tensor, EvalError> {
    if x.len() != 6 && x.len() != 9 {
        return Err(at.bug(format!("{} operands", x.len())));
    }
    let (xs, ids, weights) = (x[0], x[1], x[2]);
    let (wg, wu, wd) = (x[3], x[4], x[5]);
    if xs.rank() != 2 || ids.rank() != 2 || wg.rank() != 3 {
        return Err(at.bug("operand ranks"));
    }
    let (t_len, d) = (xs.shape[0], xs.shape[1]);
    let k = ids.shape[1];
    let (experts, f) = (wg.shape[0], wg.shape[2]);
    let well_formed = ids.shape[0] == t_len
        && weights.shape == ids.shape
        && wg.shape == [experts, d, f]
        && wu.shape == wg.shape
        && wd.shape == [experts, f, d];
    if !well_formed {
        return Err(at.bug("operand shapes"));
    }
    let (xf, wf, idv) = (xs.floats(), weights.floats(), ids.to_i64_vec());
    let (gf, uf, df) = (wg.floats(), wu.floats(), wd.floats());
    let shared = if x.len() == 9 {
        let (sg, su, sd) = (x[6], x[7], x[8]);
        let fs = sg.shape.get(1).copied().unwrap_or(0);
        if sg.shape != [d, fs] || su.shape != sg.shape || sd.shape != [fs, d] {
            return Err(at.bug("shared expert shapes"));
        }
        Some((sg.floats(), su.floats(), sd.floats(), fs))
    } else {
        None
    };
    let per_expert = d * f;
    let mut out = vec![0.0f32; t_len * d];
    for t in 0..t_len {
        let row = &xf[t * d..(t + 1) * d];
        let acc = &mut out[t * d..(t + 1) * d];
        for j in 0..k {
            let e = expert_index(at, t, idv[t * k + j], experts)?;
            let span = e * per_expert..(e + 1) * per_expert;
            let y = gated_ffn(row, &gf[span.clone()], &uf[span.clone()], &df[span], f, act);
            let w = wf[t * k + j];
            for (a, b) in acc.iter_mut().zip(&y) {
                *a += w * b;
            }
        }
        if let Some((sg, su, sd, fs)) = &shared {
            let y = gated_ffn(row, sg, su, sd, *fs, act);
            for (a, b) in acc.iter_mut().zip(&y) {
                *a += b;
            }
        }
    }
    at.floats(xs.dtype, vec![t_len, d], out)
}

/// Token `token`'s expert `id` as an index into a stack of `experts`, or
/// [`EvalError::ExpertIdOutOfRange`].
fn expert_index(at: &At, token: usize, id: i64, experts: usize) -> Result<usize, EvalError> {
    if id < 0 || id as u64 >= experts as u64 {
        return Err(EvalError::ExpertIdOutOfRange {
            op: at.op,
            value: at.value.to_string(),
            token,
            id,
            experts,
        });
    }
    Ok(id as usize)
}

/// `grouped_matmul(x[T, K], ids[T], w[E, K, N])`: `y[t] = x[t]·w[ids[t]]` in
/// `f32`, rounded once to `x`'s dtype. An id outside `0..E` is
/// [`EvalError::ExpertIdOutOfRange`].
pub(crate) fn grouped_matmul(
    xs: &Tensor,
    ids: &Tensor,
    w: &Tensor,
    at: &At,
) -> Result<Tensor, EvalError> {
    if xs.rank() != 2 || ids.rank() != 1 || w.rank() != 3 {
        return Err(at.bug("operand ranks"));
    }
    let (t_len, k) = (xs.shape[0], xs.shape[1]);
    let (experts, n) = (w.shape[0], w.shape[2]);
    if ids.shape[0] != t_len || w.shape[1] != k {
        return Err(at.bug("operand shapes"));
    }
    let (xf, wf, idv) = (xs.floats(), w.floats(), ids.to_i64_vec());
    let mut out = vec![0.0f32; t_len * n];
    for (t, &id) in idv.iter().enumerate() {
        let e = expert_index(at, t, id, experts)?;
        matmul_into(
            &xf[t * k..(t + 1) * k],
            &wf[e * k * n..(e + 1) * k * n],
            &mut out[t * n..(t + 1) * n],
            1,
            k,
            n,
        );
    }
    at.floats(xs.dtype, vec![t_len, n], out)
}
