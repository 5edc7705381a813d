//! Helpers shared by the C ABI tests (each test binary uses a subset, hence
//! the `dead_code` allowance): the `seam` binary, the bundles it compiles,
//! and a runtime opened once per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::ptr;
use std::sync::OnceLock;

use seam_capi::*;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("capi/ has a parent")
        .to_path_buf()
}

/// The folder cargo builds this profile into (`target/debug`): the test
/// binary lies in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The folder of the test binaries (`target/debug/deps`), where `cargo test`
/// also leaves this crate's shared and static libraries.
pub fn lib_dir() -> PathBuf {
    profile_dir().join("deps")
}

/// The `seam` binary of this profile, built first when it is missing
/// (`cargo test --workspace` builds it for the CLI's own tests).
pub fn seam_bin() -> PathBuf {
    let bin = profile_dir().join(format!("seam{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(root())
            .args(["build", "-p", "seam-cli", "--bin", "seam"]);
        if profile_dir().file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "`cargo build -p seam-cli` failed");
    }
    bin
}

/// Runs `command` (named `what` in a failure), which must succeed; its output.
pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let out = command.output().expect(what);
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `seam` with `args` on the Vulkan backend (lavapipe without a GPU).
pub fn seam(args: &[&str]) -> Output {
    run_ok(
        Command::new(seam_bin())
            .args(args)
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("WGPU_BACKEND", "vulkan"),
        &format!("seam {args:?}"),
    )
}

/// A folder for this test binary's files, emptied when first asked for:
/// under cargo's `target/tmp`, one per test binary (named after it), so that
/// runs replace their files rather than pile them up.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let name = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("test");
        let name = name.split('-').next().unwrap_or(name);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("seam-capi-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// `examples/NAME.seam` compiled with `seam compile` (random weights, seed 7,
/// and `extra` flags) into the scratch folder, once per test binary.
fn compiled(name: &str, extra: &[&str]) -> PathBuf {
    let out = scratch().join(format!("{name}.seamb"));
    let model = root().join(format!("examples/{name}.seam"));
    let mut args = vec![
        "compile",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--random-weights",
        "7",
        "--force",
    ];
    args.extend_from_slice(extra);
    seam(&args);
    out
}

/// The demo bundle: `examples/readme_moe.seam` (entry point `forward`).
pub fn demo_bundle() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| compiled("readme_moe", &[]))
}

/// The demo model with a KV cache of 32 positions (`prefill` and `decode`).
pub fn kv_bundle() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| compiled("readme_moe_kv", &["--max-seq-len", "32"]))
}

/// A handle shared by the tests of one binary (runtimes and models may be
/// shared between threads).
pub struct Shared<T>(pub *mut T);
// SAFETY: the C API documents runtimes and models as shareable between
// threads; only those are wrapped.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

/// The runtime of this test binary (Vulkan: lavapipe without a GPU).
pub fn runtime() -> *mut SeamRuntime {
    static RT: OnceLock<Shared<SeamRuntime>> = OnceLock::new();
    RT.get_or_init(|| {
        let mut rt = ptr::null_mut();
        // SAFETY: `rt` is writable storage for a pointer.
        let status = unsafe { seam_runtime_new(&mut rt) };
        assert_eq!(status, SeamStatus::SeamOk, "{}", last_error());
        Shared(rt)
    })
    .0
}

/// A model loaded from `path` on [`runtime`].
pub fn load(path: &Path) -> *mut SeamModel {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let mut model = ptr::null_mut();
    // SAFETY: a live runtime, a NUL-terminated path, writable `model`.
    let status = unsafe { seam_model_load_file(runtime(), c.as_ptr(), &mut model) };
    assert_eq!(status, SeamStatus::SeamOk, "{}", last_error());
    model
}

/// The demo model, loaded once per test binary.
pub fn demo_model() -> *mut SeamModel {
    static M: OnceLock<Shared<SeamModel>> = OnceLock::new();
    M.get_or_init(|| Shared(load(demo_bundle()))).0
}

/// The KV-cache model, loaded once per test binary.
pub fn kv_model() -> *mut SeamModel {
    static M: OnceLock<Shared<SeamModel>> = OnceLock::new();
    M.get_or_init(|| Shared(load(kv_bundle()))).0
}

/// A new session of `model`.
pub fn session(model: *mut SeamModel) -> *mut SeamSession {
    let mut s = ptr::null_mut();
    // SAFETY: a live model, writable `s`.
    let status = unsafe { seam_session_new(model, &mut s) };
    assert_eq!(status, SeamStatus::SeamOk, "{}", last_error());
    s
}

/// This thread's last error message.
pub fn last_error() -> String {
    // SAFETY: `seam_last_error` never returns NULL and its string is valid
    // until the next call on this thread.
    unsafe { std::ffi::CStr::from_ptr(seam_last_error()) }
        .to_string_lossy()
        .into_owned()
}
