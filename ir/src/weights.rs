//! Model weights for the evaluator, and the seeded random weights shared by
//! `seam eval` and `seam compile` so the CPU reference and the GPU path see
//! identical parameters.
//!
//! # The random-weight rule
//!
//! [`random_weights`] seeds one `rand_chacha::ChaCha8Rng` with
//! `SeedableRng::seed_from_u64(seed)` and draws every parameter in declaration
//! order, each tensor's elements in row-major order, one `next_u32()` per element:
//!
//! - a float element is `lo + (hi - lo) · u` with `u = (next_u32() >> 8) · 2⁻²⁴`
//!   (computed in `f32`; `u` lies in `[0, 1)`), rounded to `f16` for `f16` params;
//!   - params of rank ≥ 2 use `hi = -lo = 1/sqrt(fan_in)` with
//!     `fan_in = shape[rank - 2]` (the contraction dim of `x · W`; for stacked
//!     expert weights `[E, D, F]` it is `D`);
//!   - params of rank 1 or 0 (norm weights, biases, scales) use `[0.5, 1.5)`;
//! - an integer element is `next_u32() % 4`, i.e. uniform in `[0, 4)`.
//!
//! [`random_tensor`] and [`random_tensor_in`] draw inputs the same way from
//! their own seed.

use std::collections::HashMap;

use half::f16;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::encoded::{EncodedWeight, EncodingError};
use crate::eval::tensor::{element_count, Tensor, TensorData, TensorError};
use crate::model::{Model, ParamId};
use crate::shape::{Dim, TensorType};
use seam_core::DType;

/// Why a set of weights does not fit a model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WeightsError {
    /// The number of tensors differs from the number of declared params.
    #[error("the model declares {expected} param(s) but {found} tensor(s) were given")]
    Count {
        /// Declared params.
        expected: usize,
        /// Tensors given.
        found: usize,
    },
    /// A declared param has no tensor.
    #[error("no tensor given for param `@{0}`")]
    Missing(String),
    /// A tensor names a param the model does not declare.
    #[error("the model has no param `@{0}`")]
    Unknown(String),
    /// A tensor's name differs from the param declared at its position.
    #[error("param {index} is `@{expected}` but the weights name it `@{found}`")]
    Name {
        /// Param index.
        index: usize,
        /// The declared name.
        expected: String,
        /// The name in the weights.
        found: String,
    },
    /// A tensor's dtype or shape differs from the param's declared type.
    #[error(
        "param `@{name}` is declared {expected} but the tensor is {found_dtype}{found_shape:?}"
    )]
    Type {
        /// The param.
        name: String,
        /// Its declared type.
        expected: TensorType,
        /// The tensor's dtype.
        found_dtype: DType,
        /// The tensor's shape.
        found_shape: Vec<usize>,
    },
    /// A tensor is internally inconsistent.
    #[error("param `@{name}`: {source}")]
    Tensor {
        /// The param.
        name: String,
        /// What is wrong.
        source: TensorError,
    },
}

/// One tensor per model parameter, in declaration order, each checked against
/// the param's declared (static) type.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    names: Vec<String>,
    tensors: Vec<Tensor>,
    /// Per param, its values as format blocks where they came as such.
    encodings: Vec<Option<EncodedWeight>>,
}

impl Weights {
    /// Weights from one tensor per param, in the model's declaration order.
    pub fn new(model: &Model, tensors: Vec<Tensor>) -> Result<Weights, WeightsError> {
        let w = Weights {
            names: model.params.iter().map(|p| p.name.clone()).collect(),
            encodings: vec![None; tensors.len()],
            tensors,
        };
        w.check(model)?;
        Ok(w)
    }

