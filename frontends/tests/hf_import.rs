//! The Hugging Face importer on the committed fixtures (tests/fixtures/hf): both
//! transformers config conventions, the fields that change the math, f16/bf16
//! weights, and refusals of what is not implemented. Fidelity against
//! `transformers` itself is tested in tests/tests/hf_fidelity.rs.

use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use seam_frontends::hf::{import, Family, HfError, ImportOptions};
use seam_ir::text::print;
use seam_ir::{Op, Tensor};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(name)
}

/// A copy of fixture `name` at `<scratch for test>/<name>` (same folder name, so
/// the imported model has the same name).
fn copy_fixture(name: &str, test: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("seam-hf-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(config.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

fn import_dir(dir: &Path) -> Result<seam_frontends::hf::Imported, HfError> {
    import(dir, &ImportOptions::default())
}

/// The RoPE bases of a model's `rope` instructions.
fn rope_thetas(model: &seam_ir::Model) -> Vec<f32> {
    model.functions[0]
        .body
        .iter()
        .filter_map(|i| match i.op {
            Op::Rope { theta } => Some(theta),
            _ => None,
        })
        .collect()
}

#[test]
fn transformers_4x_config_convention_imports_the_same_model() {
    let v5 = import_dir(&fixture("qwen2_moe")).unwrap();
    let dir = copy_fixture("qwen2_moe", "v4");
    edit_config(&dir, |c| {
        // 4.x: top-level rope_theta and torch_dtype, q/k/v biases implied.
        let theta = c["rope_parameters"]["rope_theta"].clone();
        c.remove("rope_parameters");
        c.insert("rope_theta".into(), theta);
        let dtype = c.remove("dtype").unwrap();
        c.insert("torch_dtype".into(), dtype);
        c.remove("qkv_bias");
        c.remove("layer_types");
        c.insert("transformers_version".into(), json!("4.46.0"));
    });
    let v4 = import_dir(&dir).unwrap();
    assert_eq!(v4.family, Family::Qwen2Moe);
    assert_eq!(print(&v4.model), print(&v5.model));
    assert_eq!(v4.weights, v5.weights);
}

#[test]
fn rope_theta_is_read_from_either_convention() {
    let dir = copy_fixture("mixtral", "theta");
    assert!(rope_thetas(&import_dir(&dir).unwrap().model)
        .iter()
        .all(|&t| t == 1e6));
    edit_config(&dir, |c| {
        c.remove("rope_parameters");
        c.insert("rope_theta".into(), json!(12345.0));
    });
    let thetas = rope_thetas(&import_dir(&dir).unwrap().model);
    assert_eq!(thetas.len(), 4, "q and k in 2 layers");
    assert!(thetas.iter().all(|&t| t == 12345.0), "{thetas:?}");
}

/// Rewrites every f32 tensor of `file` as `dtype` (f16 or bf16).
fn convert_weights(file: &Path, dtype: Dtype) {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let converted: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data: Vec<u8> = view
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    match dtype {
                        Dtype::F16 => half::f16::from_f32(x).to_le_bytes(),
                        _ => half::bf16::from_f32(x).to_le_bytes(),
                    }
                })
                .collect();
            (name, view.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = converted
        .iter()
        .map(|(n, s, d)| (n.clone(), TensorView::new(dtype, s.clone(), d).unwrap()))
        .collect();
    std::fs::write(file, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn half_precision_weights_are_widened_exactly() {
    let f32_model = import_dir(&fixture("llama")).unwrap();
    for (dtype, round) in [
        (
            Dtype::F16,
            (|x| half::f16::from_f32(x).to_f32()) as fn(f32) -> f32,
        ),
        (Dtype::BF16, |x| half::bf16::from_f32(x).to_f32()),
    ] {
        let dir = copy_fixture("llama", &format!("{dtype:?}"));
        convert_weights(&dir.join("model.safetensors"), dtype);
        let half_model = import_dir(&dir).unwrap();
        for ((name, a), (_, b)) in f32_model.weights.iter().zip(half_model.weights.iter()) {
            let rounded: Vec<f32> = a.to_f32_vec().into_iter().map(round).collect();
            assert_eq!(
                Tensor::f32(a.shape.clone(), rounded).unwrap(),
                *b,
                "{dtype:?} {name}"
            );
        }
    }
}

/// Imports fixture `name` with `edit` applied to its config; returns the error.
fn refused(
    name: &str,
    test: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let dir = copy_fixture(name, test);
    edit_config(&dir, edit);
    match import_dir(&dir) {
        Ok(_) => panic!("{test}: imported"),
        Err(e) => e.to_string(),
    }
}

/// An edit of a config.json.
type ConfigEdit = Box<dyn FnOnce(&mut serde_json::Map<String, Value>)>;

#[test]
fn unimplemented_config_values_are_refused_by_name() {
    let cases: Vec<(&str, &str, ConfigEdit, &str)> = vec![
        (
            "llama",
            "ropescaling4",
            Box::new(|c| {
                c.insert(
                    "rope_scaling".into(),
                    json!({"type": "linear", "factor": 2.0}),
                );
            }),
            "unsupported `rope_scaling.type` = \"linear\"",
        ),
        (
            "llama",
            "ropetype5",
            Box::new(|c| {
                c.insert(
                    "rope_parameters".into(),
                    json!({"rope_type": "yarn", "rope_theta": 1e4}),
                );
            }),
            "unsupported `rope_parameters.rope_type` = \"yarn\"",
        ),
        (
            "llama",
            "act",
            Box::new(|c| {
                c.insert("hidden_act".into(), json!("gelu"));
            }),
            "unsupported `hidden_act` = \"gelu\"",
        ),
        (
            "olmoe",
            "clip",
            Box::new(|c| {
                c.insert("clip_qkv".into(), json!(8.0));
            }),
            "unsupported `clip_qkv` = 8.0",
        ),
        (
            "qwen2_moe",
            "window",
            Box::new(|c| {
                c.insert("use_sliding_window".into(), json!(true));
                c.insert("sliding_window".into(), json!(8));
            }),
            "unsupported `sliding_window` = 8",
        ),
        (
            "mixtral",
            "topk",
            Box::new(|c| {
                c.insert("num_experts_per_tok".into(), json!(9));
            }),
            "field `num_experts_per_tok` 9 exceeds the 4 experts",
        ),
        (
            "readme",
            "router",
            Box::new(|c| {
                c.remove("router_config");
            }),
            "field `router_config` is missing",
        ),
    ];
    for (name, test, edit, needle) in cases {
        let err = refused(name, test, edit);
        assert!(
            err.contains(needle),
            "{test}: expected `{needle}` in: {err}"
        );
        assert!(err.contains("config.json"), "{test}: {err}");
    }
}

#[test]
fn an_inactive_sliding_window_is_accepted() {
    let dir = copy_fixture("mixtral", "bigwindow");
    // The window covers every position the model is built for: no effect.
    edit_config(&dir, |c| {
        c.insert("sliding_window".into(), json!(4096));
    });
    import_dir(&dir).unwrap();
}

#[test]
fn decoder_sparse_step_and_mlp_only_layers_pick_dense_layers() {
    // The fixture: 3 layers, step 1, mlp_only_layers [1] → sparse, dense, sparse.
    let m = import_dir(&fixture("qwen2_moe")).unwrap().model;
    let has = |p: &str| m.param_by_name(p).is_some();
    assert!(has("model.layers.0.mlp.experts.gate_proj"));
    assert!(has("model.layers.1.mlp.gate_proj") && !has("model.layers.1.mlp.experts.gate_proj"));
    assert!(has("model.layers.2.mlp.shared_expert_gate"));
    // Step 2 makes layer 0 dense too, so its dense weights are now required.
    let dir = copy_fixture("qwen2_moe", "step");
    edit_config(&dir, |c| {
        c.insert("decoder_sparse_step".into(), json!(2));
    });
    let err = import_dir(&dir).unwrap_err().to_string();
    assert!(
        err.contains("tensor `model.layers.0.mlp.gate_proj.weight` is missing"),
        "{err}"
    );
}

#[test]
fn the_tokens_bound_defaults_to_max_position_embeddings_and_can_be_set() {
    let dims = |options: &ImportOptions| import(&fixture("olmoe"), options).unwrap().model.dims;
    let default = dims(&ImportOptions::default());
    assert_eq!((default[0].name.as_str(), default[0].max), ("tokens", 64));
    let set = dims(&ImportOptions {
        max_tokens: Some(16),
        ..ImportOptions::default()
    });
    assert_eq!(set[0].max, 16);
}
