//! `seam compile --weight-storage external` on checkpoint folders (lavapipe on
//! CI): the bundle references the checkpoint's safetensors files instead of
//! copying them, is much smaller, and runs and generates exactly as the copied
//! bundle does (the weights are the same bytes); a moved, changed or truncated
//! checkpoint is refused at load with a named error and exit code 1. The
//! checkpoint lies beside the bundle's folder, so loading needs
//! `--allow-weights-from`; without it the bundle is refused.

use std::path::{Path, PathBuf};

#[path = "support/cli.rs"]
mod cli;
use cli::{seam, text as text_of};

/// Runs `seam` and asserts success, returning stdout and stderr.
fn ok(args: &[&str]) -> String {
    let o = seam(args);
    let text = text_of(&o);
    assert!(o.status.success(), "seam {args:?} failed: {text}");
    text
}

/// A copy of fixture `name` at `<scratch>/<name>` and an empty `<scratch>/out`
/// beside it, so bundles reference `../<name>/…`.
fn copy_fixture(name: &str, test: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("seam-ext-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let ckpt = root.join(name);
    std::fs::create_dir_all(&ckpt).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(name);
    for entry in std::fs::read_dir(fixture).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), ckpt.join(entry.file_name())).unwrap();
    }
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    (ckpt, out)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Compiles `ckpt` to `bundle` for lavapipe with `extra` flags; returns the summary.
fn compile(ckpt: &Path, bundle: &Path, extra: &[&str]) -> String {
    let mut args = vec!["compile", s(ckpt), "-o", s(bundle), "--target", "lavapipe"];
    args.extend_from_slice(extra);
    ok(&args)
}

const EXTERNAL: [&str; 2] = ["--weight-storage", "external"];

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn an_external_bundle_is_small_and_runs_bit_identically() {
    let (ckpt, out) = copy_fixture("llama", "run");
    let (copied, external) = (out.join("copy.seamb"), out.join("ext.seamb"));
    compile(&ckpt, &copied, &[]);
    let summary = compile(&ckpt, &external, &EXTERNAL);
    // Every llama weight is an f32 tensor stored as the bundle packs it.
    assert!(
        summary.contains("(0 embedded, 415488 external in 1 files)"),
        "{summary}"
    );
    assert!(
        file_len(&external) * 4 < file_len(&copied),
        "external {} bytes vs copied {}",
        file_len(&external),
        file_len(&copied)
    );
    for (bundle, npy) in [(&copied, "copy.npy"), (&external, "ext.npy")] {
        let text = ok(&[
            "run",
            s(bundle),
            "--tokens",
            "3,1,4,1,5,9",
            "--check-reference",
            "--out",
            s(&out.join(npy)),
            "--allow-weights-from",
            s(&ckpt),
        ]);
        assert!(text.contains("check-reference output 0"), "{text}");
    }
    assert_eq!(
        std::fs::read(out.join("copy.npy")).unwrap(),
        std::fs::read(out.join("ext.npy")).unwrap(),
        "the same weights give bit-identical logits"
    );
    // Moved together, the bundle still finds its checkpoint.
    let root = out.parent().unwrap();
    let moved = root.with_extension("moved");
    let _ = std::fs::remove_dir_all(&moved);
    std::fs::rename(root, &moved).unwrap();
    let (bundle, ckpt) = (moved.join("out/ext.seamb"), moved.join("llama"));
    ok(&[
        "run",
        s(&bundle),
        "--tokens",
        "1,2",
        "--allow-weights-from",
        s(&ckpt),
    ]);
    // Without the flag the checkpoint beside the bundle's folder is refused.
    for args in [
        &["run", s(&bundle), "--tokens", "1,2"][..],
        &["inspect", s(&bundle)],
    ] {
        let o = seam(args);
        let text = text_of(&o);
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert!(text.contains("--allow-weights-from"), "{text}");
    }
    ok(&["inspect", s(&bundle), "--allow-weights-from", s(&ckpt)]);
}

