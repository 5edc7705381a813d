//! Helpers shared by the `seam` command-line tests (each test binary uses a
//! subset, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::path::PathBuf;
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
