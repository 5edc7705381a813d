//! Response bodies in OpenAI's formats: a whole completion, or a stream of
//! server-sent chunks (`text_completion` or `chat.completion.chunk`) ending
//! with `data: [DONE]`. A failure mid-stream is sent as an `error` event.

use std::convert::Infallible;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::{json, Value};

use super::job::{Job, Step};

/// Which endpoint answers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `/v1/completions`.
    Completion,
    /// `/v1/chat/completions`.
    Chat,
}

impl Kind {
    /// The prefix of response ids.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Kind::Completion => "cmpl",
            Kind::Chat => "chatcmpl",
        }
    }
}

/// What every body of one response carries.
pub struct Reply {
    /// The endpoint.
    pub kind: Kind,
    /// The response id.
    pub id: String,
    /// When it was created (Unix seconds).
    pub created: u64,
    /// The model's name.
    pub model: String,
}

/// OpenAI's `usage` object.
pub fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

impl Reply {
    /// The non-streaming body.
    pub fn whole(&self, text: &str, finish_reason: &str, usage: Value) -> Value {
        let choice = match self.kind {
            Kind::Completion => {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason})
            }
            Kind::Chat => json!({
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": finish_reason,
            }),
        };
        self.body(
            match self.kind {
                Kind::Completion => "text_completion",
                Kind::Chat => "chat.completion",
            },
            vec![choice],
            Some(usage),
        )
    }

    /// One streamed chunk: `text` (none: the chat role chunk), and the
    /// finish reason on the last.
    fn chunk(&self, text: Option<&str>, finish_reason: Option<&str>) -> Value {
        let choice = match self.kind {
            Kind::Completion => json!({
                "index": 0, "text": text.unwrap_or_default(), "logprobs": null,
                "finish_reason": finish_reason,
            }),
            Kind::Chat => {
                let delta = match (text, finish_reason) {
                    (_, Some(_)) => json!({}),
                    (None, None) => json!({"role": "assistant", "content": ""}),
                    (Some(t), None) => json!({"content": t}),
                };
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason})
            }
        };
        self.body(self.chunk_object(), vec![choice], None)
    }

    fn chunk_object(&self) -> &'static str {
        match self.kind {
            Kind::Completion => "text_completion",
            Kind::Chat => "chat.completion.chunk",
        }
    }

    fn body(&self, object: &str, choices: Vec<Value>, usage: Option<Value>) -> Value {
        let mut body = json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model,
            "choices": choices,
        });
        if let Some(usage) = usage {
            body["usage"] = usage;
        }
        body
    }
}

/// Where a stream is.
enum Phase {
    /// The chat role chunk is due.
    Role(Step),
    /// `Step` (already received) is due.
    Step(Step),
    /// Reading the job.
    Running,
    /// The usage chunk is due (with `stream_options.include_usage`).
    Usage,
    /// `[DONE]` is due.
    Done,
    /// Nothing more.
    Over,
}

/// The streaming response: the job's steps as chunks, starting with
/// `first` (already received). Dropping the stream (the client left) drops
/// the job, which cancels its sequence.
pub fn sse(reply: Reply, job: Job, first: Step, include_usage: bool) -> Response {
    let phase = match reply.kind {
        Kind::Chat => Phase::Role(first),
        Kind::Completion => Phase::Step(first),
    };
    Sse::new(events(reply, job, phase, include_usage)).into_response()
}

fn events(
    reply: Reply,
    job: Job,
    phase: Phase,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = (reply, job, phase);
    stream::unfold(state, move |(reply, mut job, phase)| async move {
        let data = |v: Value| Event::default().data(v.to_string());
        let (event, next) = match phase {
            Phase::Over => return None,
            Phase::Done => (Event::default().data("[DONE]"), Phase::Over),
            Phase::Usage => {
                let mut body = reply.body(reply.chunk_object(), vec![], None);
                body["usage"] = usage(job.prompt_tokens, job.completion_tokens);
                (data(body), Phase::Done)
            }
            Phase::Role(first) => (data(reply.chunk(None, None)), Phase::Step(first)),
            Phase::Step(step) => step_event(&reply, step, include_usage),
            Phase::Running => loop {
                match job.next().await {
                    // Nothing new to show yet (a held-back stop-string prefix).
                    Some(Ok(Step::Text(t))) if t.is_empty() => continue,
                    Some(Ok(step)) => break step_event(&reply, step, include_usage),
                    Some(Err(e)) => {
                        tracing::warn!(id = job.id(), "stream failed: {e}");
                        break (data(e.body()), Phase::Done);
                    }
                    None => break (Event::default().data("[DONE]"), Phase::Over),
                }
            },
        };
        Some((Ok(event), (reply, job, next)))
    })
}

/// The chunk for `step`, and what follows it.
fn step_event(reply: &Reply, step: Step, include_usage: bool) -> (Event, Phase) {
    let data = |v: Value| Event::default().data(v.to_string());
    match step {
        Step::Text(t) => (data(reply.chunk(Some(&t), None)), Phase::Running),
        Step::End(reason) => {
            let next = if include_usage {
                Phase::Usage
            } else {
                Phase::Done
            };
            (data(reply.chunk(None, Some(reason))), next)
        }
    }
}
