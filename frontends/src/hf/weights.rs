//! Converting checkpoint tensors into the IR's parameter layouts.
//!
//! Each parameter records the checkpoint tensor(s) it comes from and how: as is,
//! as an `nn.Linear` weight (stored `[out, in]`, the IR multiplies `x[T, in]` by
//! `[in, out]`), as per-expert linear weights stacked into `[E, in, out]`, or
//! sliced from transformers 5.x's fused expert tensors.

use std::sync::Arc;

use safetensors::Dtype;
use seam_ir::eval::tensor::f32s_from_le_bytes;
use seam_ir::{EncodedWeight, Model, ParamId, Tensor, Weights};

use super::checkpoint::{Checkpoint, RawTensor};
use super::store::{EncodedRows, TensorStore, Values};
use super::HfError;

/// Where one IR parameter's values come from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    /// A tensor of the parameter's shape (norm weights, biases, embedding tables).
    Direct(String),
    /// An `nn.Linear` weight `[out, in]`, transposed to the parameter's `[in, out]`.
    Linear(String),
    /// One `nn.Linear` weight `[out, in]` per expert, stacked to `[E, in, out]`.
    Experts(Vec<String>),
    /// A part of transformers 5.x's fused expert weights (`save_original_format=False`):
    /// `gate_up_proj` `[E, 2F, D]` (gate rows first) or `down_proj` `[E, D, F]`.
    FusedExperts {
        /// The fused tensor.
        tensor: String,
        /// Which projection.
        part: ExpertPart,
    },
    /// The first source if all its tensors are present, else the second (the
    /// hub's original layout first, so a missing tensor is reported by that name).
    Either(Box<Source>, Box<Source>),
}

/// A projection of a gated expert.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ExpertPart {
    /// The activation's input projection.
    Gate,
    /// The multiplied projection.
    Up,
    /// The output projection.
    Down,
}

impl Source {
    /// The checkpoint tensors read (those of the first alternative for `Either`).
    fn tensors(&self) -> Vec<&str> {
        match self {
            Source::Direct(n) | Source::Linear(n) => vec![n.as_str()],
            Source::Experts(ns) => ns.iter().map(String::as_str).collect(),
            Source::FusedExperts { tensor, .. } => vec![tensor.as_str()],
            Source::Either(a, _) => a.tensors(),
        }
    }

    /// The alternative to read from `ckpt`.
    pub(crate) fn resolve<'s>(&'s self, ckpt: &impl TensorStore) -> &'s Source {
        match self {
            Source::Either(a, b) => {
                let present = |s: &Source| s.tensors().iter().all(|t| ckpt.contains(t));
                if present(a) || !present(b) {
                    a.resolve(ckpt)
                } else {
                    b.resolve(ckpt)
                }
            }
            other => other,
        }
    }
}

/// Progress while converting: bytes of parameters done and in all.
pub type ProgressFn<'a> = dyn FnMut(u64, u64) + 'a;

/// Reads every parameter of `model` (declared in the order of `sources`),
/// keeping the blocks of every `nn.Linear` and expert weight the store holds
/// encoded.
pub(crate) fn load<S: TensorStore>(
    model: &Model,
    sources: &[Source],
    store: &S,
    progress: &mut ProgressFn<'_>,
) -> Result<Weights, S::Error> {
    let total = model.param_bytes();
    let mut done = 0u64;
    let mut tensors = Vec::with_capacity(sources.len());
    let mut encodings = Vec::new();
    for (index, (decl, source)) in model.params.iter().zip(sources).enumerate() {
        let shape = decl.sizes();
        let (values, encoding) = read_param(store, source.resolve(store), &shape)?;
        if let Some(e) = encoding {
            encodings.push((ParamId(index as u32), e));
        }
        done += (values.len() * decl.ty.dtype.size_bytes()) as u64;
        tensors.push(
            Tensor::f32(shape, values).map_err(|e| seam_ir::WeightsError::Tensor {
                name: decl.name.clone(),
                source: e,
            })?,
        );
        progress(done, total);
    }
    let mut weights = Weights::new(model, tensors)?;
    for (id, encoding) in encodings {
        weights.set_encoding(id, encoding)?;
    }
    Ok(weights)
}

