//! `examples/c/demo.c`, compiled with `cc` against `include/seam.h` and the
//! shared library, prints the checksum line `seam run` prints for the demo
//! bundle.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use support::*;

/// The checksum lines `output I...: DTYPE[SHAPE] checksum ...` in `stdout`,
/// without the output's name (`seam run` prints `output 0 %logits: ...`, the
/// demo `output 0: ...`).
fn checksums(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with("output ") && l.contains(" checksum "))
        .map(|l| {
            let (head, tail) = l.split_once(": ").expect("`output I: ...`");
            let index = head.split_whitespace().nth(1).unwrap();
            format!("output {index}: {tail}")
        })
        .collect()
}

/// What `seam run BUNDLE --tokens 1,2,3,4,5,6,7,8` prints for the demo
/// bundle (run once per test binary).
fn seam_run_checksums() -> &'static Vec<String> {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        let bundle = demo_bundle().to_str().unwrap();
        let lines = checksums(&seam(&["run", bundle, "--tokens", "1,2,3,4,5,6,7,8"]).stdout);
        assert!(!lines.is_empty(), "`seam run` printed no checksum");
        lines
    })
}

/// Compiles `examples/c/demo.c` into `out` with `extra` link arguments.
fn compile_demo(out: &Path, link: &[String]) {
    let root = root();
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-std=c11")
        .arg("-O2")
        .arg("-Wall")
        .arg("-Wextra")
        .arg("-Werror")
        .arg("-I")
        .arg(root.join("capi/include"))
        .arg(root.join("examples/c/demo.c"))
        .arg("-o")
        .arg(out)
        .args(link)
        .status()
        .expect("a C compiler (`cc`, or $CC) runs");
    assert!(status.success(), "compiling examples/c/demo.c failed");
}

/// Runs the demo binary `demo` on `bundle`; its stdout (it must succeed).
fn run_demo(demo: &Path, bundle: &Path) -> Vec<u8> {
    run_ok(
        Command::new(demo).arg(bundle).env("WGPU_BACKEND", "vulkan"),
        "the demo",
    )
    .stdout
}

#[test]
fn the_c_demo_prints_the_checksum_seam_run_prints() {
    // `cargo test` leaves the library's cdylib and staticlib beside the test
    // binaries (`target/debug/deps`); `cargo build` also copies them to
    // `target/debug`.
    let lib = lib_dir();
    let shared = lib.join(format!(
        "{}seam_capi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(shared.exists(), "{} is missing", shared.display());
    let bundle = demo_bundle();
    let expected = seam_run_checksums();

    let demo = scratch().join("demo");
    compile_demo(
        &demo,
        &[
            format!("-L{}", lib.display()),
            "-lseam_capi".into(),
            format!("-Wl,-rpath,{}", lib.display()),
            "-lm".into(),
        ],
    );
    assert_eq!(&checksums(&run_demo(&demo, bundle)), expected);

    // A missing bundle: the status's name and seam_last_error's message on
    // stderr, exit status 1.
    let out = Command::new(&demo)
        .arg(scratch().join("missing.seamb"))
        .output()
        .expect("the demo runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SEAM_ERROR_BUNDLE") && stderr.contains("missing.seamb"),
        "{stderr}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn the_c_demo_links_the_static_library() {
    let archive = lib_dir().join("libseam_capi.a");
    assert!(archive.exists(), "{} is missing", archive.display());
    let demo = scratch().join("demo-static");
    compile_demo(
        &demo,
        &[
            archive.display().to_string(),
            "-lpthread".into(),
            "-ldl".into(),
            "-lm".into(),
        ],
    );
    assert_eq!(
        checksums(&run_demo(&demo, demo_bundle())),
        *seam_run_checksums()
    );
    // The static binary holds the whole runtime (debug: ~120 MB).
    let _ = std::fs::remove_file(&demo);
}
