//! Text in and out of `seam generate`: a Hugging Face tokenizer (`tokenizer.json`),
//! found beside a checkpoint (and embedded in the bundle by `seam compile`) or
//! given with `--tokenizer`. The runtime never sees text: only this module
//! links the `tokenizers` crate.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use super::CliError;

/// The name of a checkpoint folder's tokenizer file.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The `tokenizer.json` beside a checkpoint folder's `config.json`, if the
/// model is such a folder and has one.
pub fn beside_checkpoint(model: &Path) -> Option<PathBuf> {
    let path = model.join(TOKENIZER_FILE);
    (model.is_dir() && path.is_file()).then_some(path)
}

/// A parsed tokenizer, and where it came from for error messages.
pub struct TextTokenizer {
    inner: Tokenizer,
    origin: String,
}

impl TextTokenizer {
    /// Parses the bytes of a `tokenizer.json`; `origin` names them in errors
    /// (a file, or the bundle that embeds them).
    pub fn parse(bytes: &[u8], origin: String) -> Result<Self, CliError> {
        match Tokenizer::from_bytes(bytes) {
            Ok(inner) => Ok(TextTokenizer { inner, origin }),
            Err(e) => Err(CliError::Tokenizer {
                origin,
                reason: format!("not a valid tokenizer.json: {e}"),
            }),
        }
    }

    /// Reads and parses a `tokenizer.json` file; returns the bytes too, to embed.
    pub fn read(path: &Path) -> Result<(Self, Vec<u8>), CliError> {
        let origin = format!("`{}`", path.display());
        let bytes = std::fs::read(path).map_err(|e| CliError::Tokenizer {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        Ok((Self::parse(&bytes, origin)?, bytes))
    }

    /// Where the tokenizer came from, as shown to the user.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The token ids of `text`, with the special tokens the tokenizer's
    /// post-processor adds (as `transformers`' `tokenizer(text)` does by default).
    pub fn encode(&self, text: &str) -> Result<Vec<i32>, CliError> {
        self.encode_with(text, true)
    }

    /// The token ids of `text`; the post-processor's special tokens only
    /// with `add_special` (a rendered chat template holds its own, so
    /// `transformers` encodes it without them).
    pub fn encode_with(&self, text: &str, add_special: bool) -> Result<Vec<i32>, CliError> {
        let encoding = self
            .inner
            .encode(text, add_special)
            .map_err(|e| self.error(format!("cannot encode the prompt: {e}")))?;
        encoding
            .get_ids()
            .iter()
            .map(|&id| {
                i32::try_from(id).map_err(|_| self.error(format!("token id {id} exceeds i32")))
            })
            .collect()
    }

    /// The text of `ids`, special tokens skipped (as `transformers`'
    /// `decode(ids, skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[i32]) -> Result<String, CliError> {
        let ids = ids
            .iter()
            .map(|&id| u32::try_from(id).map_err(|_| self.error(format!("{id} is not a token id"))))
            .collect::<Result<Vec<u32>, _>>()?;
        self.inner
            .decode(&ids, true)
            .map_err(|e| self.error(format!("cannot decode the generated ids: {e}")))
    }

    /// The id of token `text` (a special token such as `</s>`), if it has one.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.inner.token_to_id(text)
    }

    /// The text of token `id`, if the vocabulary has it.
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The vocabulary's size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn error(&self, reason: String) -> CliError {
        CliError::Tokenizer {
            origin: self.origin.clone(),
            reason,
        }
    }
}
