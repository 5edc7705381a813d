//! `seam serve` end to end: the real binary on a free port with a bundle
//! compiled from the `llama` fixture (a copy with a chat template), talked to
//! with curl — completions and chat, whole and streamed — and with the
//! official `openai` Python client when it is installed. Greedy completions
//! carry the text `seam generate` prints for the same prompt, also when
//! several requests arrive at once. Ctrl-C stops the server cleanly.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/serve.rs"]
mod serve;
use cli::{compile_small, llama_copy, scratch, seam, text as text_of};
use serve::{chat_bundle, Server};

const PROMPT: &str = "tiny experts hold the lazy cloth";
const MAX_TOKENS: usize = 8;

/// `seam generate`'s greedy text for `args` (after the bundle).
fn generated_text(bundle: &Path, args: &[&str]) -> String {
    let mut all = vec!["generate", bundle.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = seam(&all);
    let out = text_of(&o);
    assert!(o.status.success(), "{out}");
    out.lines()
        .find_map(|l| l.strip_prefix("text: "))
        .unwrap_or_else(|| panic!("no text in:\n{out}"))
        .to_string()
}

/// The concatenated `field` of every streamed chunk's first choice, checking
/// the stream ends with `data: [DONE]`.
fn streamed(body: &str, field: &dyn Fn(&Value) -> Option<String>) -> String {
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{body}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|v| field(&v["choices"][0]))
        .collect()
}

#[test]
fn completions_and_chat_match_seam_generate_over_curl_and_the_openai_client() {
    let d = scratch("serve");
    let bundle = chat_bundle(&d);
    let max = MAX_TOKENS.to_string();
    let want = generated_text(&bundle, &["--prompt", PROMPT, "--max-new-tokens", &max]);
    let chat_prompt = "user: hello there\nassistant:";
    let want_chat = generated_text(
        &bundle,
        &["--prompt", chat_prompt, "--max-new-tokens", &max],
    );

    let server = Server::start(&bundle, &["--queue", "4"]);
    let request =
        json!({"model": "llama", "prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0});
    let (status, body) = server.post("/v1/completions", &request);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["text"], want, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], MAX_TOKENS, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    // The prompt as token ids (what the tokenizer makes of PROMPT).
    let expected = std::fs::read(cli::llama_fixture().join("tokenizer_expected.json")).unwrap();
    let ids = serde_json::from_slice::<Value>(&expected).unwrap()["prompt"].clone();
    let by_ids = json!({"prompt": ids, "max_tokens": MAX_TOKENS, "temperature": 0});
    let (status, body) = server.post("/v1/completions", &by_ids);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["text"], want, "{v}");

    // Requests at once queue in the engine and each gets the same greedy text.
    std::thread::scope(|scope| {
        let answers: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| server.post("/v1/completions", &request)))
            .collect();
        for answer in answers {
            let (status, body) = answer.join().unwrap();
            assert_eq!(status, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["choices"][0]["text"], want, "{v}");
        }
    });

    let mut stream = request.clone();
    stream["stream"] = json!(true);
    let (status, body) = server.post("/v1/completions", &stream);
    assert_eq!(status, 200, "{body}");
    let text = streamed(&body, &|c| c["text"].as_str().map(str::to_string));
    assert_eq!(text, want);

    let chat = json!({"model": "llama", "messages": [{"role": "user", "content": "hello there "}],
        "max_tokens": MAX_TOKENS, "temperature": 0});
    let (status, body) = server.post("/v1/chat/completions", &chat);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], want_chat, "{v}");
    let mut chat_stream = chat.clone();
    chat_stream["stream"] = json!(true);
    let (status, body) = server.post("/v1/chat/completions", &chat_stream);
    assert_eq!(status, 200, "{body}");
    let text = streamed(&body, &|c| {
        c["delta"]["content"].as_str().map(str::to_string)
    });
    assert_eq!(text, want_chat);

    let mut unknown = request.clone();
    unknown["best_of"] = json!(2);
    let (status, body) = server.post("/v1/completions", &unknown);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid_request_error") && body.contains("best_of"),
        "{body}"
    );
    let mut too_long = request.clone();
    too_long["max_tokens"] = json!(1000);
    assert_eq!(server.post("/v1/completions", &too_long).0, 400);

    openai_client(&server.base, &want, &want_chat);

    let (status, page) = server.curl("/metrics", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("seam_generated_tokens_total"), "{page}");
    assert!(
        page.contains("seam_requests_total{status=\"400\"}"),
        "{page}"
    );
    let (status, models) = server.curl("/v1/models", &[]);
    assert_eq!(status, 200);
    assert!(models.contains("\"id\":\"llama\""), "{models}");
    server.stop();
}

