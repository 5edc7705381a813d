//! The generation metadata `seam compile` stores in a bundle
//! ([`GenerationMeta`]): from a Hugging Face checkpoint folder's
//! `generation_config.json` and `tokenizer_config.json`, or from a GGUF
//! file's `tokenizer.*` keys.

use std::path::Path;

use seam_bundle::GenerationMeta;
use serde_json::Value;

use super::model_source::ModelSource;
use super::tokenizer::TextTokenizer;
use super::CliError;

/// The largest JSON config file read (real ones are well under 1 MiB).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The metadata of `source` (read from `path`), with token strings resolved
/// by `tokenizer`; `None` when the source gives none.
pub fn read(
    path: &Path,
    source: &ModelSource,
    tokenizer: Option<&TextTokenizer>,
) -> Result<Option<GenerationMeta>, CliError> {
    let meta = match source {
        ModelSource::Text(_) => return Ok(None),
        ModelSource::Checkpoint(_) => from_checkpoint(path, tokenizer)?,
        ModelSource::Gguf(g) => {
            let id = |key: &str| {
                g.metadata
                    .get(key)
                    .and_then(|v| v.as_u64())
                    .and_then(|v| u32::try_from(v).ok())
            };
            GenerationMeta {
                model_name: g.name.clone(),
                eos_token_ids: id("tokenizer.ggml.eos_token_id").into_iter().collect(),
                bos_token_id: id("tokenizer.ggml.bos_token_id"),
                chat_template: g.chat_template.clone(),
            }
        }
    };
    meta.validate()
        .map_err(|e| CliError::Input(format!("`{}`: {e}", path.display())))?;
    Ok((!meta.is_empty()).then_some(meta))
}

/// Reads a checkpoint folder's `generation_config.json` (`eos_token_id`,
/// `bos_token_id`; else `config.json`'s) and `tokenizer_config.json`
/// (`chat_template`, and `eos_token`/`bos_token` where neither gives ids).
fn from_checkpoint(
    dir: &Path,
    tokenizer: Option<&TextTokenizer>,
) -> Result<GenerationMeta, CliError> {
    let generation = read_json(&dir.join("generation_config.json"))?;
    let model_config = read_json(&dir.join("config.json"))?;
    let config = read_json(&dir.join("tokenizer_config.json"))?;
    let field = |json: &Option<Value>, key: &str| {
        json.as_ref()
            .and_then(|j| j.get(key))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let named_id = |key: &str| -> Option<u32> {
        let token = field(&config, key)?;
        // A plain string, or an AddedToken object `{"content": "</s>", …}`.
        let text = token
            .as_str()
            .or_else(|| token.get("content").and_then(Value::as_str))?;
        tokenizer?.token_id(text)
    };
    // Older checkpoints give the ids in config.json only.
    let id_field = |key: &str| field(&generation, key).or_else(|| field(&model_config, key));
    let mut eos_token_ids = match id_field("eos_token_id") {
        Some(v) => token_ids(&v, "eos_token_id")?,
        None => Vec::new(),
    };
    if eos_token_ids.is_empty() {
        eos_token_ids.extend(named_id("eos_token"));
    }
    let bos_token_id = match id_field("bos_token_id") {
        Some(v) => token_ids(&v, "bos_token_id")?.first().copied(),
        None => named_id("bos_token"),
    };
    let chat_template = field(&config, "chat_template")
        .map(|t| chat_template(&t))
        .transpose()?
        .flatten();
    Ok(GenerationMeta {
        model_name: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        eos_token_ids,
        bos_token_id,
        chat_template,
    })
}

/// A JSON file, or `None` if it does not exist.
fn read_json(path: &Path) -> Result<Option<Value>, CliError> {
    let bad = |reason: String| CliError::Input(format!("`{}`: {reason}", path.display()));
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(bad(format!(
            "{} bytes is over the {MAX_CONFIG_BYTES}-byte limit",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| bad(format!("not valid JSON: {e}")))
}

/// Token ids from an id or a list of ids.
fn token_ids(v: &Value, key: &str) -> Result<Vec<u32>, CliError> {
    let one = |x: &Value| {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| CliError::Input(format!("`{key}` holds {x}, not a token id")))
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// `chat_template`: a string, or a list of `{"name", "template"}` of which
/// the one named `default` is taken.
fn chat_template(v: &Value) -> Result<Option<String>, CliError> {
    match v {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Array(items) => Ok(items
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string)),
        other => Err(CliError::Input(format!(
            "`chat_template` is {other}, neither a string nor a list of named templates"
        ))),
    }
}
