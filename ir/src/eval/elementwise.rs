//! `const`, `iota`, `cast`, and the element-wise ops: broadcasting binary and
//! unary functions (seam-core's [`BinaryFn`] and [`UnaryFn`], whose scalar
//! math they apply) and `fused` expressions of them.

use half::f16;

use super::tensor::{element_count, strides, Tensor, TensorData};
use super::{At, EvalError, OutType};
use crate::fused::FusedExpr;
use crate::op::{BinaryFn, UnaryFn};
use seam_core::DType;

/// Converts an `f64` to one element of `dtype`, pushed onto `data`: floats are
/// rounded to nearest, integers truncated toward zero (saturating, NaN → 0).
fn push_f64(data: &mut TensorData, v: f64) {
    match data {
        TensorData::F32(d) => d.push(v as f32),
        TensorData::F16(d) => d.push(f16::from_f64(v)),
        TensorData::I32(d) => d.push(v as i32),
        TensorData::U32(d) => d.push(v as u32),
    }
}

/// `const`: every element equal to `value`, converted to the declared dtype.
pub(crate) fn constant(value: f64, out: &OutType, at: &At) -> Result<Tensor, EvalError> {
    let n = element_count(&out.shape).ok_or_else(|| at.bug("result too large"))?;
    let mut data = TensorData::zeros(out.dtype, 0);
    push_f64(&mut data, value);
    let one = data;
    let data = one.take(&vec![0; n]);
    at.tensor(out.shape.clone(), data)
}

/// `iota`: element at index `i` is `i[axis]`.
pub(crate) fn iota(axis: usize, out: &OutType, at: &At) -> Result<Tensor, EvalError> {
    if axis >= out.shape.len() {
        return Err(at.bug(format!("axis {axis} out of range")));
    }
    let n = element_count(&out.shape).ok_or_else(|| at.bug("result too large"))?;
    let st = strides(&out.shape);
    let mut data = TensorData::zeros(out.dtype, 0);
    for i in 0..n {
        push_f64(&mut data, ((i / st[axis]) % out.shape[axis]) as f64);
    }
    at.tensor(out.shape.clone(), data)
}

/// The shape two shapes broadcast to (numpy rules over trailing dims).
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
            let da = (i + a.len()).checked_sub(rank).map(|j| a[j]);
            let db = (i + b.len()).checked_sub(rank).map(|j| b[j]);
            match (da, db) {
                (Some(x), None) | (None, Some(x)) => Some(x),
                (Some(x), Some(y)) if x == y || y == 1 => Some(x),
                (Some(1), Some(y)) => Some(y),
                _ => None,
            }
        })
        .collect()
}

/// For each element of `out` (row-major), the flat index of the element of a
/// tensor of shape `src` that broadcasts to it. `src` must broadcast to `out`.
pub(crate) fn broadcast_indices(src: &[usize], out: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    let lead = out.len() - src.len();
    let src_strides = strides(src);
    // Stride in `src` of each output axis; 0 where the axis is broadcast.
    let step: Vec<usize> = (0..out.len())
        .map(|i| match i.checked_sub(lead) {
            Some(j) if src[j] != 1 || out[i] == 1 => src_strides[j],
            _ => 0,
        })
        .collect();
    let mut idx = vec![0usize; out.len()];
    let mut flat = 0usize;
    let mut result = Vec::with_capacity(n);
    for _ in 0..n {
        result.push(flat);
        // Advance the odometer, last axis fastest.
        for ax in (0..out.len()).rev() {
            idx[ax] += 1;
            flat += step[ax];
            if idx[ax] < out[ax] {
                break;
            }
            flat -= step[ax] * idx[ax];
            idx[ax] = 0;
        }
    }
    result
}

/// `t`'s data broadcast to `out` (unchanged when the shapes are equal).
fn broadcast_data(t: &Tensor, out: &[usize]) -> TensorData {
    if t.shape == out {
        t.data.clone()
    } else {
        t.data.take(&broadcast_indices(&t.shape, out))
    }
}

/// A broadcasting binary function.
///
/// Floats compute in `f32` with [`BinaryFn::apply`] (then round to the
/// operands' dtype); integers are exact with wrapping overflow, `div` truncates
/// toward zero, and an integer division by zero is
/// [`EvalError::DivisionByZero`]. `eq` gives 1 or 0 in the operands' dtype.
pub(crate) fn binary(op: BinaryFn, a: &Tensor, b: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    let shape = broadcast_shape(&a.shape, &b.shape).ok_or_else(|| {
        at.bug(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape, b.shape
        ))
    })?;
    let (da, db) = (broadcast_data(a, &shape), broadcast_data(b, &shape));
    let div_zero = |index: usize| EvalError::DivisionByZero {
        value: at.value.to_string(),
        index,
    };
    macro_rules! ints {
        ($x:expr, $y:expr, $zero:expr, $one:expr) => {{
            let mut out = Vec::with_capacity($x.len());
            for (i, (&p, &q)) in $x.iter().zip($y.iter()).enumerate() {
                out.push(match op {
                    BinaryFn::Add => p.wrapping_add(q),
                    BinaryFn::Sub => p.wrapping_sub(q),
                    BinaryFn::Mul => p.wrapping_mul(q),
                    BinaryFn::Div if q == $zero => return Err(div_zero(i)),
                    BinaryFn::Div => p.wrapping_div(q),
                    BinaryFn::Eq if p == q => $one,
                    BinaryFn::Eq => $zero,
                    BinaryFn::Max => p.max(q),
                    BinaryFn::Min => p.min(q),
                });
            }
            out
        }};
    }
    let data = match (&da, &db) {
        (TensorData::I32(x), TensorData::I32(y)) => TensorData::I32(ints!(x, y, 0i32, 1i32)),
        (TensorData::U32(x), TensorData::U32(y)) => TensorData::U32(ints!(x, y, 0u32, 1u32)),
        _ => {
            if a.dtype != b.dtype || !a.dtype.is_float() {
                return Err(at.bug(format!("operands are {} and {}", a.dtype, b.dtype)));
            }
            let x = Tensor::new(shape.clone(), da).map_err(|e| at.bug(e))?;
            let y = Tensor::new(shape.clone(), db).map_err(|e| at.bug(e))?;
            let values = x
                .floats()
                .iter()
                .zip(y.floats().iter())
                .map(|(&p, &q)| op.apply(p, q))
                .collect();
            return at.floats(a.dtype, shape, values);
        }
    };
    at.tensor(shape, data)
}

