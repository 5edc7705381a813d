//! Host tensors: what an app passes to and gets back from a session.

use crate::error::Error;
use seam_core::DType;

/// A tensor in host memory: element type, shape and little-endian bytes, whose
/// length always matches the shape (the constructors check it).
///
/// Plain data: `Send + Sync`, cheap to move, cloned by copying its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    dtype: DType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl HostTensor {
    /// An f32 tensor; the data length must match the shape.
    pub fn from_f32(shape: Vec<usize>, data: &[f32]) -> Result<Self, Error> {
        Self::from_pod(DType::F32, shape, data)
    }

    /// An i32 tensor (token ids); the data length must match the shape.
    pub fn from_i32(shape: Vec<usize>, data: &[i32]) -> Result<Self, Error> {
        Self::from_pod(DType::I32, shape, data)
    }

    /// A u32 tensor; the data length must match the shape.
    pub fn from_u32(shape: Vec<usize>, data: &[u32]) -> Result<Self, Error> {
        Self::from_pod(DType::U32, shape, data)
    }

    /// A tensor of any element type from its row-major little-endian bytes
    /// (e.g. f16 values); the byte length must be the shape's element count
    /// times the element size.
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, bytes: Vec<u8>) -> Result<Self, Error> {
        let elements = element_count(&shape)?;
        let expected = elements
            .checked_mul(dtype.size_bytes())
            .ok_or_else(|| too_large(&shape))?;
        if bytes.len() != expected {
            return Err(Error::Input(format!(
                "shape {shape:?} of {dtype:?} holds {expected} bytes but {} were given",
                bytes.len()
            )));
        }
        Ok(HostTensor {
            dtype,
            shape,
            bytes,
        })
    }

    fn from_pod<T: bytemuck::Pod>(
        dtype: DType,
        shape: Vec<usize>,
        data: &[T],
    ) -> Result<Self, Error> {
        let n = element_count(&shape)?;
        if n != data.len() {
            return Err(Error::Input(format!(
                "shape {shape:?} holds {n} elements but {} were given",
                data.len()
            )));
        }
        Ok(HostTensor {
            dtype,
            shape,
            bytes: bytemuck::cast_slice(data).to_vec(),
        })
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Row-major little-endian element bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (f16 widened, integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        let words = |b: &[u8]| -> Vec<[u8; 4]> {
            b.chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect()
        };
        match self.dtype {
            DType::F32 => words(&self.bytes)
                .into_iter()
                .map(f32::from_le_bytes)
                .collect(),
            DType::I32 => words(&self.bytes)
                .into_iter()
                .map(|w| i32::from_le_bytes(w) as f32)
                .collect(),
            DType::U32 => words(&self.bytes)
                .into_iter()
                .map(|w| u32::from_le_bytes(w) as f32)
                .collect(),
            DType::F16 => self
                .bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        }
    }
}

/// The product of `shape`, or an error when it overflows.
fn element_count(shape: &[usize]) -> Result<usize, Error> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| too_large(shape))
}

fn too_large(shape: &[usize]) -> Error {
    Error::Input(format!(
        "shape {shape:?} has more elements than memory can hold"
    ))
}
