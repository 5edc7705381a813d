//! Where a parameter's values lie, byte for byte, in a checkpoint file, so a
//! compiler may reference the file instead of copying the bytes (external weights).
//!
//! Only f32 tensors qualify (f16 and bf16 are converted). A parameter read as
//! is (norms, biases, embeddings) is its tensor's bytes; an `nn.Linear` weight
//! `[out, in]` is the parameter `[in, out]` with its last two dims swapped; the
//! stacked experts `[E, in, out]` are, swapped, the per-expert `[out, in]`
//! tensors one after another — when the file stores them adjacent and in expert
//! order, which `save_pretrained` usually does not (it sorts names); and
//! transformers 5.x's fused `down_proj` `[E, D, F]` is the parameter `[E, F, D]`
//! swapped. Slices of the fused `gate_up_proj` are not contiguous.

use std::path::PathBuf;

use safetensors::Dtype;

use super::checkpoint::Checkpoint;
use super::weights::{ExpertPart, Source};

/// How a checkpoint byte range holds a parameter's values.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OriginLayout {
    /// The parameter's f32 values, row-major, little-endian.
    AsIs,
    /// The parameter's values with its last two dims swapped.
    TransposedLast2,
}

/// A byte range of a checkpoint file holding one parameter's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorOrigin {
    /// The safetensors file.
    pub file: PathBuf,
    /// Where the bytes start in the file.
    pub offset: u64,
    /// How many bytes.
    pub bytes: u64,
    /// How they hold the parameter.
    pub layout: OriginLayout,
}

/// The origin of each parameter read by `sources`, where it is one f32 byte range.
pub(crate) fn origins(sources: &[Source], ckpt: &Checkpoint) -> Vec<Option<TensorOrigin>> {
    sources
        .iter()
        .map(|s| origin(s.resolve(ckpt), ckpt))
        .collect()
}

fn origin(source: &Source, ckpt: &Checkpoint) -> Option<TensorOrigin> {
    let range = |name: &str| {
        let t = ckpt.tensor(name).ok()?;
        (t.info.dtype == Dtype::F32).then(|| (t.file.to_path_buf(), t.offset, t.bytes.len() as u64))
    };
    let single = |name: &str, layout| {
        range(name).map(|(file, offset, bytes)| TensorOrigin {
            file,
            offset,
            bytes,
            layout,
        })
    };
    match source {
        Source::Direct(name) => single(name, OriginLayout::AsIs),
        Source::Linear(name) => single(name, OriginLayout::TransposedLast2),
        Source::FusedExperts {
            tensor,
            part: ExpertPart::Down,
        } => single(tensor, OriginLayout::TransposedLast2),
        Source::FusedExperts { .. } | Source::Either(..) => None,
        Source::Experts(names) => {
            let mut parts = names.iter().map(|n| range(n));
            let (file, offset, mut bytes) = parts.next()??;
            for part in parts {
                let (f, o, b) = part?;
                if f != file || o != offset + bytes {
                    return None;
                }
                bytes += b;
            }
            Some(TensorOrigin {
                file,
                offset,
                bytes,
                layout: OriginLayout::TransposedLast2,
            })
        }
    }
}