/// The `generated:` line of `seam generate`, external weights allowed from `ckpt`.
fn generated(bundle: &Path, ckpt: &Path) -> String {
    let text = ok(&[
        "generate",
        s(bundle),
        "--prompt-ids",
        "1,2,3",
        "--max-new-tokens",
        "8",
        "--allow-weights-from",
        s(ckpt),
    ]);
    text.lines()
        .find(|l| l.starts_with("generated:"))
        .unwrap_or_else(|| panic!("no ids in: {text}"))
        .to_string()
}

#[test]
fn an_external_kv_bundle_generates_the_same_tokens() {
    let (ckpt, out) = copy_fixture("mixtral", "generate");
    let (copied, external) = (out.join("copy.seamb"), out.join("ext.seamb"));
    let kv = ["--max-seq-len", "32", "-O2"];
    compile(&ckpt, &copied, &kv);
    let summary = compile(&ckpt, &external, &[&kv[..], &EXTERNAL].concat());
    assert!(summary.contains("external in 3 files"), "{summary}");
    assert!(file_len(&external) < file_len(&copied));
    assert_eq!(generated(&copied, &ckpt), generated(&external, &ckpt));
}

/// Runs the bundle with external weights allowed from `root`, asserting a
/// clean failure (exit 1, no panic) mentioning `needle`.
fn assert_refused(bundle: &Path, root: &Path, needle: &str) {
    let o = seam(&[
        "run",
        s(bundle),
        "--tokens",
        "1,2",
        "--allow-weights-from",
        s(root),
    ]);
    let text = text_of(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains(needle), "expected `{needle}` in: {text}");
}

#[test]
fn a_moved_changed_or_truncated_checkpoint_is_refused() {
    let (ckpt, out) = copy_fixture("llama", "refuse");
    let bundle = out.join("ext.seamb");
    compile(&ckpt, &bundle, &EXTERNAL);
    let weights = ckpt.join("model.safetensors");
    let original = std::fs::read(&weights).unwrap();
    // The folder holding the checkpoint and the bundle's folder: a moved
    // checkpoint is then a missing file inside an allowed folder.
    let root = out.parent().unwrap();
    let allow = ["--allow-weights-from", s(root)];

    let moved = ckpt.with_extension("moved");
    std::fs::rename(&ckpt, &moved).unwrap();
    assert_refused(&bundle, root, "cannot read external weight file");
    assert_refused(&bundle, root, "../llama/model.safetensors");
    std::fs::rename(&moved, &ckpt).unwrap();
    ok(&[&["run", s(&bundle), "--tokens", "1,2"][..], &allow].concat());

    let mut changed = original.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x40;
    std::fs::write(&weights, &changed).unwrap();
    assert_refused(&bundle, root, "does not match the checksum");

    std::fs::write(&weights, &original[..original.len() - 4]).unwrap();
    assert_refused(
        &bundle,
        root,
        &format!(
            "has {} bytes but the bundle was compiled against {}",
            original.len() - 4,
            original.len()
        ),
    );
}

#[test]
fn external_storage_needs_a_checkpoint_folder() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/mixtral_tiny.seam");
    let out = std::env::temp_dir().join(format!("seam-ext-{}-text.seamb", std::process::id()));
    let o = seam(&[
        "compile",
        s(&model),
        "--random-weights",
        "1",
        "-o",
        s(&out),
        "--weight-storage",
        "external",
    ]);
    let text = text_of(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("applies to checkpoint folders"), "{text}");
    assert!(!out.exists());
}

#[test]
fn inspect_refuses_weights_linked_outside_or_to_a_device() {
    let (ckpt, out) = copy_fixture("llama", "outside");
    let bundle = out.join("ext.seamb");
    compile(&ckpt, &bundle, &EXTERNAL);
    let weights = ckpt.join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &weights).unwrap();
    let inspect = |extra: &[&str]| {
        let o = seam(
            &[
                &["inspect", s(&bundle), "--allow-weights-from", s(&ckpt)],
                extra,
            ]
            .concat(),
        );
        let text = text_of(&o);
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert!(!text.contains("panicked"), "{text}");
        text
    };
    // The link leads out of the allowed folder: refused, no size given.
    let text = inspect(&[]);
    assert!(text.contains("is outside the bundle's folder"), "{text}");
    // Allowing `/dev` too, the device is refused as one, never read.
    let text = inspect(&["--allow-weights-from", "/dev"]);
    assert!(text.contains("is not a regular file"), "{text}");
}
