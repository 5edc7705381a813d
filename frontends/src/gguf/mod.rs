//! Importing GGUF files (llama.cpp's single-file format): `model.gguf` becomes
//! the same [`Model`](seam_ir::Model) and [`Weights`](seam_ir::Weights) the
//! Hugging Face importer makes from the checkpoint it was converted from, with
//! the weights' blocks kept as [`EncodedWeight`](seam_ir::EncodedWeight)s.
//!
//! Supported: `general.architecture` `llama` (Llama; Mixtral-style experts when
//! `llama.expert_count` is set), `qwen2moe` and `olmoe`, with tensors in F32,
//! F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K. The `{arch}.*` hyperparameters
//! are read into the Hugging Face importer's architecture description, and
//! GGUF tensor names (`blk.{l}.attn_q.weight`, fused `blk.{l}.ffn_gate_exps.weight`
//! `[E, out, in]`, …) are mapped to the Hugging Face names its graph asks for, so
//! the graph and the weight layouts are the Hugging Face importer's own.
//!
//! - Every `nn.Linear` and expert weight stored in a half or block format keeps
//!   its blocks (`Weights::encoding`); its f32 values are exactly what those
//!   decode to. A type without a Seam kernel (Q6_K) is decoded and re-encoded
//!   in the nearest format with one ([`GgmlType::kernel_format`](seam_core::quant::GgmlType::kernel_format));
//!   [`GgufImport::conversions`] lists what was converted. Embeddings and norms
//!   are decoded to f32.
//! - llama.cpp's converter permutes the rows of q and k (weights and biases) for
//!   the `llama` architecture, for ggml's pairwise RoPE; the import undoes it
//!   (a row permutation, on values and blocks alike), so the graph's half-split
//!   RoPE is right. `qwen2moe` and `olmoe` are stored unpermuted.
//! - No `output.weight`: the output projection is tied to the embedding.
//! - Scaled RoPE (`rope.scaling.type`, a `rope_freqs` tensor) and partial RoPE
//!   are refused by name.
//!
//! [`tokenizer`] converts a file's tokenizer metadata ([`GgufImport::vocab`],
//! [`GgufImport::metadata`]) into a Hugging Face `tokenizer.json`.
//!
//! The container reader bounds-checks everything: counts, string lengths,
//! array counts, dims and offsets are checked against the bytes present and
//! fixed limits before any allocation or loop ([`FormatError`]); sizes in the
//! metadata are at most 2^24, layers and experts at most 2^16, and the block
//! and expert counts must not exceed the tensors present.

mod arch;
mod container;
mod cursor;
mod error;
mod keys;
mod metadata;
mod names;
mod tensors;
pub mod tokenizer;
mod vocab;

use std::collections::BTreeSet;
use std::path::Path;

use seam_ir::WeightFormat;

use crate::hf::arch::MlpSpec;
use crate::hf::weights::{self, Source};
use crate::hf::{graph, model_name, ImportOptions, Imported, ProgressFn};

pub use container::{
    GgufFile, TensorInfo, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS, MAX_KEY_BYTES, MAX_METADATA_ENTRIES,
    MAX_NAME_BYTES, MAX_TENSORS,
};
pub use error::{FormatError, GgufError};
pub use metadata::{Metadata, Value, MAX_ARRAY_DEPTH, MAX_ARRAY_ELEMENTS, MAX_STRING_BYTES};
use seam_core::quant;
pub use tokenizer::GgufVocab;

use quant::GgmlType;

/// How many of a file's tensors have one type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TypeCount {
    /// The type.
    pub ty: GgmlType,
    /// Tensors of that type.
    pub tensors: usize,
}

/// Weights of a type without a Seam kernel, re-encoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    /// The type in the file.
    pub from: GgmlType,
    /// The format imported (f32 when the nearest kernel format's block does not fit).
    pub to: WeightFormat,
    /// How many tensors.
    pub tensors: usize,
}

