//! The tokenizer metadata of a GGUF file (`tokenizer.ggml.*`,
//! `tokenizer.chat_template`), typed, for converting into a Hugging Face
//! `tokenizer.json`.

use super::error::GgufError;
use super::keys::Keys;
use super::metadata::Value;

/// A GGUF file's tokenizer, as its metadata states it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model` (`llama` for SentencePiece, `gpt2` for byte-level BPE, …).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer's name, if given.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: every token's text, by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.merges`: BPE merges (`"a b"`), empty when absent.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.token_type`: each token's type (1 normal, 2 unknown,
    /// 3 control, 4 user-defined, 5 unused, 6 byte), empty when absent.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.scores`: SentencePiece scores, empty when absent.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_token_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos_token: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

impl GgufVocab {
    /// The tokenizer of a file's metadata, or `None` when it has no
    /// `tokenizer.ggml.model`; a key of the wrong type is an error naming it.
    pub(crate) fn read(k: &Keys<'_>) -> Result<Option<GgufVocab>, GgufError> {
        let Some(model) = k.opt_str("tokenizer.ggml.model")? else {
            return Ok(None);
        };
        let id = |key: &str| -> Result<Option<u32>, GgufError> {
            k.opt_u64(key)?
                .map(|v| {
                    u32::try_from(v).map_err(|_| k.error(key, format!("{v} is not a token id")))
                })
                .transpose()
        };
        Ok(Some(GgufVocab {
            model: model.to_string(),
            pre: k.opt_str("tokenizer.ggml.pre")?.map(str::to_string),
            tokens: list(k, "tokenizer.ggml.tokens", |v| {
                v.as_str().map(str::to_string)
            })?,
            merges: list(k, "tokenizer.ggml.merges", |v| {
                v.as_str().map(str::to_string)
            })?,
            token_types: list(k, "tokenizer.ggml.token_type", |v| {
                v.as_i64().and_then(|t| i32::try_from(t).ok())
            })?,
            scores: list(k, "tokenizer.ggml.scores", |v| v.as_f64().map(|s| s as f32))?,
            bos_token_id: id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: id("tokenizer.ggml.eos_token_id")?,
            add_bos_token: k.opt_bool("tokenizer.ggml.add_bos_token")?,
            chat_template: k.opt_str("tokenizer.chat_template")?.map(str::to_string),
        }))
    }
}

/// The array `key` with each element converted by `item`; empty when absent.
fn list<T>(
    k: &Keys<'_>,
    key: &str,
    item: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, GgufError> {
    let Some(value) = k.value(key) else {
        return Ok(Vec::new());
    };
    let items = value.as_array().ok_or_else(|| {
        k.error(
            key,
            format!("must be an array, found a {}", value.type_name()),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            item(v).ok_or_else(|| {
                k.error(
                    key,
                    format!(
                        "element {i} is a {} of the wrong type or range",
                        v.type_name()
                    ),
                )
            })
        })
        .collect()
}
