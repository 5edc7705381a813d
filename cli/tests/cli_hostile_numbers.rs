//! Fuzz regressions ("Embed anywhere, break nowhere"): hostile numbers in a
//! checkpoint's `config.json` and parameter sizes past the host's memory give a
//! named error and exit code 1 at once — never a panic, an abort on allocation,
//! or minutes of work sized by a number instead of by the tensors present.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, seam_with_env, text};

/// Each refusal must come back within this (the 3,000-layer config used to take 20 s).
const PROMPT: Duration = Duration::from_secs(10);

/// A copy of the `fixture` checkpoint in a scratch folder with `edit` applied
/// to its `config.json`.
fn hostile(fixture: &str, test: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(fixture);
    let dir = scratch(test).join(fixture);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    dir
}

/// Runs `seam check`, `eval` and `compile` on `ckpt`; each must exit 1 promptly
/// without panicking, saying every one of `needles`.
fn refused_everywhere(ckpt: &Path, needles: &[&str]) {
    let ck = ckpt.to_str().unwrap();
    let bundle = ckpt.with_extension("seamb");
    let runs: [Vec<&str>; 3] = [
        vec!["check", ck],
        vec!["eval", ck, "--tokens", "1,2"],
        vec![
            "compile",
            ck,
            "-o",
            bundle.to_str().unwrap(),
            "--target",
            "lavapipe",
        ],
    ];
    for args in runs {
        let started = Instant::now();
        let o = seam(&args);
        let took = started.elapsed();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}");
        assert!(!out.contains("panicked"), "{args:?}: {out}");
        for needle in needles {
            assert!(
                out.contains(needle),
                "{args:?}: expected `{needle}` in: {out}"
            );
        }
        assert!(took < PROMPT, "{args:?} took {took:?}");
    }
    assert!(!bundle.exists());
}

fn set(field: &str, value: u64) -> impl FnOnce(&mut Value) + '_ {
    move |c| c[field] = value.into()
}

#[test]
fn num_hidden_layers_of_i64_max_is_refused_not_a_capacity_overflow() {
    let ckpt = hostile(
        "llama",
        "layers-max",
        set("num_hidden_layers", i64::MAX as u64),
    );
    refused_everywhere(
        &ckpt,
        &[
            "num_hidden_layers",
            "9223372036854775807",
            "exceeds the limit 65536",
        ],
    );
}

#[test]
fn num_hidden_layers_of_2_pow_40_is_refused_before_allocating() {
    let ckpt = hostile("llama", "layers-2-40", set("num_hidden_layers", 1 << 40));
    refused_everywhere(
        &ckpt,
        &["num_hidden_layers", "1099511627776", "limit 65536"],
    );
}

#[test]
fn layers_beyond_the_checkpoint_are_refused_before_building_the_graph() {
    let ckpt = hostile("llama", "layers-3000", set("num_hidden_layers", 3000));
    refused_everywhere(
        &ckpt,
        &["`num_hidden_layers` = 3000, but the checkpoint holds 2 layers"],
    );
}

#[test]
fn intermediate_size_of_2_pow_32_is_refused_before_allocating() {
    let ckpt = hostile("mixtral", "ffn-2-32", set("intermediate_size", 1 << 32));
    refused_everywhere(
        &ckpt,
        &[
            "intermediate_size",
            "4294967296",
            "exceeds the limit 16777216",
        ],
    );
}

#[test]
fn an_expert_width_within_the_limit_is_checked_against_the_tensor_before_allocating() {
    for fixture in ["mixtral", "mixtral_fused"] {
        let ckpt = hostile(fixture, "ffn-2-24", set("intermediate_size", 1 << 24));
        refused_everywhere(&ckpt, &["has shape", "but the config implies"]);
    }
}

#[test]
fn num_local_experts_of_2_pow_31_is_refused_before_allocating() {
    let ckpt = hostile("mixtral", "experts-2-31", set("num_local_experts", 1 << 31));
    refused_everywhere(&ckpt, &["num_local_experts", "2147483648", "limit 65536"]);
}

#[test]
fn experts_beyond_the_checkpoint_are_refused_before_building_the_graph() {
    for fixture in ["mixtral", "mixtral_fused"] {
        let ckpt = hostile(fixture, "experts-9", set("num_local_experts", 9));
        refused_everywhere(
            &ckpt,
            &["`num_local_experts` = 9, but the checkpoint holds 4 experts per layer"],
        );
    }
}

/// A model whose one param, `w: f32[4, 64]` (1 KiB), feeds a `[tokens, 64]` gather.
const SMALL: &str = "model small\n\ndim tokens <= 64\n\nparam w: f32[4, 64]\n\n\
func forward(%ids: i32[tokens]) -> (f32[tokens, 64]) {\n  \
%e = gather(@w, %ids) : f32[tokens, 64]\n  return %e\n}\n";

fn write_model(test: &str, source: &str) -> String {
    let path = scratch(test).join("m.seam");
    std::fs::write(&path, source).unwrap();
    path.display().to_string()
}

#[test]
fn a_param_of_2_pow_40_elements_is_refused_by_eval_and_compile() {
    let big = "param w: f32[4, 64]\nparam big: f32[1099511627776]\n";
    let model = write_model("param-2-40", &SMALL.replace("param w: f32[4, 64]\n", big));
    let out = scratch("param-2-40-out").join("m.seamb");
    let runs: [Vec<&str>; 2] = [
        vec!["eval", &model, "--random-weights", "1", "--tokens", "1,2"],
        vec![
            "compile",
            &model,
            "--random-weights",
            "1",
            "-o",
            out.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let started = Instant::now();
        let o = seam(&args);
        let said = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {said}");
        assert!(!said.contains("panicked"), "{said}");
        assert!(said.contains("param `big`"), "{said}");
        assert!(said.contains("4398046511104 bytes (4096.0 GiB)"), "{said}");
        assert!(said.contains("over the memory budget"), "{said}");
        assert!(started.elapsed() < PROMPT);
    }
}

#[test]
fn the_memory_budget_is_read_from_seam_memory_budget() {
    let model = write_model("budget-env", SMALL);
    let eval = |budget: &str| {
        seam_with_env(
            &[
                "eval",
                &model,
                "--random-weights",
                "1",
                "--tokens",
                "0,1,2,3,0,1,2,3",
            ],
            &[("SEAM_MEMORY_BUDGET", budget)],
        )
    };
    assert!(eval("1M").status.success(), "{}", text(&eval("1M")));
    // The 1 KiB param fits 1536 bytes; the 2 KiB gather result does not.
    let o = eval("1536");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("value `%e` of `gather`"), "{}", text(&o));
    assert!(text(&o).contains("2048 bytes"), "{}", text(&o));
    let o = eval("1000");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("param `w`"), "{}", text(&o));
    let o = eval("plenty");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("SEAM_MEMORY_BUDGET = `plenty`"),
        "{}",
        text(&o)
    );
}

#[test]
fn sizes_whose_products_overflow_are_refused_by_the_tensor_shapes() {
    let ckpt = hostile("llama", "heads-2-24", |c| {
        for field in ["num_attention_heads", "num_key_value_heads", "head_dim"] {
            c[field] = (1u64 << 24).into();
        }
    });
    refused_everywhere(&ckpt, &["self_attn.q_proj.weight", "has shape"]);
}
