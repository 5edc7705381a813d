//! `seam compile`, `inspect` and `run` end to end, and bundles that must be refused.

use std::process::{Command, Output};

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, text};

const SMALL: &str = "model small
dim tokens <= 16
param e: f32[32, 8]
param w: f32[8, 8]
func forward(%ids: i32[tokens]) -> (f32[tokens, 8]) {
  %x = gather(@e, %ids) : f32[tokens, 8]
  %h = matmul(%x, @w) : f32[tokens, 8]
  %y = silu(%h) : f32[tokens, 8]
  return %y
}
";

/// Writes SMALL to `dir/m.seam` and runs `seam compile` on it into
/// `dir/m.seamb` (lavapipe target, random weights) with `extra` arguments.
fn compile_small(dir: &std::path::Path, extra: &[&str]) -> (Output, String) {
    let model = dir.join("m.seam");
    std::fs::write(&model, SMALL).unwrap();
    let out = dir.join("m.seamb").display().to_string();
    let model = model.display().to_string();
    let mut args = vec![
        "compile",
        &model,
        "-o",
        &out,
        "--random-weights",
        "5",
        "--target",
        "lavapipe",
    ];
    args.extend_from_slice(extra);
    (seam(&args), out)
}

/// Compiles SMALL into `dir/m.seamb` and returns its path.
fn compiled(dir: &std::path::Path) -> String {
    let (o, out) = compile_small(dir, &["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    out
}

#[test]
fn compile_inspect_and_run_match_the_reference() {
    let d = scratch("e2e");
    let bundle = compiled(&d);
    let o = seam(&["inspect", &bundle]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("3 dispatches per call"), "{}", text(&o));
    let o = seam(&["run", &bundle, "--tokens", "1,2,3", "--check-reference"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("check-reference"))
        .expect("a check line");
    let err: f32 = line
        .split("max abs error ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(err < 1e-5, "{line}");
    // The same checksum as the reference evaluator's `seam eval` on the same seed.
    let e = seam(&[
        "eval",
        &d.join("m.seam").display().to_string(),
        "--random-weights",
        "5",
        "--tokens",
        "1,2,3",
    ]);
    let sum = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("output 0"))
            .unwrap()
            .split("sum=")
            .nth(1)
            .unwrap()[..8]
            .to_string()
    };
    assert_eq!(sum(&out), sum(&text(&e)));
}

#[test]
fn existing_bundle_is_not_replaced_without_force() {
    let d = scratch("force");
    let bundle = compiled(&d);
    std::fs::write(&bundle, b"precious").unwrap();
    let o = seam(&[
        "compile",
        &d.join("m.seam").display().to_string(),
        "-o",
        &bundle,
        "--random-weights",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--force"));
    assert_eq!(std::fs::read(&bundle).unwrap(), b"precious");
}

#[test]
fn corrupt_bundles_are_refused_with_a_named_error() {
    let d = scratch("corrupt");
    let bundle = compiled(&d);
    let good = std::fs::read(&bundle).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic",
            [b"NOTSEAM!".as_slice(), &good[8..]].concat(),
            "bad magic",
        ),
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        (
            "version",
            {
                let mut b = good.clone();
                b[8] = 99;
                b
            },
            "format version 99",
        ),
        (
            "flip",
            {
                let mut b = good.clone();
                b[200] ^= 1;
                b
            },
            "corrupt",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = d.join(format!("{name}.seamb"));
        std::fs::write(&p, bytes).unwrap();
        for cmd in ["inspect", "run"] {
            let o = seam(
                &[cmd, &p.display().to_string(), "--tokens", "1"]
                    [..if cmd == "run" { 4 } else { 2 }],
            );
            assert_eq!(o.status.code(), Some(1), "{cmd} {name}: {}", text(&o));
            assert!(text(&o).contains(needle), "{cmd} {name}: {}", text(&o));
            assert!(!text(&o).contains("panicked"));
            assert!(
                !text(&o).contains("device:"),
                "{cmd} {name}: GPU work started"
            );
        }
    }
}

#[test]
fn weights_from_safetensors_and_a_missing_tensor() {
    use safetensors::tensor::{Dtype, TensorView};
    let d = scratch("safetensors");
    let model = d.join("m.seam");
    std::fs::write(&model, SMALL).unwrap();
    let e: Vec<u8> = (0..32 * 8)
        .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
        .collect();
    let w: Vec<u8> = (0..8 * 8).flat_map(|i| half_bits(i as f32 * 0.1)).collect();
    let views = vec![
        ("e", TensorView::new(Dtype::F32, vec![32, 8], &e).unwrap()),
        ("w", TensorView::new(Dtype::BF16, vec![8, 8], &w).unwrap()),
    ];
    let file = d.join("w.safetensors");
    safetensors::serialize_to_file(views.clone(), None, &file).unwrap();
    let out = d.join("w.seamb").display().to_string();
    let m = model.display().to_string();
    let f = file.display().to_string();
    let o = seam(&[
        "compile",
        &m,
        "-o",
        &out,
        "--weights-file",
        &f,
        "--target",
        "lavapipe",
        "--force",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = seam(&["run", &out, "--tokens", "0,5", "--check-reference"]);
    assert!(
        o.status.success() && text(&o).contains("max abs error"),
        "{}",
        text(&o)
    );

    safetensors::serialize_to_file(views[..1].to_vec(), None, &file).unwrap();
    let o = seam(&["compile", &m, "-o", &out, "--weights-file", &f, "--force"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("has no tensor `w`"), "{}", text(&o));
    assert!(
        seam(&[
            "compile",
            &m,
            "-o",
            &out,
            "--random-weights",
            "1",
            "-O",
            "3"
        ])
        .status
        .code()
            == Some(2)
    );
    let o = seam(&[
        "compile",
        &m,
        "-o",
        &out,
        "--random-weights",
        "1",
        "-O",
        "2",
        "--explain",
        "--force",
    ]);
    assert!(
        o.status.success() && text(&o).contains("e-graph:"),
        "{}",
        text(&o)
    );
}

/// bf16 bits of `x` (truncation), little-endian.
fn half_bits(x: f32) -> [u8; 2] {
    let b = (x.to_bits() >> 16) as u16;
    b.to_le_bytes()
}

/// The dispatch listing of `inspect --dispatches` (lines after the entry point).
fn dispatch_lines(bundle: &str) -> Vec<String> {
    let o = seam(&["inspect", bundle, "--dispatches"]);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("entry "))
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn o2_batches_the_pregated_router_heads_and_explains_it() {
    let dir = scratch("pregated");
    let model = format!(
        "{}/../examples/pregated_topk.seam",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut counts = Vec::new();
    for level in ["0", "2"] {
        let out = dir.join(format!("p{level}.seamb")).display().to_string();
        let o = seam(&[
            "compile",
            &model,
            "-o",
            &out,
            "--random-weights",
            "1",
            "--target",
            "lavapipe",
            "-O",
            level,
            "--explain",
            "--force",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        if level == "2" {
            let t = text(&o);
            assert!(t.contains("hoist-routes: fired 8×"), "{t}");
            assert!(t.contains("param-only value(s) into packed weights"), "{t}");
        }
        let lines = dispatch_lines(&out);
        let route = lines.iter().filter(|l| l.contains(" route")).count();
        counts.push((route, lines.len()));
    }
    // Four route dispatches become one; fewer dispatches overall.
    assert_eq!((counts[0].0, counts[1].0), (4, 1), "{counts:?}");
    assert!(counts[1].1 < counts[0].1, "{counts:?}");
}

#[test]
fn emit_writes_the_model_around_the_optimizer() {
    let dir = scratch("emit-ir");
    let ir_dir = dir.join("ir");
    let ir = ir_dir.display().to_string();
    let emit = [
        "-O",
        "2",
        "--emit",
        "ir-before",
        &ir,
        "--emit",
        "ir-after",
        &ir,
    ];
    let (o, out) = compile_small(&dir, &emit);
    assert!(o.status.success(), "{}", text(&o));
    let input = seam_ir::text::parse(SMALL).unwrap().0;
    let read = |stage: &str| {
        let path = ir_dir.join(format!("small.{stage}.seam"));
        let source = std::fs::read_to_string(&path).unwrap();
        seam_ir::text::parse_and_verify(stage, &source).unwrap().0
    };
    assert_eq!(read("before"), input);
    let opts = seam_compiler::optimize::OptimizeOptions {
        cost: seam_compiler::optimize::cost::CostModel::lavapipe(),
        ..seam_compiler::optimize::OptimizeOptions::new(seam_compiler::optimize::OptLevel::O2)
    };
    let (optimized, _) = seam_compiler::optimize::optimize(&input, &opts).unwrap();
    assert_eq!(read("after"), optimized);

    // The emitted files are never replaced without --force, like the bundle.
    std::fs::remove_file(&out).unwrap();
    let (o, _) = compile_small(&dir, &emit);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("small.before.seam"), "{}", text(&o));
    let (o, _) = compile_small(&dir, &[&emit[..], &["--force"]].concat());
    assert!(o.status.success(), "{}", text(&o));

    // An unknown format is a usage error naming the formats.
    let (o, _) = compile_small(&dir, &["--emit", "ir-middle", &ir]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("ir-before, ir-after"), "{}", text(&o));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::process::Stdio;
    let dir = scratch("pipe");
    let bundle = compiled(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_seam"))
        .args(["inspect", &bundle, "--dispatches"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("seam runs");
    // Close the read end before seam has verified the bundle and printed, as
    // `seam inspect B | head -0` does.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(o.status.code(), Some(101), "{stderr}");
}

/// The max abs error of a `check-reference` line of `seam run`'s output.
fn reference_error(out: &str) -> f32 {
    let line = out
        .lines()
        .find(|l| l.starts_with("check-reference"))
        .expect("a check line");
    line.split("max abs error ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("an error value")
}

#[test]
fn mot_runs_with_a_modality_input_and_refuses_an_unknown_modality() {
    let d = scratch("mot");
    let model = format!("{}/../examples/mot.seam", env!("CARGO_MANIFEST_DIR"));
    let bundle = d.join("mot.seamb").display().to_string();
    let o = seam(&[
        "compile",
        &model,
        "-o",
        &bundle,
        "--random-weights",
        "7",
        "--target",
        "lavapipe",
        "-O2",
        "--force",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let npy = |name: &str, ids: Vec<i32>| {
        let t = seam_ir::Tensor::i32(vec![ids.len()], ids).unwrap();
        let path = d.join(name);
        std::fs::write(&path, seam_ir::npy::to_npy_bytes(&t).unwrap()).unwrap();
        format!("modality={}", path.display())
    };
    let good = npy("good.npy", vec![0, 1, 1, 0]);
    let o = seam(&[
        "run",
        &bundle,
        "--tokens",
        "1,2,3,4",
        "--input",
        &good,
        "--check-reference",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = reference_error(&text(&o));
    assert!(err < 1e-4, "{}", text(&o));
    let bad = npy("bad.npy", vec![0, 2, 1, 0]);
    let o = seam(&["run", &bundle, "--tokens", "1,2,3,4", "--input", &bad]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("`%modality` is outside 0..2"),
        "{}",
        text(&o)
    );
    // `seam bench` makes modality ids in range itself.
    let o = seam(&["bench", &bundle, "--tokens", "3", "--iters", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    // Two bundles side by side: a row each, the first the reference of `vs first`.
    let o = seam(&["bench", &bundle, &bundle, "--tokens", "3", "--iters", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<&str> = bench_rows(&o);
    assert_eq!(rows.len(), 2, "{}", text(&o));
    assert!(rows[0].trim_end().ends_with("1.000x"), "{}", text(&o));
    assert!(rows[1].trim_end().ends_with('x'), "{}", text(&o));
    // Every round's timings are kept: an absurd count is refused up front.
    let o = seam(&["bench", &bundle, "--iters", "1000000"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("more than 100000 rounds"), "{}", text(&o));
}

/// The result rows of `seam bench` (after its device and header lines).
fn bench_rows(o: &Output) -> Vec<&str> {
    std::str::from_utf8(&o.stdout)
        .unwrap_or_default()
        .lines()
        .skip_while(|l| !l.starts_with("bundle "))
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .collect()
}