/// The official client, whole and streamed, on both endpoints (skipped,
/// saying so, without python3 or the `openai` package).
fn openai_client(base: &str, want: &str, want_chat: &str) {
    let have = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        println!(
            "notice: python3 with the `openai` package is missing; the client test is skipped"
        );
        return;
    }
    let script = r#"
import json, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="none")
out = {}
r = client.completions.create(model="llama", prompt=sys.argv[2], max_tokens=8, temperature=0)
out["completion"] = r.choices[0].text
out["completion_tokens"] = r.usage.completion_tokens
s = client.completions.create(model="llama", prompt=sys.argv[2], max_tokens=8, temperature=0, stream=True)
out["completion_stream"] = "".join(c.choices[0].text for c in s if c.choices)
messages = [{"role": "user", "content": "hello there"}]
r = client.chat.completions.create(model="llama", messages=messages, max_tokens=8, temperature=0)
out["chat"] = r.choices[0].message.content
s = client.chat.completions.create(model="llama", messages=messages, max_completion_tokens=8,
    temperature=0, stream=True, stream_options={"include_usage": True})
chunks = list(s)
out["chat_stream"] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
out["stream_usage"] = chunks[-1].usage.completion_tokens
try:
    client.completions.create(model="llama", prompt="", max_tokens=8)
except Exception as e:
    out["empty_prompt"] = type(e).__name__
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .args(["-c", script, base, PROMPT])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text_of(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["completion"], want, "{v}");
    assert_eq!(v["completion_stream"], want, "{v}");
    assert_eq!(v["completion_tokens"], MAX_TOKENS, "{v}");
    assert_eq!(v["chat"], want_chat, "{v}");
    assert_eq!(v["chat_stream"], want_chat, "{v}");
    assert_eq!(v["stream_usage"], MAX_TOKENS, "{v}");
    assert_eq!(v["empty_prompt"], "BadRequestError", "{v}");
}

/// `seam serve BUNDLE --port PORT` must exit with `code`, saying `says`.
fn refused(bundle: &Path, port: &str, code: i32, says: &str) {
    let o = seam(&["serve", bundle.to_str().unwrap(), "--port", port]);
    let out = text_of(&o);
    assert_eq!(o.status.code(), Some(code), "{out}");
    assert!(out.contains(says), "{out}");
}

#[test]
fn bundles_and_addresses_it_cannot_serve_are_named_errors() {
    let d = scratch("serve-refused");
    let ckpt = llama_copy(&d, &["config.json", "model.safetensors"]);
    let bundle = d.join("plain.seamb");
    assert!(compile_small(&ckpt, &bundle).status.success());
    refused(&bundle, "0", 1, "holds no tokenizer");

    let tokenizer = cli::llama_fixture().join("tokenizer.json");
    std::fs::copy(tokenizer, ckpt.join("tokenizer.json")).unwrap();
    let config = json!({"chat_template": "{% if %}"});
    std::fs::write(ckpt.join("tokenizer_config.json"), config.to_string()).unwrap();
    assert!(compile_small(&ckpt, &bundle).status.success());
    refused(&bundle, "0", 1, "chat template does not compile");

    std::fs::remove_file(ckpt.join("tokenizer_config.json")).unwrap();
    assert!(compile_small(&ckpt, &bundle).status.success());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    refused(&bundle, &port, 1, "cannot listen on 127.0.0.1");
    refused(&bundle, "not-a-port", 2, "invalid value");
}
