//! `seam` on GGUF files (made from the Hugging Face fixtures by the frontends'
//! test writer): they compile, check and evaluate, the compile summary names
//! the tensor types and conversions, and a malformed file is a named error
//! with exit code 1 and no bundle.

#[path = "support/cli.rs"]
mod cli;
#[path = "../../frontends/tests/gguf_support/mod.rs"]
mod gguf_support;

use cli::{seam, stderr};
use gguf_support::{fixture_gguf, random_q6_k, wide_llama};
use seam_core::quant::GgmlType;

#[test]
fn a_gguf_file_compiles_checks_and_evaluates() {
    let dir = cli::scratch("gguf-good");
    let file = dir.join("llama.gguf");
    fixture_gguf("llama", GgmlType::Q8_0).write(&file);
    let bundle = dir.join("m.seamb");
    let f = file.to_str().unwrap();
    let o = seam(&[
        "compile",
        f,
        "-o",
        bundle.to_str().unwrap(),
        "--target",
        "lavapipe",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // Norms and biases are F32; 7 matrices in each of 2 layers and the (tied) embedding are Q8_0.
    assert!(out.contains("GGUF tensors by type: "), "{out}");
    assert!(out.contains("q8_0 15") && out.contains("f32 "), "{out}");
    assert!(!out.contains("converted"), "{out}");
    assert!(bundle.is_file());
    let o = seam(&["check", f]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("model llama: ok"));
    let o = seam(&["eval", f, "--tokens", "1,2,3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("f32[3, 128]"));
}

#[test]
fn the_compile_summary_names_conversions() {
    let dir = cli::scratch("gguf-q6k");
    let file = dir.join("wide.gguf");
    wide_llama(GgmlType::Q6K, |shape, seed| {
        random_q6_k(seed, shape[0] * shape[1])
    })
    .write(&file);
    let o = seam(&["check", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("GGUF tensors by type: q6_K 9, f32 3"), "{out}");
    assert!(out.contains("converted 8 q6_K tensors to q8_0"), "{out}");
}

#[test]
fn a_malformed_gguf_file_is_a_named_error() {
    let dir = cli::scratch("gguf-bad");
    let file = dir.join("llama.gguf");
    let bytes = fixture_gguf("llama", GgmlType::F32).write(&file);
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let bundle = dir.join("m.seamb");
    let o = seam(&[
        "compile",
        file.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a valid GGUF file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!bundle.exists());
}
