//! Helpers shared by the `seam` command-line tests (each test binary uses a
//! subset, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `seam` binary under test with `args` (no colour, the Vulkan backend).
pub fn seam(args: &[&str]) -> Output {
    seam_with_env(args, &[])
}

/// [`seam`] with extra environment variables `env` (name, value).
pub fn seam_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seam"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("WGPU_BACKEND", "vulkan")
        .envs(env.iter().copied())
        .output()
        .expect("seam runs")
}

/// What a run printed: stdout, then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What a run printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty folder for `test` (unique to this test process).
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seam-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tiny `llama` checkpoint fixture (with a tokenizer.json).
pub fn llama_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/llama")
}

/// A copy of the `llama` fixture's `files` in `dir/llama`.
pub fn llama_copy(dir: &Path, files: &[&str]) -> PathBuf {
    let ckpt = dir.join("llama");
    std::fs::create_dir_all(&ckpt).unwrap();
    for file in files {
        std::fs::copy(llama_fixture().join(file), ckpt.join(file)).unwrap();
    }
    ckpt
}

/// Compiles `model` into `bundle` (replacing it) for lavapipe, with room for
/// 32 positions.
pub fn compile_small(model: &Path, bundle: &Path) -> Output {
    seam(&[
        "compile",
        model.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--target",
        "lavapipe",
        "--max-seq-len",
        "32",
        "--force",
    ])
}