/// `fused`: `expr` at every element of the operands' broadcast shape, in `f32`,
/// rounded to the operands' dtype once.
pub(crate) fn fused(expr: &FusedExpr, x: &[&Tensor], at: &At) -> Result<Tensor, EvalError> {
    let first = x.first().ok_or_else(|| at.bug("no operands"))?;
    let mut shape = first.shape.clone();
    for t in &x[1..] {
        shape = broadcast_shape(&shape, &t.shape)
            .ok_or_else(|| at.bug(format!("{:?} and {shape:?} do not broadcast", t.shape)))?;
    }
    let n: usize = shape.iter().product();
    let values: Vec<Vec<f32>> = x
        .iter()
        .map(|t| {
            let f = t.floats();
            if t.shape == shape {
                f.into_owned()
            } else {
                broadcast_indices(&t.shape, &shape)
                    .into_iter()
                    .map(|i| f[i])
                    .collect()
            }
        })
        .collect();
    let out = (0..n)
        .map(|e| expr.eval(&|i| values.get(i).map_or(f32::NAN, |v| v[e])))
        .collect();
    at.floats(first.dtype, shape, out)
}

/// A unary element-wise function, computed with [`UnaryFn::apply`] and
/// rounded to the dtype. `neg` also negates integers (wrapping); the others
/// take floats.
pub(crate) fn unary(op: UnaryFn, x: &Tensor, at: &At) -> Result<Tensor, EvalError> {
    match (&x.data, op) {
        (TensorData::I32(v), UnaryFn::Neg) => {
            return at.tensor(
                x.shape.clone(),
                TensorData::I32(v.iter().map(|p| p.wrapping_neg()).collect()),
            )
        }
        (TensorData::U32(v), UnaryFn::Neg) => {
            return at.tensor(
                x.shape.clone(),
                TensorData::U32(v.iter().map(|p| p.wrapping_neg()).collect()),
            )
        }
        (TensorData::I32(_) | TensorData::U32(_), _) => {
            return Err(at.bug(format!("operand is {}", x.dtype)))
        }
        _ => {}
    }
    let values = x.floats().iter().map(|&p| op.apply(p)).collect();
    at.floats(x.dtype, x.shape.clone(), values)
}

/// `cast` to `dtype`: floats round to nearest (`f32 → f16`), float → integer
/// truncates toward zero (saturating, NaN → 0), integer → float rounds to
/// nearest, and `i32 ↔ u32` reinterprets the two's-complement bits.
pub(crate) fn cast(x: &Tensor, dtype: DType, at: &At) -> Result<Tensor, EvalError> {
    let data = match (&x.data, dtype) {
        (d, t) if d.dtype() == t => d.clone(),
        (TensorData::I32(v), DType::U32) => TensorData::U32(v.iter().map(|&p| p as u32).collect()),
        (TensorData::U32(v), DType::I32) => TensorData::I32(v.iter().map(|&p| p as i32).collect()),
        (TensorData::I32(v), _) => {
            let mut out = TensorData::zeros(dtype, 0);
            v.iter().for_each(|&p| push_f64(&mut out, f64::from(p)));
            out
        }
        (TensorData::U32(v), _) => {
            let mut out = TensorData::zeros(dtype, 0);
            v.iter().for_each(|&p| push_f64(&mut out, f64::from(p)));
            out
        }
        (TensorData::F32(_) | TensorData::F16(_), _) => {
            return Tensor::from_f32_vec(dtype, x.shape.clone(), x.to_f32_vec())
                .map_err(|e| at.bug(e))
        }
    };
    at.tensor(x.shape.clone(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_index_maps() {
        assert_eq!(broadcast_shape(&[2, 1], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shape(&[], &[3]), Some(vec![3]));
        assert_eq!(broadcast_shape(&[2], &[3]), None);
        // [2,1] → [2,3]: rows repeat their single element.
        assert_eq!(broadcast_indices(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        // [3] → [2,3]: the row repeats.
        assert_eq!(broadcast_indices(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_indices(&[], &[2]), vec![0, 0]);
        // [2,1,2] → [2,2,2]
        assert_eq!(
            broadcast_indices(&[2, 1, 2], &[2, 2, 2]),
            vec![0, 1, 0, 1, 2, 3, 2, 3]
        );
    }
}
