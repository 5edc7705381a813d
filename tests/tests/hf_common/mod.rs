//! The Hugging Face fixtures (tests/fixtures/hf, made by make_fixtures.py):
//! a checkpoint per architecture with the logits and greedy tokens that
//! `transformers` (or, for Read-ME, the script's PyTorch reference) produced.

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;

use seam_frontends::hf::{import, ImportOptions, Imported};
use seam_ir::{evaluate, read_npy, Model, Tensor, Weights};

/// Every fixture, one per supported architecture.
pub const FIXTURES: &[&str] = &["llama", "mixtral", "qwen2_moe", "olmoe", "readme"];

/// The largest |Δlogit| accepted against the reference (f32 checkpoints).
pub const TOLERANCE: f32 = 1e-4;

/// A fixture's checkpoint folder.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hf")
        .join(name)
}

/// What the reference recorded for a fixture.
pub struct Expected {
    /// The prompt ids.
    pub prompt: Vec<i32>,
    /// The greedy new tokens.
    pub generated: Vec<i32>,
    /// Logits of one forward over the prompt, `[prompt, vocab]`.
    pub logits: Tensor,
}

fn ints(json: &str, key: &str) -> Vec<i32> {
    // The file is written by make_fixtures.py: `"key": [\n 1,\n 2 ...]`.
    let start = json.find(&format!("\"{key}\"")).expect(key);
    let open = start + json[start..].find('[').unwrap();
    let close = open + json[open..].find(']').unwrap();
    json[open + 1..close]
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect()
}

/// Reads a fixture's expected.json and logits.npy.
pub fn expected(name: &str) -> Expected {
    let dir = fixture_dir(name);
    let json = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let logits = read_npy(&std::fs::read(dir.join("logits.npy")).unwrap()).unwrap();
    Expected {
        prompt: ints(&json, "prompt"),
        generated: ints(&json, "generated"),
        logits,
    }
}

/// Imports a fixture.
pub fn imported(name: &str) -> Imported {
    import(&fixture_dir(name), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("importing {name}: {e}"))
}

/// Reference-evaluator logits for `ids`.
pub fn eval_logits(m: &Imported, ids: &[i32]) -> Tensor {
    let input = Tensor::i32(vec![ids.len()], ids.to_vec()).unwrap();
    evaluate(&m.model, "forward", &m.weights, &[input])
        .unwrap()
        .remove(0)
}

/// Max |a − b| over two equally shaped f32 tensors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// The index of the largest value of each `vocab`-wide row (first on ties).
pub fn argmax_last_row(logits: &[f32], vocab: usize) -> i32 {
    let row = &logits[logits.len() - vocab..];
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as i32
}

/// Fixture `name` imported for serving: a KV cache of `positions` and the
/// batched `step` over `slots` pool slots.
pub fn imported_for_serving(name: &str, positions: u64, slots: u64) -> (Model, Weights) {
    let options = ImportOptions {
        kv_cache: Some(positions),
        max_tokens: Some(positions),
        max_batch: Some(slots),
    };
    let m = import(&fixture_dir(name), &options).unwrap();
    (m.model, m.weights)
}
