//! `seam` on Hugging Face checkpoint folders: a good one compiles, checks and
//! evaluates; each kind of bad checkpoint gives a clear error naming the file and
//! tensor, exit code 1, no panic and no bundle (nor temporary file) left behind.

use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

#[path = "support/cli.rs"]
mod cli;
use cli::{seam, stderr};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(name)
}

/// A fresh copy of fixture `name` in a scratch folder unique to `test`, and the
/// folder the bundle goes to.
fn copy_fixture(name: &str, test: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("seam-ckpt-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let ckpt = root.join(name);
    std::fs::create_dir_all(&ckpt).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), ckpt.join(entry.file_name())).unwrap();
    }
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    (ckpt, out)
}

/// Rewrites `file` with `edit` applied to its tensor list.
fn rewrite_safetensors(file: &Path, edit: impl FnOnce(&mut Vec<(String, TensorView<'_>)>)) {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = st.tensors();
    edit(&mut tensors);
    std::fs::write(file, safetensors::serialize(tensors, None).unwrap()).unwrap();
}

/// Compiles the checkpoint; asserts a user error mentioning every needle and
/// that the output folder stays empty.
fn assert_compile_fails(ckpt: &Path, out: &Path, needles: &[&str]) -> String {
    let bundle = out.join("model.seamb");
    let o = seam(&[
        "compile",
        ckpt.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--target",
        "lavapipe",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(out).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    err
}

#[test]
fn a_checkpoint_folder_compiles_checks_and_evaluates() {
    let (ckpt, out) = copy_fixture("mixtral", "good");
    let bundle = out.join("m.seamb");
    let ck = ckpt.to_str().unwrap();
    let o = seam(&[
        "compile",
        ck,
        "-o",
        bundle.to_str().unwrap(),
        "--target",
        "lavapipe",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(bundle.is_file());
    let o = seam(&["check", ck]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("moe 2"), "{text}");
    let o = seam(&["eval", ck, "--tokens", "1,2,3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("f32[3, 128]"));
}

/// `--max-seq-len` bounds the prompt (`tokens`) as well as the cache: the
/// fixture's `max_position_embeddings` is 64, and without the bound a large
/// vocabulary's logits at that many tokens exceed the binding limit.
#[test]
fn max_seq_len_bounds_the_prompt_of_a_checkpoint() {
    let (ckpt, out) = copy_fixture("mixtral", "max-seq-len");
    let ir = out.join("ir");
    let o = seam(&[
        "compile",
        ckpt.to_str().unwrap(),
        "-o",
        out.join("m.seamb").to_str().unwrap(),
        "--max-seq-len",
        "24",
        "--emit",
        "ir-before",
        ir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(ir.join("mixtral.before.seam")).unwrap();
    assert!(text.contains("dim tokens <= 24\n"), "{text}");
    assert!(text.contains("dim kv_len <= 24\n"), "{text}");
}

#[test]
fn checkpoint_weights_exclude_other_weight_options() {
    let (ckpt, out) = copy_fixture("llama", "usage");
    let bundle = out.join("m.seamb");
    let o = seam(&[
        "compile",
        ckpt.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--random-weights",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("its own weights"), "{}", stderr(&o));
    assert!(!bundle.exists());
}

#[test]
fn missing_config_is_named() {
    let (ckpt, out) = copy_fixture("llama", "noconfig");
    std::fs::remove_file(ckpt.join("config.json")).unwrap();
    assert_compile_fails(&ckpt, &out, &["has no config.json", ckpt.to_str().unwrap()]);
}

#[test]
fn missing_tensor_is_named_with_its_file() {
    let (ckpt, out) = copy_fixture("llama", "notensor");
    let file = ckpt.join("model.safetensors");
    rewrite_safetensors(&file, |t| {
        t.retain(|(n, _)| n != "model.layers.1.mlp.up_proj.weight")
    });
    assert_compile_fails(
        &ckpt,
        &out,
        &[
            "tensor `model.layers.1.mlp.up_proj.weight` is missing",
            file.to_str().unwrap(),
        ],
    );
}

#[test]
fn missing_tensor_in_a_shard_names_the_indexed_shard() {
    let (ckpt, out) = copy_fixture("mixtral", "noshardtensor");
    let index = std::fs::read_to_string(ckpt.join("model.safetensors.index.json")).unwrap();
    let name = "model.layers.1.block_sparse_moe.experts.3.w2.weight";
    let key = format!("\"{name}\": \"");
    let at = index.find(&key).unwrap() + key.len();
    let shard = &index[at..at + index[at..].find('"').unwrap()];
    rewrite_safetensors(&ckpt.join(shard), |t| t.retain(|(n, _)| n != name));
    assert_compile_fails(
        &ckpt,
        &out,
        &[&format!("tensor `{name}` is missing"), shard],
    );
}

#[test]
fn missing_shard_file_is_named() {
    let (ckpt, out) = copy_fixture("mixtral", "noshard");
    let shard = ckpt.join("model-00002-of-00003.safetensors");
    std::fs::remove_file(&shard).unwrap();
    assert_compile_fails(&ckpt, &out, &["cannot read", shard.to_str().unwrap()]);
}

#[test]
fn wrong_tensor_shape_is_named_with_both_shapes() {
    let (ckpt, out) = copy_fixture("llama", "shape");
    let file = ckpt.join("model.safetensors");
    rewrite_safetensors(&file, |t| {
        let (_, view) = t
            .iter_mut()
            .find(|(n, _)| n == "model.layers.0.self_attn.q_proj.weight")
            .unwrap();
        // [128, 64] stored as [64, 128]: same bytes, transposed shape.
        *view = TensorView::new(view.dtype(), vec![64, 128], view.data()).unwrap();
    });
    assert_compile_fails(
        &ckpt,
        &out,
        &[
            "tensor `model.layers.0.self_attn.q_proj.weight`",
            "has shape [64, 128], but the config implies [128, 64]",
            file.to_str().unwrap(),
        ],
    );
}

#[test]
fn truncated_safetensors_is_named() {
    let (ckpt, out) = copy_fixture("llama", "truncated");
    let file = ckpt.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert_compile_fails(
        &ckpt,
        &out,
        &[
            "is not a valid safetensors file",
            "truncated",
            file.to_str().unwrap(),
        ],
    );
}

#[test]
fn unknown_model_type_is_named() {
    let (ckpt, out) = copy_fixture("llama", "unknown");
    let path = ckpt.join("config.json");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"LlamaForCausalLM\"", "\"GPTNeoXForCausalLM\"")
        .replace("\"model_type\": \"llama\"", "\"model_type\": \"gpt_neox\"");
    std::fs::write(&path, config).unwrap();
    assert_compile_fails(
        &ckpt,
        &out,
        &[
            "unsupported architecture `GPTNeoXForCausalLM` (model_type `gpt_neox`)",
            "MixtralForCausalLM",
            path.to_str().unwrap(),
        ],
    );
}
