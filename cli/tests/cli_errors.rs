//! The `seam` tool on bad input: a clear message and exit code 1 for user errors,
//! 2 for usage errors — never a panic.

use std::path::Path;
use std::process::Output;

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, stderr};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

const SMALL: &str = "model small
dim tokens <= 4
param w: f32[3, 2]
func forward(%x: f32[tokens, 3]) -> (f32[tokens, 2]) {
  %y = matmul(%x, @w) : f32[tokens, 2]
  return %y
}
";

fn assert_user_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_accepts_the_examples() {
    for name in ["readme_moe", "mixtral_tiny", "pregated_topk"] {
        let path = format!("{}/../examples/{name}.seam", env!("CARGO_MANIFEST_DIR"));
        let o = seam(&["check", &path]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!("model {name}: ok")), "{out}");
        assert!(out.contains("moe 4"), "{out}");
    }
}

#[test]
fn empty_file() {
    let d = scratch("empty");
    let o = seam(&["check", &write(&d, "e.seam", b"")]);
    assert_user_error(&o, "empty");
}

#[test]
fn truncated_file() {
    let d = scratch("truncated");
    let cut = &SMALL.as_bytes()[..SMALL.len() - 20];
    let o = seam(&["check", &write(&d, "t.seam", cut)]);
    assert_user_error(&o, "t.seam:");
}

#[test]
fn unknown_op_names_line_and_column() {
    let d = scratch("unknown-op");
    let text = SMALL.replace("matmul(", "matmull(");
    let o = seam(&["check", &write(&d, "u.seam", text.as_bytes())]);
    assert_user_error(&o, "unknown op `matmull`");
    assert!(stderr(&o).contains("u.seam:5:8"), "{}", stderr(&o));
}

#[test]
fn shape_mismatch() {
    let d = scratch("shape");
    let text = SMALL.replace("param w: f32[3, 2]", "param w: f32[4, 2]");
    let o = seam(&["check", &write(&d, "s.seam", text.as_bytes())]);
    assert_user_error(&o, "shape mismatch in `matmul`");
}