/// One parameter of `shape` read from `source`: its values in the IR's layout,
/// and its encoding when the store keeps the tensors it comes from encoded.
fn read_param<S: TensorStore>(
    store: &S,
    source: &Source,
    shape: &[usize],
) -> Result<(Vec<f32>, Option<EncodedWeight>), S::Error> {
    Ok(match source {
        Source::Direct(name) => (store.read(name, shape, false)?.values, None),
        Source::Linear(name) => {
            let (i, o) = (shape[0], shape[1]);
            let Values { values, rows } = store.read(name, &[o, i], true)?;
            (transpose(&values, o, i), rows.map(|r| encoded(r, o)))
        }
        Source::Experts(names) => {
            let (i, o) = (shape[1], shape[2]);
            // Sized by the first expert read (its shape checked), never by the config alone.
            let mut all = Vec::new();
            let mut blocks: Option<EncodedRows> = None;
            let mut every_expert_encoded = true;
            for name in names {
                let Values { values, rows } = store.read(name, &[o, i], true)?;
                if all.is_empty() {
                    all.reserve_exact(values.len() * names.len());
                }
                all.extend(transpose(&values, o, i));
                every_expert_encoded &= append_rows(&mut blocks, rows);
            }
            let rows = o * names.len();
            (
                all,
                blocks
                    .filter(|_| every_expert_encoded)
                    .map(|b| encoded(b, rows)),
            )
        }
        Source::FusedExperts { tensor, part } => {
            let (e, i, o) = (shape[0], shape[1], shape[2]);
            (read_fused(store, tensor, *part, e, i, o)?, None)
        }
        Source::Either(..) => unreachable!("resolve picks a concrete source"),
    })
}

/// Appends one expert's rows to `all`; false when they are missing or in
/// another format or width than the experts before.
fn append_rows(all: &mut Option<EncodedRows>, rows: Option<EncodedRows>) -> bool {
    let Some(rows) = rows else {
        return false;
    };
    match all {
        None => {
            *all = Some(rows);
            true
        }
        Some(a) if a.format == rows.format && a.k == rows.k => {
            a.bytes.extend_from_slice(&rows.bytes);
            true
        }
        Some(_) => false,
    }
}

/// `rows` rows of encoded blocks as a parameter's encoding.
fn encoded(blocks: EncodedRows, rows: usize) -> EncodedWeight {
    EncodedWeight {
        format: blocks.format,
        rows: rows as u64,
        k: blocks.k,
        bytes: Arc::from(blocks.bytes),
    }
}

/// Checks up front that every tensor the sources read exists, so a missing
/// tensor is reported before any conversion work.
pub(crate) fn check_present<S: TensorStore>(sources: &[Source], store: &S) -> Result<(), S::Error> {
    for name in sources.iter().flat_map(|s| s.resolve(store).tensors()) {
        if !store.contains(name) {
            return Err(store.missing(name));
        }
    }
    Ok(())
}

impl TensorStore for Checkpoint {
    type Error = HfError;

    fn contains(&self, name: &str) -> bool {
        Checkpoint::contains(self, name)
    }

    fn read(&self, name: &str, expected: &[usize], _blocks: bool) -> Result<Values, HfError> {
        read(self, name, expected).map(Values::plain)
    }

    fn missing(&self, name: &str) -> HfError {
        match self.tensor(name) {
            Err(e) => e,
            Ok(_) => HfError::MissingTensor {
                tensor: name.to_string(),
                file: std::path::PathBuf::new(),
            },
        }
    }
}

/// The tensor `name` as f32 values, checked to have shape `expected`.
fn read(ckpt: &Checkpoint, name: &str, expected: &[usize]) -> Result<Vec<f32>, HfError> {
    let RawTensor {
        file, info, bytes, ..
    } = ckpt.tensor(name)?;
    if info.shape != expected {
        return Err(HfError::WrongShape {
            tensor: name.to_string(),
            file: file.to_path_buf(),
            found: info.shape.clone(),
            expected: expected.to_vec(),
        });
    }
    Ok(match info.dtype {
        Dtype::F32 => f32s_from_le_bytes(bytes),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(HfError::WrongDtype {
                tensor: name.to_string(),
                file: file.to_path_buf(),
                dtype: format!("{other:?}"),
            })
        }
    })
}

/// One projection of every expert, `[E, in, out]`, from a fused tensor.
fn read_fused<S: TensorStore>(
    store: &S,
    tensor: &str,
    part: ExpertPart,
    e: usize,
    i: usize,
    o: usize,
) -> Result<Vec<f32>, S::Error> {
    // Sized after `read` has checked the tensor's shape, never by the config alone.
    let mut out = Vec::new();
    match part {
        ExpertPart::Gate | ExpertPart::Up => {
            // [E, 2F, D]: each expert's rows 0..F are the gate, F..2F the up projection.
            let (d, f) = (i, o);
            let fused = store.read(tensor, &[e, 2 * f, d], false)?.values;
            out.reserve_exact(fused.len() / 2);
            let skip = if part == ExpertPart::Gate { 0 } else { f * d };
            for expert in fused.chunks_exact(2 * f * d) {
                out.extend(transpose(&expert[skip..skip + f * d], f, d));
            }
        }
        ExpertPart::Down => {
            let (f, d) = (i, o);
            let fused = store.read(tensor, &[e, d, f], false)?.values;
            out.reserve_exact(fused.len());
            for expert in fused.chunks_exact(d * f) {
                out.extend(transpose(expert, d, f));
            }
        }
    }
    Ok(out)
}

/// `[rows, cols]` row-major → `[cols, rows]`.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn transpose_swaps_rows_and_columns() {
        // [[1, 2, 3], [4, 5, 6]] → [[1, 4], [2, 5], [3, 6]], checked by hand.
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }
}
