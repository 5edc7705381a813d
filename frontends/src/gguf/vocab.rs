//! Reading a GGUF file's tokenizer metadata (`tokenizer.ggml.*`) into the
//! [`GgufVocab`] the tokenizer conversion takes, with errors naming the key.

use super::error::GgufError;
use super::keys::Keys;
use super::metadata::Value;
use super::tokenizer::GgufVocab;

/// The tokenizer of a file's metadata, or `None` when it has no
/// `tokenizer.ggml.model`; a key of the wrong type is an error naming it.
pub(crate) fn read(k: &Keys<'_>) -> Result<Option<GgufVocab>, GgufError> {
    let Some(model) = k.opt_str("tokenizer.ggml.model")? else {
        return Ok(None);
    };
    let id = |key: &str| -> Result<Option<u32>, GgufError> {
        k.opt_u64(key)?
            .map(|v| u32::try_from(v).map_err(|_| k.error(key, format!("{v} is not a token id"))))
            .transpose()
    };
    let string = |v: &Value| v.as_str().map(str::to_string);
    Ok(Some(GgufVocab {
        model: model.to_string(),
        pre: k.opt_str("tokenizer.ggml.pre")?.map(str::to_string),
        tokens: list(k, "tokenizer.ggml.tokens", string)?,
        token_types: list(k, "tokenizer.ggml.token_type", |v| {
            v.as_i64().and_then(|t| i32::try_from(t).ok())
        })?,
        merges: list(k, "tokenizer.ggml.merges", string)?,
        scores: list(k, "tokenizer.ggml.scores", |v| v.as_f64().map(|s| s as f32))?,
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        unk: id("tokenizer.ggml.unknown_token_id")?,
        pad: id("tokenizer.ggml.padding_token_id")?,
        add_bos: k.opt_bool("tokenizer.ggml.add_bos_token")?,
        add_eos: k.opt_bool("tokenizer.ggml.add_eos_token")?,
        add_space_prefix: k.opt_bool("tokenizer.ggml.add_space_prefix")?,
    }))
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
