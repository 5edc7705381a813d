//! The HTTP routes: OpenAI's completions, chat completions and models, plus
//! health and metrics. Request bodies are parsed here (so every malformed
//! one gets an OpenAI error body) and turned into engine requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use seam_runtime::generate::Sampling;
use seam_runtime::serving::Request;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::super::tokenizer::TextTokenizer;
use super::chat_template::ChatTemplate;
use super::engine_thread::EngineHandle;
use super::errors::ApiError;
use super::job::{Job, Step};
use super::metrics::Metrics;
use super::openai::{
    ChatRequest, CompletionRequest, Prompt, SamplingFields, CHAT_FIELDS, COMPLETION_FIELDS,
    SAMPLING_FIELDS,
};
use super::stream::{self, Kind, Reply};
use super::text::TextTracker;

/// `max_tokens` of a completion that gives none (OpenAI's default).
const DEFAULT_COMPLETION_TOKENS: usize = 16;

/// What the server knows of its model.
pub struct ModelInfo {
    /// The name `/v1/models` lists and responses carry.
    pub name: String,
    /// The bundle's tokenizer.
    pub tokenizer: Arc<TextTokenizer>,
    /// The bundle's chat template, if it has one.
    pub chat_template: Option<ChatTemplate>,
    /// Ids that end a sequence.
    pub eos_ids: Vec<i32>,
    /// The most positions one sequence holds.
    pub max_seq_len: usize,
}

/// The state the routes share.
pub struct AppState {
    /// The model.
    pub model: ModelInfo,
    /// The engine thread.
    pub engine: EngineHandle,
    /// The server's counters.
    pub metrics: Metrics,
    /// One permit per request admitted and not yet finished.
    queue: Arc<Semaphore>,
    queue_size: usize,
    next_id: AtomicU64,
    started: u64,
}

impl AppState {
    /// The state for `model` served by `engine`, admitting at most
    /// `queue_size` requests at once.
    pub fn new(model: ModelInfo, engine: EngineHandle, queue_size: u32) -> AppState {
        let queue_size = queue_size as usize;
        AppState {
            model,
            engine,
            metrics: Metrics::default(),
            queue: Arc::new(Semaphore::new(queue_size)),
            queue_size,
            next_id: AtomicU64::new(1),
            started: unix_time(),
        }
    }

    /// Requests admitted and not yet finished.
    fn queued(&self) -> usize {
        self.queue_size - self.queue.available_permits()
    }
}

/// A request ready for the engine.
struct Prepared {
    prompt: Vec<i32>,
    max_new_tokens: usize,
    sampling: Sampling,
    stops: Vec<String>,
    stream: bool,
    include_usage: bool,
}

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}

async fn completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let answer = async {
        let request: CompletionRequest = parse(&body, &[COMPLETION_FIELDS, SAMPLING_FIELDS])?;
        log_caller(request.model.as_deref(), &request.sampling);
        let prompt = match request.prompt {
            Prompt::Text(text) if text.is_empty() => {
                return Err(ApiError::invalid("prompt", "the prompt is empty"))
            }
            Prompt::Text(text) => encode(&state, &text, true)?,
            Prompt::Ids(ids) => ids_in_vocab(&state, &ids)?,
        };
        let max = request.max_tokens;
        let prepared = prepare(
            &state,
            prompt,
            max,
            Some(DEFAULT_COMPLETION_TOKENS),
            &request.sampling,
        )?;
        start(&state, prepared, Kind::Completion).await
    };
    counted(&state, answer.await)
}

async fn chat_completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let answer = async {
        let request: ChatRequest = parse(&body, &[CHAT_FIELDS, SAMPLING_FIELDS])?;
        log_caller(request.model.as_deref(), &request.sampling);
        let template = state.model.chat_template.as_ref().ok_or_else(|| {
            ApiError::invalid(
                "messages",
                "the bundle has no chat template (compile from a checkpoint whose \
                 tokenizer_config.json has a chat_template, or use /v1/completions)",
            )
        })?;
        if request.messages.is_empty() {
            return Err(ApiError::invalid("messages", "`messages` is empty"));
        }
        let mut messages = Vec::with_capacity(request.messages.len());
        for m in &request.messages {
            m.check().map_err(|e| ApiError::invalid("messages", e))?;
            messages.push(m.for_template());
        }
        let text = template
            .render(&messages)
            .map_err(|e| ApiError::invalid("messages", e))?;
        let prompt = encode(&state, &text, false)?;
        let max = request.max_completion_tokens.or(request.max_tokens);
        let prepared = prepare(&state, prompt, max, None, &request.sampling)?;
        start(&state, prepared, Kind::Chat).await
    };
    counted(&state, answer.await)
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    let body = json!({"object": "list", "data": [{
        "id": state.model.name, "object": "model", "created": state.started, "owned_by": "seam",
        "max_model_len": state.model.max_seq_len,
    }]});
    counted(&state, Ok(Json(body).into_response()))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let s = state.engine.snapshot().stats;
    let body = json!({"status": "ok", "waiting": s.waiting, "running": s.running, "queued": state.queued()});
    counted(&state, Ok(Json(body).into_response()))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let page = state
        .metrics
        .render(&state.engine.snapshot(), state.queued());
    let response = ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page).into_response();
    counted(&state, Ok(response))
}

/// The response for `answer`, counted by status.
fn counted(state: &AppState, answer: Result<Response, ApiError>) -> Response {
    let response = answer.unwrap_or_else(|e| {
        tracing::info!(status = e.status().as_u16(), "request refused: {e}");
        e.into_response()
    });
    state.metrics.request(response.status().as_u16());
    response
}

