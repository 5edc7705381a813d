//! The optional generation-metadata section: what a server or `seam generate`
//! needs besides the tokenizer to talk to a model — its end-of-sequence ids,
//! its beginning-of-sequence id, its chat template and its name — as JSON.
//!
//! The section is read from untrusted files, so [`GenerationMeta::from_json`]
//! bounds every field and refuses unknown ones.

use serde::{Deserialize, Serialize};

use crate::BundleError;

/// The largest generation section read (1 MiB; real ones are a few KiB).
pub const MAX_GENERATION_BYTES: usize = 1 << 20;
/// The most end-of-sequence ids kept.
pub const MAX_EOS_IDS: usize = 64;
/// The longest chat template kept (512 KiB; real ones are a few KiB).
pub const MAX_CHAT_TEMPLATE_BYTES: usize = 512 << 10;
/// The longest model name kept.
pub const MAX_MODEL_NAME_BYTES: usize = 256;

/// A model's generation metadata, from its checkpoint's
/// `generation_config.json` and `tokenizer_config.json` or its GGUF metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationMeta {
    /// The model's name, if its source gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Ids that end a generated sequence (empty: none known).
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    /// The id a sequence starts with, if the model has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// The Jinja chat template (Hugging Face's `chat_template`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
}

impl GenerationMeta {
    /// Whether nothing is known (no section needs writing).
    pub fn is_empty(&self) -> bool {
        *self == GenerationMeta::default()
    }

    /// Checks every bound: the counts and lengths above.
    pub fn validate(&self) -> Result<(), BundleError> {
        let invalid = |m: String| Err(BundleError::GenerationInvalid(m));
        if self.eos_token_ids.len() > MAX_EOS_IDS {
            return invalid(format!(
                "{} eos token ids (at most {MAX_EOS_IDS})",
                self.eos_token_ids.len()
            ));
        }
        if let Some(t) = self.chat_template.as_ref() {
            if t.len() > MAX_CHAT_TEMPLATE_BYTES {
                return invalid(format!(
                    "the chat template is {} bytes (at most {MAX_CHAT_TEMPLATE_BYTES})",
                    t.len()
                ));
            }
        }
        if let Some(n) = self.model_name.as_ref() {
            if n.len() > MAX_MODEL_NAME_BYTES {
                return invalid(format!(
                    "the model name is {} bytes (at most {MAX_MODEL_NAME_BYTES})",
                    n.len()
                ));
            }
        }
        Ok(())
    }

    /// Decodes and validates a section's bytes.
    pub fn from_json(bytes: &[u8]) -> Result<GenerationMeta, BundleError> {
        if bytes.len() > MAX_GENERATION_BYTES {
            return Err(BundleError::GenerationInvalid(format!(
                "the section is {} bytes (at most {MAX_GENERATION_BYTES})",
                bytes.len()
            )));
        }
        let meta: GenerationMeta = serde_json::from_slice(bytes)
            .map_err(|e| BundleError::GenerationInvalid(e.to_string()))?;
        meta.validate()?;
        Ok(meta)
    }

    /// The section's bytes, after validating.
    pub fn to_json(&self) -> Result<Vec<u8>, BundleError> {
        self.validate()?;
        serde_json::to_vec(self).map_err(|e| BundleError::GenerationInvalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_hostile_sections() {
        let meta = GenerationMeta {
            model_name: Some("tiny".into()),
            eos_token_ids: vec![2, 7],
            bos_token_id: Some(1),
            chat_template: Some("{{ messages[0].content }}".into()),
        };
        assert_eq!(
            GenerationMeta::from_json(&meta.to_json().unwrap()).unwrap(),
            meta
        );
        for bad in [
            &br#"{"eos_token_ids": [-1]}"#[..],
            br#"{"eos_token_ids": "2"}"#,
            br#"{"chat_template": 3}"#,
            br#"{"surprise": 1}"#,
            br#"[1, 2]"#,
            b"{",
        ] {
            let e = GenerationMeta::from_json(bad).unwrap_err();
            assert!(matches!(e, BundleError::GenerationInvalid(_)), "{e}");
        }
        let many = format!("{{\"eos_token_ids\": [{}]}}", vec!["1"; 65].join(","));
        assert!(GenerationMeta::from_json(many.as_bytes()).is_err());
        let long = GenerationMeta {
            chat_template: Some("x".repeat(MAX_CHAT_TEMPLATE_BYTES + 1)),
            ..GenerationMeta::default()
        };
        assert!(long.to_json().is_err());
        assert!(GenerationMeta::from_json(&vec![b' '; MAX_GENERATION_BYTES + 1]).is_err());
    }
}
