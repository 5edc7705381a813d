//! The slot pool of batched serving: `write_rows` writes each token's new row
//! into its sequence's slot, `pooled_attention` attends over a slot's rows.
//! Both read a token's row `(slot[t], pos[t])` of a pool `[S, L, ...]`, which
//! must lie inside it.

use std::collections::HashMap;

use super::attention::KvRows;
use super::tensor::Tensor;
use super::{At, EvalError};

/// The rows `(slot, pos)` of a pool with `slots` slots of `len` positions that
/// the tokens name, checked to lie inside it.
fn pool_rows(
    slot: &Tensor,
    pos: &Tensor,
    (slots, len): (usize, usize),
    at: &At,
) -> Result<Vec<(usize, usize)>, EvalError> {
    if slot.rank() != 1 || pos.shape != slot.shape {
        return Err(at.bug(format!("slot {:?}, pos {:?}", slot.shape, pos.shape)));
    }
    let in_range = |x: i64, n: usize| usize::try_from(x).ok().filter(|&x| x < n);
    slot.to_i64_vec()
        .into_iter()
        .zip(pos.to_i64_vec())
        .enumerate()
        .map(
            |(token, (s, p))| match (in_range(s, slots), in_range(p, len)) {
                (Some(s), Some(p)) => Ok((s, p)),
                _ => Err(EvalError::PoolRowOutOfRange {
                    op: at.op,
                    value: at.value.to_string(),
                    token,
                    slot: s,
                    pos: p,
                    slots,
                    len,
                }),
            },
        )
        .collect()
}

/// `write_rows`: `buf[S, L, ...]` with row `(slot[t], pos[t])` replaced by
/// `new[t]` for every token `t`. A row outside the pool is
/// [`EvalError::PoolRowOutOfRange`], a row named by two tokens
/// [`EvalError::DuplicatePoolRow`].
pub(crate) fn write_rows(
    buf: &Tensor,
    slot: &Tensor,
    pos: &Tensor,
    new: &Tensor,
    at: &At,
) -> Result<Tensor, EvalError> {
    if buf.rank() < 2 || new.rank() + 1 != buf.rank() || new.shape[1..] != buf.shape[2..] {
        return Err(at.bug(format!("write {:?} into {:?}", new.shape, buf.shape)));
    }
    let rows = pool_rows(slot, pos, (buf.shape[0], buf.shape[1]), at)?;
    if rows.len() != new.shape[0] {
        return Err(at.bug(format!("{} rows for {} tokens", new.shape[0], rows.len())));
    }
    let inner: usize = buf.shape[2..].iter().product();
    let mut source: Vec<usize> = (0..buf.len()).collect();
    let mut first: HashMap<(usize, usize), usize> = HashMap::new();
    for (token, &(s, p)) in rows.iter().enumerate() {
        if let Some(&earlier) = first.get(&(s, p)) {
            return Err(EvalError::DuplicatePoolRow {
                value: at.value.to_string(),
                first: earlier,
                token,
                slot: s,
                pos: p,
            });
        }
        first.insert((s, p), token);
        let row = (s * buf.shape[1] + p) * inner;
        for e in 0..inner {
            source[row + e] = buf.len() + token * inner + e;
        }
    }
    let mut all = buf.data.clone();
    all.append(&new.data)
        .ok_or_else(|| at.bug("operand dtypes differ"))?;
    at.tensor(buf.shape.clone(), all.take(&source))
}

/// `pooled_attention(q, k_pool, v_pool, slot, pos)`: query `t` attends over
/// rows `0..=pos[t]` of slot `slot[t]` of the pools, as `attention` does over
/// its keys (query head `h` reads kv head `h / (Hq / Hkv)`, logits
/// `scale · q·k`, `scale` defaulting to `1/sqrt(Dh)`). A row outside the pool
/// is [`EvalError::PoolRowOutOfRange`].
pub(crate) fn pooled_attention(
    x: &[&Tensor],
    scale: Option<f32>,
    at: &At,
) -> Result<Tensor, EvalError> {
    let [q, k, v, slot, pos] = x else {
        return Err(at.bug(format!("{} operands", x.len())));
    };
    if q.rank() != 3 || k.rank() != 4 || v.shape != k.shape || k.shape[3] != q.shape[2] {
        return Err(at.bug(format!("q {:?}, k {:?}, v {:?}", q.shape, k.shape, v.shape)));
    }
    let (hq, dh) = (q.shape[1], q.shape[2]);
    let (len, hkv) = (k.shape[1], k.shape[2]);
    if hkv == 0 || hq % hkv != 0 {
        return Err(at.bug(format!("{hq} query heads for {hkv} kv heads")));
    }
    let rows = pool_rows(slot, pos, (k.shape[0], len), at)?;
    if rows.len() != q.shape[0] {
        return Err(at.bug(format!("{} queries for {} tokens", q.shape[0], rows.len())));
    }
    let scale = scale.unwrap_or(1.0 / (dh as f32).sqrt());
    let (qf, kf, vf) = (q.floats(), k.floats(), v.floats());
    let slot_elems = len * hkv * dh;
    let mut out = vec![0.0f32; qf.len()];
    for (t, &(s, p)) in rows.iter().enumerate() {
        let cache = s * slot_elems..(s + 1) * slot_elems;
        let kv = KvRows {
            k: &kf[cache.clone()],
            v: &vf[cache],
            heads: hkv,
            head_dim: dh,
        };
        let row = t * hq * dh..(t + 1) * hq * dh;
        kv.attend(&qf[row.clone()], p + 1, scale, &mut out[row]);
    }
    at.floats(q.dtype, q.shape.clone(), out)
}
