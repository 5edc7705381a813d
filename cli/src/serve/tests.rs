//! The router with a fake engine ([`super::testing::FakeBackend`]):
//! completions, chat, the streaming chunk format, every refusal, the
//! bounded queue and cancellation when a client leaves.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::chat_template::ChatTemplate;
use super::engine_thread;
use super::routes::{router, AppState, ModelInfo};
use super::testing::{FakeBackend, FAIL};
use crate::tokenizer::TextTokenizer;

const TOKENIZER: &[u8] = include_bytes!("../../../tests/fixtures/hf/llama/tokenizer.json");
/// Long enough that a stream of most of it (a millisecond a token) is still
/// running when its client leaves.
const CONTEXT: usize = 4096;
const TEMPLATE: &str = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}\
{% if add_generation_prompt %}<|assistant|>{% endif %}";

struct App {
    router: Router,
    cancelled: Arc<Mutex<Vec<u64>>>,
    tokenizer: Arc<TextTokenizer>,
}

fn app(queue: u32, template: Option<&str>) -> App {
    let tokenizer = Arc::new(TextTokenizer::parse(TOKENIZER, "test".into()).unwrap());
    let fake = FakeBackend::new(CONTEXT);
    let cancelled = fake.cancelled();
    let (engine, _thread) = engine_thread::spawn(fake, None).unwrap();
    let model = ModelInfo {
        name: "tiny".into(),
        tokenizer: Arc::clone(&tokenizer),
        chat_template: template
            .map(|t| ChatTemplate::new(t.into(), "<s>".into(), "</s>".into()).unwrap()),
        eos_ids: vec![],
        max_seq_len: CONTEXT,
    };
    App {
        router: router(Arc::new(AppState::new(model, engine, queue))),
        cancelled,
        tokenizer,
    }
}

impl App {
    async fn post(&self, path: &str, body: &str) -> Response {
        let request = Request::post(path)
            .body(Body::from(body.to_string()))
            .unwrap();
        self.router.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (status, text(response).await)
    }

    fn decode(&self, ids: &[i32]) -> String {
        self.tokenizer.decode(ids).unwrap()
    }
}

async fn text(response: Response) -> String {
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, serde_json::from_str(&text(response).await).unwrap())
}

/// The JSON of each `data:` line of a stream, and whether it ended with `[DONE]`.
fn chunks(body: &str) -> (Vec<Value>, bool) {
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    let done = data.last() == Some(&"[DONE]");
    let values = data
        .iter()
        .filter(|d| **d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (values, done)
}

#[tokio::test]
async fn a_completion_counts_up_from_the_prompt() {
    let app = app(8, None);
    let r = app
        .post(
            "/v1/completions",
            r#"{"model": "x", "prompt": [1, 5], "max_tokens": 3, "temperature": 0}"#,
        )
        .await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "tiny");
    assert_eq!(body["choices"][0]["text"], app.decode(&[6, 7, 8]));
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
    );
    // A text prompt is encoded with the tokenizer (its BOS included).
    let r = app
        .post(
            "/v1/completions",
            r#"{"prompt": "tiny experts", "max_tokens": 2, "stop": []}"#,
        )
        .await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let prompt = app.tokenizer.encode("tiny experts").unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], prompt.len());
}

#[tokio::test]
async fn a_chat_completion_renders_the_template() {
    let app = app(8, Some(TEMPLATE));
    let r = app
        .post(
            "/v1/chat/completions",
            r#"{"model": "x", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 2}"#,
        )
        .await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    let prompt = app
        .tokenizer
        .encode_with("<|user|>hi<|assistant|>", false)
        .unwrap();
    let last = *prompt.last().unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        app.decode(&[last + 1, last + 2])
    );
    assert_eq!(body["usage"]["prompt_tokens"], prompt.len());
}

#[tokio::test]
async fn streams_are_openai_chunks_ending_with_done() {
    let app = app(8, Some(TEMPLATE));
    let r = app
        .post("/v1/completions", r#"{"prompt": [1, 5], "max_tokens": 3, "stream": true, "stream_options": {"include_usage": true}}"#)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let (values, done) = chunks(&text(r).await);
    assert!(done);
    let texts: String = values
        .iter()
        .filter_map(|v| v["choices"].get(0))
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, app.decode(&[6, 7, 8]));
    assert!(values.iter().all(|v| v["object"] == "text_completion"));
    let last_choice = &values[values.len() - 2]["choices"][0];
    assert_eq!(last_choice["finish_reason"], "length");
    assert_eq!(values.last().unwrap()["usage"]["completion_tokens"], 3);

    let r = app
        .post("/v1/chat/completions", r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_tokens": 2, "stream": true}"#)
        .await;
    let (values, done) = chunks(&text(r).await);
    assert!(done);
    assert!(values
        .iter()
        .all(|v| v["object"] == "chat.completion.chunk"));
    assert_eq!(values[0]["choices"][0]["delta"]["role"], "assistant");
    let last = values.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["choices"][0]["delta"], json!({}));
}

