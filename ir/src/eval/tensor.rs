//! Host tensors: a dtype, a concrete shape and row-major data.

use std::borrow::Cow;
use std::fmt;

use half::f16;
use thiserror::Error;

use seam_core::DType;

/// The elements of a tensor, row-major, in one of the IR's dtypes.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f16` elements.
    F16(Vec<f16>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `u32` elements.
    U32(Vec<u32>),
}

/// Applies `$body` to the inner vector of every variant, rebuilding the same variant.
macro_rules! map_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::F32($v) => TensorData::F32($body),
            TensorData::F16($v) => TensorData::F16($body),
            TensorData::I32($v) => TensorData::I32($body),
            TensorData::U32($v) => TensorData::U32($body),
        }
    };
}

impl TensorData {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::I32(_) => DType::I32,
            TensorData::U32(_) => DType::U32,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F16(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U32(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` zeros of `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> TensorData {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F16 => TensorData::F16(vec![f16::ZERO; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::U32 => TensorData::U32(vec![0; n]),
        }
    }

    /// The elements at the given flat indices, in that order (same dtype).
    /// Every index must be below [`TensorData::len`].
    pub(crate) fn take(&self, indices: &[usize]) -> TensorData {
        map_data!(self, v => indices.iter().map(|&i| v[i]).collect())
    }

    /// Appends `other`'s elements; `None` if the dtypes differ.
    pub(crate) fn append(&mut self, other: &TensorData) -> Option<()> {
        match (self, other) {
            (TensorData::F32(a), TensorData::F32(b)) => a.extend_from_slice(b),
            (TensorData::F16(a), TensorData::F16(b)) => a.extend_from_slice(b),
            (TensorData::I32(a), TensorData::I32(b)) => a.extend_from_slice(b),
            (TensorData::U32(a), TensorData::U32(b)) => a.extend_from_slice(b),
            _ => return None,
        }
        Some(())
    }
}

/// Why a tensor could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TensorError {
    /// The data length is not the product of the shape.
    #[error("a tensor of shape {shape:?} holds {expected} element(s), but {found} were given")]
    Length {
        /// The shape.
        shape: Vec<usize>,
        /// The shape's element count.
        expected: usize,
        /// The data length.
        found: usize,
    },
    /// The shape's element count overflows `usize`.
    #[error("shape {0:?} has too many elements")]
    TooLarge(Vec<usize>),
    /// The `dtype` field disagrees with the data's variant.
    #[error("tensor is labelled {label} but holds {data} data")]
    DTypeLabel {
        /// The `dtype` field.
        label: DType,
        /// The variant of `data`.
        data: DType,
    },
    /// A float value was asked of a tensor that is not float.
    #[error("expected a float tensor, found {0}")]
    NotFloat(DType),
}

/// A host tensor: dtype, concrete shape (outermost first) and row-major data.
///
/// The fields are public for easy inspection; the constructors keep them
/// consistent (`dtype` equals `data.dtype()`, `data.len()` is the product of
/// `shape`), and [`Tensor::validate`] checks a tensor built by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The element type (always `data.dtype()`).
    pub dtype: DType,
    /// The concrete shape; `[]` is a scalar.
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: TensorData,
}

/// The number of elements of a shape, or `None` on overflow.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// A tensor from a shape and data; errors if the data length is not the
    /// product of the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, TensorError> {
        let expected = element_count(&shape).ok_or_else(|| TensorError::TooLarge(shape.clone()))?;
        if data.len() != expected {
            return Err(TensorError::Length {
                shape,
                expected,
                found: data.len(),
            });
        }
        Ok(Tensor {
            dtype: data.dtype(),
            shape,
            data,
        })
    }

    /// An `f32` tensor.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, TensorData::F32(data))
    }

    /// An `f16` tensor.
    pub fn f16(shape: Vec<usize>, data: Vec<f16>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, TensorData::F16(data))
    }

    /// An `i32` tensor.
    pub fn i32(shape: Vec<usize>, data: Vec<i32>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, TensorData::I32(data))
    }

    /// A `u32` tensor.
    pub fn u32(shape: Vec<usize>, data: Vec<u32>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, TensorData::U32(data))
    }

    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Tensor, TensorError> {
        let n = element_count(&shape).ok_or_else(|| TensorError::TooLarge(shape.clone()))?;
        Tensor::new(shape, TensorData::zeros(dtype, n))
    }

    /// A scalar (rank-0) `f32` tensor.
    pub fn scalar_f32(value: f32) -> Tensor {
        Tensor {
            dtype: DType::F32,
            shape: Vec::new(),
            data: TensorData::F32(vec![value]),
        }
    }

    /// A tensor of `dtype` from `f32` values: rounded to nearest for `f16`,
    /// truncated toward zero (saturating, NaN → 0) for integer dtypes.
    pub fn from_f32_vec(
        dtype: DType,
        shape: Vec<usize>,
        values: Vec<f32>,
    ) -> Result<Tensor, TensorError> {
        let data = match dtype {
            DType::F32 => TensorData::F32(values),
            DType::F16 => TensorData::F16(values.into_iter().map(f16::from_f32).collect()),
            DType::I32 => TensorData::I32(values.into_iter().map(|v| v as i32).collect()),
            DType::U32 => TensorData::U32(values.into_iter().map(|v| v as u32).collect()),
        };
        Tensor::new(shape, data)
    }

    /// Checks that `dtype` matches the data and the data length matches the shape.
    pub fn validate(&self) -> Result<(), TensorError> {
        if self.dtype != self.data.dtype() {
            return Err(TensorError::DTypeLabel {
                label: self.dtype,
                data: self.data.dtype(),
            });
        }
        let expected =
            element_count(&self.shape).ok_or_else(|| TensorError::TooLarge(self.shape.clone()))?;
        if self.data.len() != expected {
            return Err(TensorError::Length {
                shape: self.shape.clone(),
                expected,
                found: self.data.len(),
            });
        }
        Ok(())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Every element converted to `f32` (integers converted with rounding to nearest).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.floats().into_owned()
    }

    /// The elements as `f32`, borrowed when the tensor is `f32` and converted otherwise.
    pub fn floats(&self) -> Cow<'_, [f32]> {
        match &self.data {
            TensorData::F32(v) => Cow::Borrowed(v),
            TensorData::F16(v) => Cow::Owned(v.iter().map(|x| x.to_f32()).collect()),
            TensorData::I32(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
            TensorData::U32(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        }
    }

    /// Every element converted to `i64` (floats truncated toward zero), for reading ids.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::F16(v) => v.iter().map(|x| x.to_f32() as i64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::U32(v) => v.iter().map(|&x| i64::from(x)).collect(),
        }
    }

    /// The `f32` elements, if the tensor is `f32`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The `f16` elements, if the tensor is `f16`.
    pub fn as_f16(&self) -> Option<&[f16]> {
        match &self.data {
            TensorData::F16(v) => Some(v),
            _ => None,
        }
    }

    /// The `i32` elements, if the tensor is `i32`.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            TensorData::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The `u32` elements, if the tensor is `u32`.
    pub fn as_u32(&self) -> Option<&[u32]> {
        match &self.data {
            TensorData::U32(v) => Some(v),
            _ => None,
        }
    }

    /// Elements `start..end` along `axis` (every other dim whole), or `None`
    /// when `axis` is not a dim or the range is not within it.
    pub fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Option<Tensor> {
        let size = *self.shape.get(axis)?;
        if start > end || end > size {
            return None;
        }
        let outer: usize = self.shape[..axis].iter().product();
        let inner: usize = self.shape[axis + 1..].iter().product();
        let mut indices = Vec::with_capacity(outer * (end - start) * inner);
        for o in 0..outer {
            indices.extend((o * size + start) * inner..(o * size + end) * inner);
        }
        let mut shape = self.shape.clone();
        shape[axis] = end - start;
        Tensor::new(shape, self.data.take(&indices)).ok()
    }

    /// The same elements with another shape of equal element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, self.data.clone())
    }

    /// The largest absolute element-wise difference to `other` (as `f32`), or
    /// `None` when the shapes differ. NaN in either tensor gives NaN.
    pub fn max_abs_diff(&self, other: &Tensor) -> Option<f32> {
        if self.shape != other.shape {
            return None;
        }
        let (a, b) = (self.floats(), other.floats());
        Some(a.iter().zip(b.iter()).fold(0.0f32, |m, (x, y)| {
            let d = (x - y).abs();
            if d.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        }))
    }
}