/// Logs the model a request names (one is served, whatever it names) and its user.
fn log_caller(model: Option<&str>, fields: &SamplingFields) {
    tracing::debug!(model, user = fields.user.as_deref(), "request received");
}

/// Parses a JSON body whose top-level fields must all be in `fields`.
fn parse<T: DeserializeOwned>(body: &[u8], fields: &[&[&str]]) -> Result<T, ApiError> {
    let invalid = |message: String| ApiError::Invalid {
        message,
        param: None,
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = &value else {
        return Err(invalid("the body must be a JSON object".into()));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !fields.iter().any(|f| f.contains(&k.as_str())))
    {
        return Err(ApiError::invalid(
            unknown,
            format!("unknown field `{unknown}`"),
        ));
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("invalid request: {e}")))
}

/// Encodes `text` with the bundle's tokenizer.
fn encode(state: &AppState, text: &str, add_special: bool) -> Result<Vec<i32>, ApiError> {
    state
        .model
        .tokenizer
        .encode_with(text, add_special)
        .map_err(|e| ApiError::invalid("prompt", e.to_string()))
}

/// Token ids given by the client, each checked against the vocabulary.
fn ids_in_vocab(state: &AppState, ids: &[i64]) -> Result<Vec<i32>, ApiError> {
    let vocab = state.model.tokenizer.vocab_size();
    ids.iter()
        .map(|&id| {
            i32::try_from(id)
                .ok()
                .filter(|&x| x >= 0 && (x as usize) < vocab)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "prompt",
                        format!("token id {id} is outside the vocabulary 0..{vocab}"),
                    )
                })
        })
        .collect()
}

/// Checks the request against the model: `n`, the prompt's and
/// completion's lengths, the sampling settings.
fn prepare(
    state: &AppState,
    prompt: Vec<i32>,
    max_tokens: Option<u64>,
    default_max: Option<usize>,
    fields: &SamplingFields,
) -> Result<Prepared, ApiError> {
    if fields.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("n", "only n=1 is supported"));
    }
    let context = state.model.max_seq_len;
    if prompt.is_empty() {
        return Err(ApiError::invalid("prompt", "the prompt is empty"));
    }
    if prompt.len() > context {
        return Err(ApiError::invalid(
            "prompt",
            format!(
                "the prompt is {} tokens; the model's context holds {context}",
                prompt.len()
            ),
        ));
    }
    // The last generated token is never fed back, so it needs no position.
    let room = context - prompt.len() + 1;
    let max_new_tokens = match max_tokens {
        Some(0) => return Err(ApiError::invalid("max_tokens", "max_tokens must be at least 1")),
        Some(n) if n > room as u64 => {
            return Err(ApiError::invalid(
                "max_tokens",
                format!(
                    "max_tokens {n} does not fit: the prompt is {} tokens and the context holds {context}, so at most {room} can be generated",
                    prompt.len()
                ),
            ))
        }
        Some(n) => n as usize,
        None => default_max.map_or(room, |d| d.min(room)),
    };
    let sampling = match (fields.temperature, fields.top_p) {
        (Some(0.0), _) => Sampling::Greedy,
        (temperature, top_p) => Sampling::TopP {
            temperature: temperature.unwrap_or(1.0),
            top_p: top_p.unwrap_or(1.0),
            seed: fields
                .seed
                .unwrap_or_else(|| state.next_id.load(Ordering::Relaxed)),
        },
    };
    sampling
        .validate()
        .map_err(|e| ApiError::invalid("temperature", e.to_string()))?;
    Ok(Prepared {
        prompt,
        max_new_tokens,
        sampling,
        stops: fields.stop_strings(),
        stream: fields.stream.unwrap_or(false),
        include_usage: fields
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage),
    })
}

/// Admits `prepared` (or answers 429), submits it and answers: a whole
/// completion, or a stream once its first step is known (so a request the
/// engine refuses still gets an error status).
async fn start(
    state: &Arc<AppState>,
    prepared: Prepared,
    kind: Kind,
) -> Result<Response, ApiError> {
    let place = Arc::clone(&state.queue)
        .try_acquire_owned()
        .map_err(|_| ApiError::QueueFull(state.queue_size))?;
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let prompt_tokens = prepared.prompt.len();
    tracing::info!(
        id,
        prompt_tokens,
        max_new_tokens = prepared.max_new_tokens,
        stream = prepared.stream,
        "request"
    );
    let updates = state.engine.submit(
        id,
        Request {
            prompt: prepared.prompt,
            max_new_tokens: prepared.max_new_tokens,
            sampling: prepared.sampling,
            stop_ids: state.model.eos_ids.clone(),
        },
    );
    let tracker = TextTracker::new(Arc::clone(&state.model.tokenizer), prepared.stops);
    let mut job = Job::new(
        Arc::clone(state),
        id,
        updates,
        tracker,
        prompt_tokens,
        place,
    );
    let reply = Reply {
        kind,
        id: format!("{}-{id}", kind.id_prefix()),
        created: unix_time(),
        model: state.model.name.clone(),
    };
    let first = job.next().await.unwrap_or(Ok(Step::End("stop")))?;
    if prepared.stream {
        return Ok(stream::sse(reply, job, first, prepared.include_usage));
    }
    let mut text = String::new();
    let mut step = first;
    loop {
        match step {
            Step::Text(t) => text.push_str(&t),
            Step::End(reason) => {
                let usage = stream::usage(job.prompt_tokens, job.completion_tokens);
                return Ok(
                    (StatusCode::OK, Json(reply.whole(&text, reason, usage))).into_response()
                );
            }
        }
        step = job.next().await.unwrap_or(Ok(Step::End("stop")))?;
    }
}

/// Seconds since the Unix epoch.
fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
