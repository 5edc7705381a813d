//! The OpenAI request bodies this server accepts. Unknown fields are
//! refused (400), so a typo never silently changes a generation; the fields
//! the official clients send for plain calls are all here.

use serde::Deserialize;

/// A prompt: text, or token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// Text, encoded with the bundle's tokenizer.
    Text(String),
    /// Token ids.
    Ids(Vec<i64>),
}

/// `stop`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Send a last chunk with the usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// The top-level fields of a completions request; any other is refused.
pub const COMPLETION_FIELDS: &[&str] = &["model", "prompt", "max_tokens"];
/// The top-level fields of a chat request (besides [`SAMPLING_FIELDS`]).
pub const CHAT_FIELDS: &[&str] = &["model", "messages", "max_tokens", "max_completion_tokens"];
/// The fields [`SamplingFields`] takes.
pub const SAMPLING_FIELDS: &[&str] = &[
    "temperature",
    "top_p",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "n",
    "user",
];

/// `POST /v1/completions` (fields checked against [`COMPLETION_FIELDS`]
/// and [`SAMPLING_FIELDS`] first: serde cannot refuse unknown fields next
/// to a flattened struct).
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// The model asked for (one is served; echoed as the served name).
    pub model: Option<String>,
    /// The prompt.
    pub prompt: Prompt,
    /// The most tokens to generate (default 16).
    pub max_tokens: Option<u64>,
    /// The sampling settings.
    #[serde(flatten)]
    pub sampling: SamplingFields,
}

/// `POST /v1/chat/completions` (fields checked against [`CHAT_FIELDS`] and
/// [`SAMPLING_FIELDS`] first).
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// The model asked for (one is served; echoed as the served name).
    pub model: Option<String>,
    /// The conversation, rendered with the bundle's chat template.
    pub messages: Vec<Message>,
    /// The most tokens to generate (default: as many as the context holds).
    pub max_tokens: Option<u64>,
    /// The newer name of `max_tokens`.
    pub max_completion_tokens: Option<u64>,
    /// The sampling settings.
    #[serde(flatten)]
    pub sampling: SamplingFields,
}

/// The fields both endpoints share: how tokens are picked, when to stop,
/// whether to stream.
#[derive(Debug, Default, Deserialize)]
pub struct SamplingFields {
    /// Sampling temperature; 0 is greedy (default 1).
    pub temperature: Option<f32>,
    /// Nucleus sampling mass in (0, 1] (default 1).
    pub top_p: Option<f32>,
    /// The sampler's seed.
    pub seed: Option<u64>,
    /// Strings that end the completion (not included in it).
    pub stop: Option<Stop>,
    /// Stream server-sent events.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Completions per prompt: only 1.
    pub n: Option<u32>,
    /// The end user (accepted, logged).
    pub user: Option<String>,
}

impl Message {
    /// The message as a chat template sees it: `role`, `content` as one
    /// string, and `name` if given.
    pub fn for_template(&self) -> serde_json::Value {
        let content = match &self.content {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => parts.iter().map(|p| p.text.as_str()).collect(),
        };
        let mut m = serde_json::json!({"role": self.role, "content": content});
        if let Some(name) = &self.name {
            m["name"] = name.clone().into();
        }
        m
    }

    /// Refuses content parts other than text.
    pub fn check(&self) -> Result<(), String> {
        match &self.content {
            Content::Parts(parts) => match parts.iter().find(|p| p.kind != "text") {
                Some(p) => Err(format!(
                    "content parts of type `{}` are not supported (text only)",
                    p.kind
                )),
                None => Ok(()),
            },
            Content::Text(_) => Ok(()),
        }
    }
}

impl SamplingFields {
    /// The stop strings (empty ones dropped).
    pub fn stop_strings(&self) -> Vec<String> {
        let all = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        all.into_iter().filter(|s| !s.is_empty()).collect()
    }
}

/// One chat message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// The text, or a list of parts whose `text` parts are joined.
    pub content: Content,
    /// The author's name.
    pub name: Option<String>,
}

/// A message's content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts (`{"type": "text", "text": …}`).
    Parts(Vec<Part>),
}

/// One content part; only text parts are supported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Must be `text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    pub text: String,
}
