//! `seam serve` end to end: the real binary on a free port with a bundle
//! compiled from the `llama` fixture (a copy with a chat template), talked to
//! with curl — completions and chat, whole and streamed — and with the
//! official `openai` Python client when it is installed. Greedy completions
//! carry the text `seam generate` prints for the same prompt, also when
//! several requests arrive at once. Ctrl-C stops the server cleanly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

#[path = "support/cli.rs"]
mod cli;
use cli::{compile_small, llama_copy, scratch, seam, text as text_of};

/// A chat template in Hugging Face's style (BOS from the context).
const TEMPLATE: &str = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] | trim }}\n{% endfor %}\
{% if add_generation_prompt %}assistant:{% endif %}";
const PROMPT: &str = "tiny experts hold the lazy cloth";
const MAX_TOKENS: usize = 8;

/// Compiles a copy of the `llama` fixture with a chat template into `dir/chat.seamb`.
fn chat_bundle(dir: &Path) -> PathBuf {
    let files = [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
    ];
    let ckpt = llama_copy(dir, &files);
    let config = json!({"chat_template": TEMPLATE, "bos_token": "<s>", "eos_token": "</s>"});
    std::fs::write(ckpt.join("tokenizer_config.json"), config.to_string()).unwrap();
    let bundle = dir.join("chat.seamb");
    let o = compile_small(&ckpt, &bundle);
    assert!(o.status.success(), "{}", text_of(&o));
    bundle
}

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

/// A running `seam serve`, stopped with Ctrl-C (SIGINT) when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(bundle: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seam"))
            .args(["serve", bundle.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .env("WGPU_BACKEND", "vulkan")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("seam serve prints its address");
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Server { child, base }
    }

    /// Sends SIGINT and waits for a clean exit.
    fn stop(mut self) {
        interrupt(&self.child);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "seam serve exited with {status}");
    }

    /// curl with `args`, on `path`; returns the HTTP status and the body.
    fn curl(&self, path: &str, args: &[&str]) -> (u16, String) {
        let o = Command::new("curl")
            .args(["-sS", "-N", "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        assert!(o.status.success(), "{}", text_of(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        let (body, status) = out.rsplit_once('\n').unwrap();
        (status.parse().unwrap(), body.to_string())
    }

    fn post(&self, path: &str, body: &Value) -> (u16, String) {
        self.curl(
            path,
            &[
                "-H",
                "content-type: application/json",
                "-d",
                &body.to_string(),
            ],
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn interrupt(child: &Child) {
    // SAFETY: sending a signal to a child process this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
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