impl fmt::Display for Tensor {
    /// `f32[2, 3]` followed by up to 16 elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?} ", self.dtype, self.shape)?;
        let shown = self.floats();
        f.write_str("[")?;
        for (i, x) in shown.iter().take(16).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{x}")?;
        }
        if shown.len() > 16 {
            write!(f, ", … ({} in all)", shown.len())?;
        }
        f.write_str("]")
    }
}

/// Row-major strides of a shape (in elements).
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Decodes little-endian f32 values (a trailing partial word is ignored).
pub fn f32s_from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_check_length() {
        assert!(Tensor::f32(vec![2, 3], vec![0.0; 6]).is_ok());
        let e = Tensor::f32(vec![2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(
            e,
            TensorError::Length {
                shape: vec![2, 3],
                expected: 6,
                found: 5
            }
        );
        assert!(e
            .to_string()
            .contains("holds 6 element(s), but 5 were given"));
        assert!(Tensor::i32(vec![], vec![7]).is_ok());
        assert!(Tensor::u32(vec![0, 4], vec![]).is_ok());
        assert!(matches!(
            Tensor::f32(vec![usize::MAX, 2], vec![]),
            Err(TensorError::TooLarge(_))
        ));
    }

    #[test]
    fn validate_catches_hand_built_tensors() {
        let mut t = Tensor::zeros(DType::F32, vec![2]).unwrap();
        assert!(t.validate().is_ok());
        t.dtype = DType::I32;
        assert!(matches!(t.validate(), Err(TensorError::DTypeLabel { .. })));
        t.dtype = DType::F32;
        t.shape = vec![3];
        assert!(matches!(t.validate(), Err(TensorError::Length { .. })));
    }

    #[test]
    fn conversions() {
        let t = Tensor::from_f32_vec(DType::F16, vec![2], vec![1.0, 0.1]).unwrap();
        assert_eq!(t.dtype, DType::F16);
        // 0.1 is not representable in f16: the nearest f16 is 0.0999755859375.
        assert_eq!(t.to_f32_vec(), vec![1.0, 0.099_975_586]);
        let t = Tensor::from_f32_vec(DType::I32, vec![3], vec![-1.7, 2.9, f32::NAN]).unwrap();
        assert_eq!(t.as_i32().unwrap(), &[-1, 2, 0]);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
        let a = Tensor::f32(vec![2], vec![1.0, 2.0]).unwrap();
        let b = Tensor::f32(vec![2], vec![1.5, 2.0]).unwrap();
        assert_eq!(a.max_abs_diff(&b), Some(0.5));
        assert_eq!(a.max_abs_diff(&a.reshaped(vec![1, 2]).unwrap()), None);
    }
}
