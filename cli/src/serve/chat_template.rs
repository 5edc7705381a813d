//! Chat templates: the bundle's Hugging Face `chat_template` (Jinja),
//! rendered with minijinja as `transformers`' `apply_chat_template` does:
//! `messages`, `add_generation_prompt=true`, `bos_token`, `eos_token`, and
//! a `raise_exception(message)` function; Python's string and dict methods
//! (`.strip()`, `.items()`, …) come from minijinja-contrib's pycompat.

use minijinja::{Environment, ErrorKind};
use serde_json::{json, Value};

/// The template's name in its environment.
const NAME: &str = "chat";

/// A compiled chat template with the special tokens it is given.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token` and `eos_token` are the texts of the
    /// model's BOS and first EOS token (empty when unknown).
    pub fn new(source: String, bos_token: String, eos_token: String) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(NAME, source)
            .map_err(|e| format!("the bundle's chat template does not compile: {e:#}"))?;
        Ok(ChatTemplate {
            env,
            bos_token,
            eos_token,
        })
    }

    /// The prompt for `messages` (each `{"role", "content"}`), ending with
    /// the assistant's turn. A template's `raise_exception` (a conversation
    /// it refuses) and any other failure come back as the message.
    pub fn render(&self, messages: &[Value]) -> Result<String, String> {
        let template = self.env.get_template(NAME).map_err(|e| e.to_string())?;
        let context = json!({
            "messages": messages,
            "add_generation_prompt": true,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        });
        template.render(context).map_err(|e| match e.kind() {
            ErrorKind::InvalidOperation => e.detail().unwrap_or("refused").to_string(),
            _ => format!("the chat template failed: {e:#}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_transformers_and_raises() {
        let source = "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' and not loop.first %}\
{{ raise_exception('system must come first') }}{% endif %}<|{{ m.role }}|>{{ m.content.strip() }}{{ eos_token }}\
{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
        let t = ChatTemplate::new(source.into(), "<s>".into(), "</s>".into()).unwrap();
        let out = t
            .render(&[json!({"role": "user", "content": "  hi "})])
            .unwrap();
        assert_eq!(out, "<s><|user|>hi</s><|assistant|>");
        let err = t
            .render(&[
                json!({"role": "user", "content": "a"}),
                json!({"role": "system", "content": "b"}),
            ])
            .unwrap_err();
        assert_eq!(err, "system must come first");
        assert!(ChatTemplate::new("{% if %}".into(), String::new(), String::new()).is_err());
        // ChatML as SmolLM2 ships it, and Python string methods.
        let chatml = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}\
{{ '<|im_start|>system\\nYou are helpful.<|im_end|>\\n' }}{% endif %}\
{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}\
{% if messages[0].content.startswith('x') %}{{ raise_exception('no') }}{% endif %}";
        let t = ChatTemplate::new(chatml.into(), String::new(), "<|im_end|>".into()).unwrap();
        let out = t
            .render(&[json!({"role": "user", "content": "hi"})])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let refused = t.render(&[json!({"role": "user", "content": "xyz"})]);
        assert_eq!(refused.unwrap_err(), "no");
    }
}