#[test]
fn symbolic_dim_over_its_bound() {
    let d = scratch("bound");
    let model = "model ids
dim tokens <= 4
param e: f32[8, 2]
func forward(%ids: i32[tokens]) -> (f32[tokens, 2]) {
  %y = gather(@e, %ids) : f32[tokens, 2]
  return %y
}
";
    let path = write(&d, "b.seam", model.as_bytes());
    let ok = seam(&[
        "eval",
        &path,
        "--random-weights",
        "1",
        "--tokens",
        "1,2,3,4",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let o = seam(&[
        "eval",
        &path,
        "--random-weights",
        "1",
        "--tokens",
        "1,2,3,4,5",
    ]);
    assert_user_error(&o, "tokens");
    assert!(stderr(&o).contains("4"), "{}", stderr(&o));
}

#[test]
fn ten_megabytes_of_random_bytes() {
    use rand::{RngCore, SeedableRng};
    let d = scratch("random");
    let mut bytes = vec![0u8; 10 << 20];
    rand_chacha::ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut bytes);
    let o = seam(&["check", &write(&d, "r.seam", &bytes)]);
    assert_user_error(&o, "UTF-8");
}

#[test]
fn missing_file() {
    let o = seam(&["check", "/nonexistent/model.seam"]);
    assert_user_error(&o, "cannot read `/nonexistent/model.seam`");
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(seam(&[]).status.code(), Some(2));
    assert_eq!(seam(&["check"]).status.code(), Some(2));
    assert_eq!(seam(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        seam(&["eval", "x.seam", "--tokens", "1"]).status.code(),
        Some(2)
    );
    assert!(seam(&["--help"]).status.success());
}

#[test]
fn eval_writes_npy_and_never_overwrites_unasked() {
    let d = scratch("npy");
    let model = write(&d, "m.seam", SMALL.as_bytes());
    let x = seam_ir::Tensor::f32(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let x_path = write(&d, "x.npy", &seam_ir::npy::to_npy_bytes(&x).unwrap());
    let out = d.join("y.npy").display().to_string();
    let args = [
        "eval",
        &model,
        "--random-weights",
        "3",
        "--input",
        &format!("x={x_path}"),
        "--out",
        &out,
    ];
    let o = seam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = seam_ir::npy::read_npy(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(y.shape, vec![2, 2]);
    // The same values as the library evaluator on the same seeded weights.
    let (m, _) = seam_ir::text::parse(SMALL).unwrap();
    let w = seam_ir::random_weights(&m, 3);
    let expected = seam_ir::evaluate(&m, "forward", &w, &[x]).unwrap();
    assert_eq!(y.max_abs_diff(&expected[0]), Some(0.0));
    std::fs::write(&out, b"keep me").unwrap();
    let o = seam(&args);
    assert_user_error(&o, "pass --force");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(seam(&forced).status.success());
}

#[test]
fn activation_over_the_binding_limit_is_refused_at_compile_time() {
    // f32[tokens, 2048] at tokens <= 32768 is 256 MiB, over lavapipe's 128 MiB
    // storage binding limit; at tokens <= 8192 (64 MiB) it compiles.
    let d = scratch("binding");
    let model = |bound: u64| {
        format!(
            "model wide
dim tokens <= {bound}
param e: f32[16, 2048]
func forward(%ids: i32[tokens]) -> (f32[tokens, 2048]) {{
  %y = gather(@e, %ids) : f32[tokens, 2048]
  return %y
}}
"
        )
    };
    let out = d.join("w.seamb").display().to_string();
    let compile = |path: &str| {
        let args = ["compile", path, "-o", &out, "--random-weights", "1"];
        seam(&[&args[..], &["--target", "lavapipe", "--force"]].concat())
    };
    let ok = compile(&write(&d, "ok.seam", model(8192).as_bytes()));
    assert!(ok.status.success(), "{}", stderr(&ok));
    std::fs::remove_file(&out).unwrap();
    let o = compile(&write(&d, "wide.seam", model(32768).as_bytes()));
    assert_user_error(&o, "`%y` needs 268435456 bytes");
    assert!(stderr(&o).contains("tokens <= 32768"), "{}", stderr(&o));
    assert!(stderr(&o).contains("134217728-byte"), "{}", stderr(&o));
    assert!(!Path::new(&out).exists(), "no bundle is written");
}

/// `--force` replaces a regular file only: `-o` onto a symlink or a FIFO is an
/// error that names what is there, and leaves it (and a link's target) alone.
#[cfg(unix)]
#[test]
fn output_onto_a_symlink_or_fifo_is_refused_even_with_force() {
    let d = scratch("special-outputs");
    let model = write(&d, "m.seam", SMALL.as_bytes());
    let target = d.join("precious.txt");
    std::fs::write(&target, b"keep me").unwrap();
    let link = d.join("link.seamb");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fifo = d.join("fifo.seamb");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (out, kind) in [(&link, "symbolic link"), (&fifo, "FIFO")] {
        let out = out.display().to_string();
        let args = ["compile", &model, "--random-weights", "1", "-o", &out];
        let o = seam(&[&args[..], &["--target", "lavapipe", "--force"]].concat());
        assert_user_error(&o, kind);
        assert_user_error(&o, &out);
    }
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Token ids outside the embedding table are refused the same way by `eval`
/// and `run` (the GPU gather would otherwise read a clamped row), before any
/// device work.
#[test]
fn out_of_vocabulary_ids_are_refused_by_eval_and_run() {
    let d = scratch("vocab");
    let model = write(
        &d,
        "emb.seam",
        b"model emb\ndim tokens <= 8\nparam embed: f32[10, 4]\n\
          func forward(%ids: i32[tokens]) -> (f32[tokens, 4]) {\n\
            %x = gather(@embed, %ids) : f32[tokens, 4]\n\
            return %x\n}\n",
    );
    let bundle = d.join("emb.seamb").display().to_string();
    let o = seam(&[
        "compile",
        &model,
        "--random-weights",
        "1",
        "-o",
        &bundle,
        "--target",
        "lavapipe",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for tokens in ["--tokens=1,10", "--tokens=-5,2", "--tokens=999999"] {
        for cmd in [
            ["eval", &model, "--random-weights", "1"].as_slice(),
            ["run", &bundle].as_slice(),
        ] {
            let o = seam(&[cmd, &[tokens]].concat());
            assert_user_error(&o, "outside 0..10");
        }
    }
    let o = seam(&["eval", &model, "--random-weights", "1", "--tokens=0,9"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