#[tokio::test]
async fn a_stop_string_ends_the_text_before_it() {
    let app = app(8, None);
    let all = app.decode(&[6, 7, 8, 9, 10]);
    let stop = app.decode(&[9]);
    let at = all.find(&stop).unwrap();
    let body = json!({"prompt": [1, 5], "max_tokens": 5, "stop": [stop, "never"]}).to_string();
    let (status, v) = json_of(app.post("/v1/completions", &body).await).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["text"], all[..at]);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let body = json!({"prompt": [1, 5], "max_tokens": 5, "stop": stop, "stream": true}).to_string();
    let (values, done) = chunks(&text(app.post("/v1/completions", &body).await).await);
    assert!(done);
    let streamed: String = values
        .iter()
        .map(|v| v["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, all[..at]);
}

#[tokio::test]
async fn bad_requests_are_answered_400_with_an_openai_error() {
    let app = app(8, None);
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("/v1/completions", "{not json", None),
        ("/v1/completions", "[1]", None),
        (
            "/v1/completions",
            r#"{"prompt": "a", "frobnicate": 1}"#,
            Some("frobnicate"),
        ),
        ("/v1/completions", r#"{"max_tokens": 1}"#, None),
        ("/v1/completions", r#"{"prompt": ""}"#, Some("prompt")),
        ("/v1/completions", r#"{"prompt": []}"#, Some("prompt")),
        (
            "/v1/completions",
            r#"{"prompt": [1000000]}"#,
            Some("prompt"),
        ),
        (
            "/v1/completions",
            &format!(r#"{{"prompt": {:?}}}"#, vec![3; CONTEXT + 1]),
            Some("prompt"),
        ),
        (
            "/v1/completions",
            &format!(r#"{{"prompt": [1, 2], "max_tokens": {CONTEXT}}}"#),
            Some("max_tokens"),
        ),
        (
            "/v1/completions",
            r#"{"prompt": [1, 2], "max_tokens": 0}"#,
            Some("max_tokens"),
        ),
        ("/v1/completions", r#"{"prompt": [1], "n": 2}"#, Some("n")),
        (
            "/v1/completions",
            r#"{"prompt": [1], "temperature": -1}"#,
            Some("temperature"),
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role": "user", "content": "hi"}]}"#,
            Some("messages"),
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": [], "max_tokens": 1}"#,
            Some("messages"),
        ),
    ];
    for (path, body, param) in cases {
        let (status, v) = json_of(app.post(path, body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{body}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert_eq!(v["error"]["param"].as_str(), *param, "{body}: {v}");
    }
    // Exactly the room left is accepted: the last token needs no position.
    let body = format!(
        r#"{{"prompt": {:?}, "max_tokens": 2}}"#,
        vec![3; CONTEXT - 1]
    );
    let r = app.post("/v1/completions", &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v) = json_of(
        app.post(
            "/v1/chat/completions",
            r#"{"messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .await,
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no chat template"),
        "{v}"
    );
}

#[tokio::test]
async fn a_full_queue_answers_429_and_a_departed_client_is_cancelled() {
    let app = app(1, None);
    let long = r#"{"prompt": [1], "max_tokens": 4000, "stream": true}"#;
    let held = app.post("/v1/completions", long).await;
    assert_eq!(held.status(), StatusCode::OK);
    let r = app.post("/v1/completions", r#"{"prompt": [1]}"#).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    let (_, v) = json_of(r).await;
    assert_eq!(v["error"]["code"], "queue_full");
    // The client leaves mid-stream: its sequence is cancelled, its place freed.
    drop(held);
    let started = Instant::now();
    while app.cancelled.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never cancelled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = app.post("/v1/completions", r#"{"prompt": [1]}"#).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, page) = app.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "seam_requests_total{status=\"429\"} 1",
        "seam_requests_total{status=\"200\"} 2",
        "seam_queue_depth 0",
        "seam_time_to_first_token_seconds_count 2",
        "# TYPE seam_tokens_per_second gauge",
    ] {
        assert!(page.contains(line), "{line} not in\n{page}");
    }
}

#[tokio::test]
async fn an_engine_failure_is_a_500_and_the_server_goes_on() {
    let app = app(8, None);
    let body = format!(r#"{{"prompt": [{FAIL}, 1], "max_tokens": 2}}"#);
    let (status, v) = json_of(app.post("/v1/completions", &body).await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert_eq!(v["error"]["type"], "server_error");
    let r = app
        .post("/v1/completions", r#"{"prompt": [1], "max_tokens": 2}"#)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, models) = app.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    assert!(models.contains("\"id\":\"tiny\""), "{models}");
    let (status, health) = app.get("/health").await;
    assert_eq!((status, health.contains("\"ok\"")), (StatusCode::OK, true));
    let (status, _) = app.get("/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
