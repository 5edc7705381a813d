//! `rope` and `attention`.

use super::norm::softmax_row;
use super::tensor::Tensor;
use super::{At, EvalError};

/// Rotary position embedding (rotate-half, as Llama): for `x[T, H, Dh]` and
/// positions `pos[T]`, each pair `(i, i + Dh/2)` with `i < Dh/2` rotates by
/// `angle = pos · theta^(-2i/Dh)`:
/// `out[i] = x[i]·cos − x[i+Dh/2]·sin`, `out[i+Dh/2] = x[i+Dh/2]·cos + x[i]·sin`.
/// Angles and rotations are computed in `f64` and rounded once. A negative
/// position is [`EvalError::NegativePosition`].
pub(crate) fn rope(x: &Tensor, pos: &Tensor, theta: f32, at: &At) -> Result<Tensor, EvalError> {
    if x.rank() != 3 || pos.rank() != 1 || pos.shape[0] != x.shape[0] || x.shape[2] % 2 != 0 {
        return Err(at.bug(format!("x {:?}, pos {:?}", x.shape, pos.shape)));
    }
    let (t_len, heads, dh) = (x.shape[0], x.shape[1], x.shape[2]);
    let half = dh / 2;
    let positions = pos.to_i64_vec();
    let xf = x.floats();
    let mut out = vec![0.0f32; xf.len()];
    let theta = f64::from(theta);
    for (t, &p) in positions.iter().enumerate().take(t_len) {
        if p < 0 {
            return Err(EvalError::NegativePosition {
                value: at.value.to_string(),
                token: t,
                pos: p,
            });
        }
        for i in 0..half {
            let freq = theta.powf(-2.0 * i as f64 / dh as f64);
            let (sin, cos) = (p as f64 * freq).sin_cos();
            for h in 0..heads {
                let base = (t * heads + h) * dh;
                let (a, b) = (f64::from(xf[base + i]), f64::from(xf[base + i + half]));
                out[base + i] = (a * cos - b * sin) as f32;
                out[base + i + half] = (b * cos + a * sin) as f32;
            }
        }
    }
    at.floats(x.dtype, x.shape.clone(), out)
}

/// Scaled dot-product attention with grouped-query heads: `q[T, Hq, Dh]`,
/// `k[S, Hkv, Dh]`, `v[S, Hkv, Dh]` → `[T, Hq, Dh]`; query head `h` reads kv head
/// `h / (Hq / Hkv)`. With `causal`, query `t` sees keys `s ≤ t + (S − T)`.
/// Logits are `scale · q·k` (default `1/sqrt(Dh)`), softmax is max-subtracted,
/// all in `f32`. A query that sees no key (only possible when `S < T`) gives zeros.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
    scale: Option<f32>,
    at: &At,
) -> Result<Tensor, EvalError> {
    if q.rank() != 3 || k.rank() != 3 || v.shape != k.shape || k.shape[2] != q.shape[2] {
        return Err(at.bug(format!("q {:?}, k {:?}, v {:?}", q.shape, k.shape, v.shape)));
    }
    let (t_len, hq, dh) = (q.shape[0], q.shape[1], q.shape[2]);
    let (s_len, hkv) = (k.shape[0], k.shape[1]);
    if hkv == 0 || hq % hkv != 0 {
        return Err(at.bug(format!("{hq} query heads for {hkv} kv heads")));
    }
    let scale = scale.unwrap_or(1.0 / (dh as f32).sqrt());
    let (qf, kf, vf) = (q.floats(), k.floats(), v.floats());
    let kv = KvRows {
        k: &kf,
        v: &vf,
        heads: hkv,
        head_dim: dh,
    };
    let mut out = vec![0.0f32; qf.len()];
    for t in 0..t_len {
        // Keys 0..visible are seen by query t.
        let visible = if causal {
            (t as i64 + 1 + s_len as i64 - t_len as i64).clamp(0, s_len as i64) as usize
        } else {
            s_len
        };
        let row = t * hq * dh..(t + 1) * hq * dh;
        kv.attend(&qf[row.clone()], visible, scale, &mut out[row]);
    }
    at.floats(q.dtype, q.shape.clone(), out)
}

/// Rows of keys and values, `[positions, heads, head_dim]` each, row-major.
pub(super) struct KvRows<'a> {
    /// The keys.
    pub k: &'a [f32],
    /// The values.
    pub v: &'a [f32],
    /// Kv heads per row.
    pub heads: usize,
    /// Elements per head.
    pub head_dim: usize,
}

impl KvRows<'_> {
    /// One query's attention, all its heads (`q`, `out`: `[Hq, Dh]`, query
    /// head `h` reading kv head `h / (Hq / heads)`): adds `softmax(scale · q·k)·v`
    /// over rows `0..visible` to `out` (max-subtracted, in `f32`); nothing when
    /// no row is visible.
    pub(super) fn attend(&self, q: &[f32], visible: usize, scale: f32, out: &mut [f32]) {
        let dh = self.head_dim;
        let hq = q.len() / dh;
        if visible == 0 || dh == 0 {
            return;
        }
        for (h, (qh, oh)) in q.chunks(dh).zip(out.chunks_mut(dh)).enumerate() {
            let kvh = h / (hq / self.heads);
            let head = |s: usize| (s * self.heads + kvh) * dh..(s * self.heads + kvh + 1) * dh;
            let logits: Vec<f32> = (0..visible)
                .map(|s| {
                    scale
                        * qh.iter()
                            .zip(&self.k[head(s)])
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                })
                .collect();
            let probs = softmax_row(&logits);
            for (s, p) in probs.iter().enumerate() {
                for (o, x) in oh.iter_mut().zip(&self.v[head(s)]) {
                    *o += p * x;
                }
            }
        }
    }
}
