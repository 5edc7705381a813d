//! Data movement: `transpose`, `concat`, `slice`, `tail`, `write_tail`, `gather` (`reshape` only
//! relabels the shape). Every dtype is moved exactly.

use super::tensor::{strides, Tensor, TensorData};
use super::{At, EvalError, OutType};

/// `transpose`: result dim `i` is operand dim `perm[i]`.
pub(crate) fn transpose(x: &Tensor, perm: &[usize], at: &At) -> Result<Tensor, EvalError> {
    let rank = x.rank();
    if perm.len() != rank || perm.iter().any(|&p| p >= rank) {
        return Err(at.bug(format!("perm {perm:?} for rank {rank}")));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let src_strides = strides(&x.shape);
    // Stride in the source of each result axis.
    let step: Vec<usize> = perm.iter().map(|&p| src_strides[p]).collect();
    let n = x.len();
    let mut indices = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        indices.push(idx.iter().zip(&step).map(|(i, s)| i * s).sum());
        for ax in (0..rank).rev() {
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    at.tensor(shape, x.data.take(&indices))
}

/// Splits a shape around `axis`: (product of dims before, size, product after).
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// `concat` along `axis`.
pub(crate) fn concat(xs: &[&Tensor], axis: usize, at: &At) -> Result<Tensor, EvalError> {
    let first = xs.first().ok_or_else(|| at.bug("no operands"))?;
    if axis >= first.rank() {
        return Err(at.bug(format!("axis {axis} for rank {}", first.rank())));
    }
    let (outer, _, inner) = split(&first.shape, axis);
    // All operands' data one after another, then pick, for each outer index,
    // each operand's block in turn.
    let mut all = TensorData::zeros(first.dtype, 0);
    let mut offsets = Vec::with_capacity(xs.len());
    let mut total_axis = 0;
    for x in xs {
        let mut expect = x.shape.clone();
        if let Some(a) = expect.get_mut(axis) {
            *a = first.shape[axis];
        }
        if expect != first.shape {
            return Err(at.bug(format!("shapes {:?} and {:?}", first.shape, x.shape)));
        }
        offsets.push(all.len());
        all.append(&x.data)
            .ok_or_else(|| at.bug("operand dtypes differ"))?;
        total_axis += x.shape[axis];
    }
    let mut indices = Vec::with_capacity(all.len());
    for o in 0..outer {
        for (x, &off) in xs.iter().zip(&offsets) {
            let block = x.shape[axis] * inner;
            indices.extend(off + o * block..off + (o + 1) * block);
        }
    }
    let mut shape = first.shape.clone();
    shape[axis] = total_axis;
    at.tensor(shape, all.take(&indices))
}

/// `slice`: elements `start..end` along `axis`.
pub(crate) fn slice(
    x: &Tensor,
    axis: usize,
    start: usize,
    end: usize,
    at: &At,
) -> Result<Tensor, EvalError> {
    x.slice_axis(axis, start, end).ok_or_else(|| {
        at.bug(format!(
            "slice {start}..{end} of axis {axis} of {:?}",
            x.shape
        ))
    })
}

/// `gather`: `table[V, D]`, integer `ids[...]` → `[..., D]`. An id outside
/// `0..V` is [`EvalError::GatherIdOutOfRange`].
pub(crate) fn gather(table: &Tensor, ids: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    if table.rank() != 2 || ids.dtype.is_float() {
        return Err(at.bug(format!("table {:?}, ids {}", table.shape, ids.dtype)));
    }
    let (rows, d) = (table.shape[0], table.shape[1]);
    let mut indices = Vec::with_capacity(ids.len() * d);
    for (index, id) in ids.to_i64_vec().into_iter().enumerate() {
        if id < 0 || id as u64 >= rows as u64 {
            return Err(EvalError::GatherIdOutOfRange {
                value: at.value.to_string(),
                index,
                id,
                rows,
            });
        }
        let r = id as usize;
        indices.extend(r * d..(r + 1) * d);
    }
    let mut shape = ids.shape.clone();
    shape.push(d);
    at.tensor(shape, table.data.take(&indices))
}

/// The row count of `rows` taken from the end of `of`, or
/// [`EvalError::TailTooLong`] when `of` is shorter.
fn check_tail(rows: usize, of: &Tensor, at: &At) -> Result<(usize, usize), EvalError> {
    let (_, s, inner) = split(&of.shape, 0);
    if rows > s {
        return Err(EvalError::TailTooLong {
            op: at.op,
            value: at.value.to_string(),
            rows,
            available: s,
        });
    }
    Ok((s, inner))
}

/// `tail`: the last `out.shape[0]` rows of `x` along axis 0.
pub(crate) fn tail(x: &Tensor, out: &OutType, at: &At) -> Result<Tensor, EvalError> {
    if x.rank() == 0 || out.shape.len() != x.rank() || out.shape[1..] != x.shape[1..] {
        return Err(at.bug(format!("tail {:?} of {:?}", out.shape, x.shape)));
    }
    let t = out.shape[0];
    let (s, _) = check_tail(t, x, at)?;
    slice(x, 0, s - t, s, at)
}

/// `write_tail`: `buf` with its last `new.shape[0]` rows along axis 0 replaced by `new`.
pub(crate) fn write_tail(buf: &Tensor, new: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    if buf.rank() == 0 || new.rank() != buf.rank() || new.shape[1..] != buf.shape[1..] {
        return Err(at.bug(format!("write {:?} into {:?}", new.shape, buf.shape)));
    }
    let (s, inner) = check_tail(new.shape[0], buf, at)?;
    let kept = (s - new.shape[0]) * inner;
    let mut all = buf.data.take(&(0..kept).collect::<Vec<_>>());
    all.append(&new.data)
        .ok_or_else(|| at.bug("operand dtypes differ"))?;
    at.tensor(buf.shape.clone(), all)
}
