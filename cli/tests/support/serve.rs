//! `seam serve` in tests: a bundle with a chat template compiled from the
//! `llama` fixture, and the running server.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use super::cli::{compile_small, llama_copy, text as text_of};

/// A chat template in Hugging Face's style (BOS from the context).
pub const TEMPLATE: &str = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] | trim }}\n{% endfor %}\
{% if add_generation_prompt %}assistant:{% endif %}";

/// Compiles a copy of the `llama` fixture with a chat template into `dir/chat.seamb`.
pub fn chat_bundle(dir: &Path) -> PathBuf {
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

/// A running `seam serve`, stopped with Ctrl-C (SIGINT) when dropped.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// `http://HOST:PORT`.
    pub base: String,
}

impl Server {
    /// Starts `seam serve BUNDLE --port 0 EXTRA…` and waits for its address.
    pub fn start(bundle: &Path, extra: &[&str]) -> Server {
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
    pub fn stop(mut self) {
        interrupt(&self.child);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "seam serve exited with {status}");
    }

    /// curl with `args`, on `path`; returns the HTTP status and the body.
    pub fn curl(&self, path: &str, args: &[&str]) -> (u16, String) {
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

    /// curl POSTing `body` as JSON to `path`.
    pub fn post(&self, path: &str, body: &Value) -> (u16, String) {
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

/// Sends SIGINT to `child`.
pub fn interrupt(child: &Child) {
    // SAFETY: sending a signal to a child process this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
}