    /// Weights from `(name, tensor)` pairs in any order; every param needs exactly one.
    pub fn from_named(
        model: &Model,
        named: impl IntoIterator<Item = (String, Tensor)>,
    ) -> Result<Weights, WeightsError> {
        let mut by_name: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in named {
            if model.param_by_name(&name).is_none() {
                return Err(WeightsError::Unknown(name));
            }
            by_name.insert(name, t);
        }
        let mut tensors = Vec::with_capacity(model.params.len());
        for p in &model.params {
            let t = by_name
                .remove(&p.name)
                .ok_or_else(|| WeightsError::Missing(p.name.clone()))?;
            tensors.push(t);
        }
        Weights::new(model, tensors)
    }

    /// Checks that these weights fit `model`: one tensor per param, same names,
    /// each of the declared dtype and static shape.
    pub fn check(&self, model: &Model) -> Result<(), WeightsError> {
        if self.tensors.len() != model.params.len() {
            return Err(WeightsError::Count {
                expected: model.params.len(),
                found: self.tensors.len(),
            });
        }
        for (i, (p, t)) in model.params.iter().zip(&self.tensors).enumerate() {
            if self.names[i] != p.name {
                return Err(WeightsError::Name {
                    index: i,
                    expected: p.name.clone(),
                    found: self.names[i].clone(),
                });
            }
            t.validate().map_err(|source| WeightsError::Tensor {
                name: p.name.clone(),
                source,
            })?;
            let declared = p.ty.shape.static_sizes();
            let fits = declared.is_some_and(|d| {
                d.len() == t.shape.len() && d.iter().zip(&t.shape).all(|(&a, &b)| a == b as u64)
            });
            if t.dtype != p.ty.dtype || !fits {
                return Err(WeightsError::Type {
                    name: p.name.clone(),
                    expected: p.ty.clone(),
                    found_dtype: t.dtype,
                    found_shape: t.shape.clone(),
                });
            }
        }
        Ok(())
    }

    /// The tensor of a param.
    pub fn get(&self, id: ParamId) -> Option<&Tensor> {
        self.tensors.get(id.index())
    }

    /// The tensor of the param with this name.
    pub fn by_name(&self, name: &str) -> Option<&Tensor> {
        let i = self.names.iter().position(|n| n == name)?;
        self.tensors.get(i)
    }

    /// Replaces param `id`'s tensor by one of the same dtype and shape (its
    /// encoding, if any, is dropped: set it again with [`Weights::set_encoding`]).
    pub fn replace(&mut self, id: ParamId, tensor: Tensor) -> Result<(), WeightsError> {
        let i = id.index();
        let (Some(name), Some(old)) = (self.names.get(i), self.tensors.get(i)) else {
            return Err(WeightsError::Count {
                expected: i + 1,
                found: self.tensors.len(),
            });
        };
        if old.dtype != tensor.dtype || old.shape != tensor.shape {
            return Err(WeightsError::Type {
                name: name.clone(),
                expected: crate::shape::TensorType::new(
                    old.dtype,
                    old.shape.iter().map(|&d| d as u64).collect::<Vec<_>>(),
                ),
                found_dtype: tensor.dtype,
                found_shape: tensor.shape,
            });
        }
        self.tensors[i] = tensor;
        self.encodings[i] = None;
        Ok(())
    }

    /// The blocks param `id`'s values were decoded from, if it has an encoding.
    pub fn encoding(&self, id: ParamId) -> Option<&EncodedWeight> {
        self.encodings.get(id.index())?.as_ref()
    }

    /// Records that param `id`'s tensor holds exactly what `encoding` decodes to
    /// (the caller decoded it); checks that the encoding fits the param's shape.
    pub fn set_encoding(
        &mut self,
        id: ParamId,
        encoding: EncodedWeight,
    ) -> Result<(), EncodingError> {
        let i = id.index();
        let name = self.names.get(i).cloned().unwrap_or_default();
        let shape = self
            .tensors
            .get(i)
            .map(|t| t.shape.clone())
            .unwrap_or_default();
        encoding.check(&name, &shape)?;
        if let Some(slot) = self.encodings.get_mut(i) {
            *slot = Some(encoding);
        }
        Ok(())
    }