/// An imported GGUF file.
#[derive(Clone, Debug)]
pub struct GgufImport {
    /// The model and its weights (no [`Imported::origins`]: none are recorded).
    pub imported: Imported,
    /// `general.name`, if the file gives one.
    pub name: Option<String>,
    /// Tensors per type, in the order the types first appear in the file.
    pub types: Vec<TypeCount>,
    /// The weights re-encoded because their type has no kernel.
    pub conversions: Vec<Conversion>,
    /// The tokenizer metadata, when the file has one (`tokenizer.ggml.model`),
    /// for [`tokenizer::tokenizer_json`].
    pub vocab: Option<GgufVocab>,
    /// `tokenizer.chat_template`, if present.
    pub chat_template: Option<String>,
    /// Every metadata entry.
    pub metadata: Metadata,
}

/// Whether `path` looks like a GGUF file: a file named `*.gguf`, or one that
/// starts with the GGUF magic.
pub fn is_gguf(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic == MAGIC)
}

/// The tokenizer metadata of the GGUF file `path` (`None` when it has none),
/// without importing its tensors.
pub fn read_vocab(path: &Path) -> Result<Option<GgufVocab>, GgufError> {
    let file = GgufFile::open(path)?;
    vocab::read(&keys::Keys::new(path, file.metadata(), "general"))
}

/// Imports the GGUF file `path`.
pub fn import(path: &Path, options: &ImportOptions) -> Result<GgufImport, GgufError> {
    import_with_progress(path, options, &mut |_, _| {})
}

/// [`import`], calling `progress(bytes_done, bytes_total)` as weights are converted.
pub fn import_with_progress(
    path: &Path,
    options: &ImportOptions,
    progress: &mut ProgressFn<'_>,
) -> Result<GgufImport, GgufError> {
    let file = GgufFile::open(path)?;
    let arch = arch::read(&file, options.max_tokens)?;
    let experts = arch
        .spec
        .mlps
        .iter()
        .filter_map(|m| match m {
            MlpSpec::Routed { experts, .. } => Some(*experts),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let tensors = file.tensors().iter().map(|t| (t.name.as_str(), experts));
    let store = tensors::GgufStore::new(&file, names::views(arch.family, arch.heads, tensors));
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let (model, sources) = graph::build(
        &arch.spec,
        &model_name(stem.as_deref().unwrap_or("model")),
        options.kv_cache,
        options.max_batch,
    )?;
    weights::check_present(&sources, &store)?;
    let weights = weights::load(&model, &sources, &store, progress)?;
    let keys = keys::Keys::new(path, file.metadata(), "general");
    let vocab = vocab::read(&keys)?;
    let chat_template = keys.opt_str("tokenizer.chat_template")?.map(str::to_string);
    Ok(GgufImport {
        conversions: conversions(&sources, &store),
        types: type_counts(&file),
        imported: Imported {
            family: arch.family,
            origins: vec![None; model.params.len()],
            model,
            weights,
        },
        name: arch.name,
        vocab,
        chat_template,
        metadata: file.metadata().clone(),
    })
}

/// Tensors per type, in the order types first appear.
fn type_counts(file: &GgufFile) -> Vec<TypeCount> {
    let mut out: Vec<TypeCount> = Vec::new();
    for t in file.tensors() {
        match out.iter_mut().find(|c| c.ty == t.ty) {
            Some(c) => c.tensors += 1,
            None => out.push(TypeCount {
                ty: t.ty,
                tensors: 1,
            }),
        }
    }
    out
}

/// The conversions made for the weights `sources` read with their blocks
/// (`nn.Linear` and expert weights), one entry per type and format.
fn conversions(sources: &[Source], store: &tensors::GgufStore<'_>) -> Vec<Conversion> {
    let mut read = BTreeSet::new();
    for source in sources {
        match source.resolve(store) {
            Source::Linear(name) => {
                read.insert(name.as_str());
            }
            Source::Experts(names) => read.extend(names.first().map(String::as_str)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut out: Vec<Conversion> = Vec::new();
    for t in read.into_iter().filter_map(|n| store.tensor_of(n)) {
        let Some(to) = tensors::conversion(t.ty, t.dims[0]) else {
            continue;
        };
        if !seen.insert(t.name.as_str()) {
            continue;
        }
        match out.iter_mut().find(|c| c.from == t.ty && c.to == to) {
            Some(c) => c.tensors += 1,
            None => out.push(Conversion {
                from: t.ty,
                to,
                tensors: 1,
            }),
        }
    }
    out
}