    /// Every tensor, in declaration order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// `(name, tensor)` pairs in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.names.iter().map(String::as_str).zip(&self.tensors)
    }

    /// Number of params.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no params.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// Draws one float in `[lo, hi)` as documented in the module docs.
fn draw_float(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    let u = (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
    lo + (hi - lo) * u
}

/// Draws `n` elements of `dtype`: floats in `[lo, hi)`, integers uniform in `[0, 4)`.
fn draw(rng: &mut ChaCha8Rng, dtype: DType, n: usize, lo: f32, hi: f32) -> TensorData {
    match dtype {
        DType::F32 => TensorData::F32((0..n).map(|_| draw_float(rng, lo, hi)).collect()),
        DType::F16 => TensorData::F16(
            (0..n)
                .map(|_| f16::from_f32(draw_float(rng, lo, hi)))
                .collect(),
        ),
        DType::I32 => TensorData::I32((0..n).map(|_| (rng.next_u32() % 4) as i32).collect()),
        DType::U32 => TensorData::U32((0..n).map(|_| rng.next_u32() % 4).collect()),
    }
}

/// Deterministic random weights for every param of `model` (see the module docs
/// for the exact rule). Params should have static shapes (as the verifier
/// requires); a symbolic dim in a param's shape takes its declared bound (1 if
/// undeclared).
pub fn random_weights(model: &Model, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut names = Vec::with_capacity(model.params.len());
    let mut tensors = Vec::with_capacity(model.params.len());
    for p in &model.params {
        let shape: Vec<usize> =
            p.ty.shape
                .dims()
                .iter()
                .map(|d| match d {
                    Dim::Static(n) => *n as usize,
                    Dim::Sym(s) => model.dim(s).map_or(1, |d| d.max as usize),
                })
                .collect();
        let n = element_count(&shape).unwrap_or(0);
        let (lo, hi) = if shape.len() >= 2 {
            let fan_in = shape[shape.len() - 2].max(1) as f32;
            let b = 1.0 / fan_in.sqrt();
            (-b, b)
        } else {
            (0.5, 1.5)
        };
        let data = draw(&mut rng, p.ty.dtype, n, lo, hi);
        names.push(p.name.clone());
        tensors.push(Tensor {
            dtype: p.ty.dtype,
            shape,
            data,
        });
    }
    Weights {
        names,
        encodings: vec![None; tensors.len()],
        tensors,
    }
}

/// A deterministic random tensor: floats uniform in `[-1, 1)`, integers uniform
/// in `[0, 4)` (the draw of the module docs, from its own `seed`).
pub fn random_tensor(dtype: DType, shape: &[usize], seed: u64) -> Result<Tensor, TensorError> {
    random_tensor_in(dtype, shape, -1.0, 1.0, seed)
}

/// A deterministic random tensor with floats uniform in `[lo, hi)` and integers
/// uniform in `[lo, hi)` (truncated bounds; `hi <= lo` gives all `lo`).
pub fn random_tensor_in(
    dtype: DType,
    shape: &[usize],
    lo: f64,
    hi: f64,
    seed: u64,
) -> Result<Tensor, TensorError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = element_count(shape).ok_or_else(|| TensorError::TooLarge(shape.to_vec()))?;
    let data = if dtype.is_float() {
        draw(&mut rng, dtype, n, lo as f32, hi as f32)
    } else {
        let (lo, hi) = (lo as i64, hi as i64);
        let span = (hi - lo).max(1) as u64;
        let ints = (0..n).map(|_| lo + (u64::from(rng.next_u32()) % span) as i64);
        match dtype {
            DType::I32 => TensorData::I32(ints.map(|v| v as i32).collect()),
            _ => TensorData::U32(ints.map(|v| v as u32).collect()),
        }
    };
    Tensor::new(shape.to_vec(), data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ParamDecl;

    fn model() -> Model {
        let mut m = Model::new("w");
        for (name, ty) in [
            ("a", TensorType::new(DType::F32, [16u64, 8])),
            ("norm", TensorType::new(DType::F32, [8u64])),
            ("experts", TensorType::new(DType::F16, [3u64, 4, 8])),
            ("table", TensorType::new(DType::I32, [5u64])),
        ] {
            m.params.push(ParamDecl::new(name, ty));
        }
        m
    }

    #[test]
    fn deterministic_and_within_bounds() {
        let m = model();
        let a = random_weights(&m, 7);
        let b = random_weights(&m, 7);
        let c = random_weights(&m, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        a.check(&m).unwrap();
        // fan_in of [16, 8] is 16: ±0.25.
        let w = a.by_name("a").unwrap().as_f32().unwrap();
        assert!(w.iter().all(|&x| (-0.25..0.25).contains(&x)));
        assert!(w.iter().any(|&x| x < -0.1) && w.iter().any(|&x| x > 0.1));
        let n = a.by_name("norm").unwrap().as_f32().unwrap();
        assert!(n.iter().all(|&x| (0.5..1.5).contains(&x)));
        // [3, 4, 8]: fan_in = 4, bound 0.5 (f16 rounding may reach the bound).
        let e = a.by_name("experts").unwrap().to_f32_vec();
        assert!(e.iter().all(|&x| (-0.5..=0.5).contains(&x)));
        let t = a.by_name("table").unwrap().as_i32().unwrap();
        assert!(t.iter().all(|&x| (0..4).contains(&x)));
    }

    #[test]
    fn first_draw_follows_the_documented_rule() {
        let mut m = Model::new("one");
        m.params
            .push(ParamDecl::new("s", TensorType::new(DType::F32, [1u64])));
        let w = random_weights(&m, 42);
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let u = (rng.next_u32() >> 8) as f32 / 16_777_216.0;
        assert_eq!(w.tensors()[0].as_f32().unwrap(), &[0.5 + u]);
    }

    #[test]
    fn weights_checks() {
        let m = model();
        let w = random_weights(&m, 1);
        let mut ts = w.tensors().to_vec();
        ts.pop();
        assert!(matches!(
            Weights::new(&m, ts.clone()),
            Err(WeightsError::Count {
                expected: 4,
                found: 3
            })
        ));
        ts.push(Tensor::i32(vec![4], vec![0; 4]).unwrap());
        let e = Weights::new(&m, ts).unwrap_err();
        assert!(matches!(e, WeightsError::Type { .. }));
        assert!(e.to_string().contains("`@table` is declared i32[5]"), "{e}");
        let mut named: Vec<(String, Tensor)> =
            w.iter().map(|(n, t)| (n.to_string(), t.clone())).collect();
        named.reverse();
        assert_eq!(Weights::from_named(&m, named.clone()).unwrap(), w);
        assert_eq!(
            Weights::from_named(&m, named[1..].to_vec()).unwrap_err(),
            WeightsError::Missing("table".into())
        );
        let mut extra = named;
        extra.push(("nope".into(), Tensor::scalar_f32(1.0)));
        assert_eq!(
            Weights::from_named(&m, extra).unwrap_err(),
            WeightsError::Unknown("nope".into())
        );
    }

    #[test]
    fn random_tensors() {
        let t = random_tensor(DType::F32, &[3, 4], 5).unwrap();
        assert_eq!(t, random_tensor(DType::F32, &[3, 4], 5).unwrap());
        assert!(t
            .as_f32()
            .unwrap()
            .iter()
            .all(|&x| (-1.0..1.0).contains(&x)));
        let ids = random_tensor_in(DType::I32, &[100], 0.0, 8.0, 3).unwrap();
        let ids = ids.as_i32().unwrap();
        assert!(ids.iter().all(|&x| (0..8).contains(&x)));
        assert!(ids.contains(&7) && ids.contains(&0));
    }
}
