//! `seam generate` end to end on the default device (lavapipe on CI): greedy
//! ids equal those from repeated full forwards on the reference evaluator, the
//! prefill logits file matches the evaluator, seeded sampling repeats, and bad
//! arguments are refused with the right exit code.

use std::path::Path;
use std::process::Output;

use seam_frontends::examples::mixtral_tiny;
use seam_ir::{evaluate, npy, random_weights, text, Model, Tensor};

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, text as text_of};

/// A small Mixtral-shaped model with a KV cache (its `kv_len` bound is 64,
/// compiled down to 12 with --max-seq-len).
fn small_model() -> Model {
    let mut c = mixtral_tiny();
    c.layers = 2;
    c.d_model = 64;
    c.ffn = 96;
    c.vocab = 40;
    c.with_kv_cache(64).build().unwrap()
}

const SEED: &str = "9";

/// Writes the model and compiles it into `dir/m.seamb`.
fn compiled(dir: &Path) -> String {
    let path = dir.join("m.seam");
    std::fs::write(&path, text::print(&small_model())).unwrap();
    let out = dir.join("m.seamb").display().to_string();
    let o = seam(&[
        "compile",
        &path.display().to_string(),
        "-o",
        &out,
        "--random-weights",
        SEED,
        "--max-seq-len",
        "12",
        "--force",
    ]);
    assert!(o.status.success(), "{}", text_of(&o));
    out
}

fn generated(o: &Output) -> Vec<i32> {
    let out = text_of(o);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("generated: "))
        .unwrap_or_else(|| panic!("no ids in:\n{out}"));
    line.split(',').map(|x| x.parse().unwrap()).collect()
}

fn argmax(row: &[f32]) -> i32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as i32
}

#[test]
fn greedy_generation_matches_repeated_forwards_on_the_evaluator() {
    let d = scratch("greedy");
    let bundle = compiled(&d);
    let logits_path = d.join("prefill.npy");
    let logits_arg = logits_path.display().to_string();
    let _ = std::fs::remove_file(&logits_path);
    let prompt = [3, 1, 4, 1, 5];
    let o = seam(&[
        "generate",
        &bundle,
        "--prompt-ids",
        "3,1,4,1,5",
        "--max-new-tokens",
        "6",
        "--logits-out",
        &logits_arg,
    ]);
    assert!(o.status.success(), "{}", text_of(&o));
    let out = text_of(&o);
    assert!(out.contains("prefill: 5 tokens in"), "{out}");
    assert!(out.contains("decode: 5 tokens in"), "{out}");
    assert!(out.contains("tokens/s"), "{out}");
    let ids = generated(&o);

    let model = small_model();
    let weights = random_weights(&model, SEED.parse().unwrap());
    let mut seq: Vec<i32> = prompt.to_vec();
    let mut expected = Vec::new();
    let mut prefill_logits = None;
    for _ in 0..6 {
        let n = seq.len();
        let logits = evaluate(
            &model,
            "forward",
            &weights,
            &[Tensor::i32(vec![n], seq.clone()).unwrap()],
        )
        .unwrap()
        .remove(0);
        let v = logits.to_f32_vec();
        let vocab = v.len() / n;
        prefill_logits.get_or_insert(v.clone());
        let next = argmax(&v[(n - 1) * vocab..]);
        expected.push(next);
        seq.push(next);
    }
    assert_eq!(ids, expected);

    let file = npy::read_npy(&std::fs::read(&logits_path).unwrap()).unwrap();
    assert_eq!(file.shape, vec![5, 40]);
    let (got, want) = (file.to_f32_vec(), prefill_logits.unwrap());
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1.0);
    let err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 1e-4 * scale, "prefill logits differ by {err}");

    // The logits file is not overwritten without --force.
    let o = seam(&[
        "generate",
        &bundle,
        "--prompt-ids",
        "1",
        "--logits-out",
        &logits_arg,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(text_of(&o).contains("--force"), "{}", text_of(&o));
}

#[test]
fn seeded_sampling_repeats_and_arguments_are_checked() {
    let d = scratch("sample");
    let bundle = compiled(&d);
    let sample = |seed: &str| {
        let o = seam(&[
            "generate",
            &bundle,
            "--prompt-ids",
            "2,7",
            "--max-new-tokens",
            "8",
            "--temperature",
            "1.5",
            "--top-p",
            "0.95",
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", text_of(&o));
        generated(&o)
    };
    let a = sample("11");
    assert_eq!(a.len(), 8);
    assert_eq!(a, sample("11"), "the same seed gives the same tokens");

    let refused = |args: &[&str], code: i32, says: &str| {
        let mut all = vec!["generate", bundle.as_str()];
        all.extend_from_slice(args);
        let o = seam(&all);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text_of(&o));
        assert!(text_of(&o).contains(says), "{args:?}: {}", text_of(&o));
    };
    refused(
        &["--prompt-ids", "1", "--temperature", "0"],
        2,
        "temperature",
    );
    refused(&["--prompt-ids", "1", "--top-p", "1.5"], 2, "top-p");
    refused(&["--prompt-ids", "1,-4"], 2, "not a token id");
    refused(&["--max-new-tokens", "2"], 2, "--prompt-ids");
    refused(
        &["--prompt-ids", "1,99", "--max-new-tokens", "2"],
        1,
        "outside the vocabulary 0..40",
    );
    // 5 prompt tokens + 8 decodes need 13 positions; the cache holds 12.
    refused(
        &["--prompt-ids", "1,2,3,4,5", "--max-new-tokens", "9"],
        1,
        "exceed the maximum 12",
    );
}

/// Fuzz regression: `--max-new-tokens 18446744073709551615` overflowed the
/// needed length (and then `Vec::with_capacity`) instead of being refused.
#[test]
fn max_new_tokens_of_u64_max_is_refused_not_a_capacity_overflow() {
    let d = scratch("maxnew");
    let bundle = compiled(&d);
    for prompt in ["1", "1,2,3"] {
        let o = seam(&[
            "generate",
            &bundle,
            "--prompt-ids",
            prompt,
            "--max-new-tokens",
            "18446744073709551615",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
        assert!(
            text_of(&o).contains("exceed the maximum 12"),
            "{}",
            text_of(&o)
        );
        assert!(!text_of(&o).contains("panicked"), "{}", text_of(&o));
    }
}

#[test]
fn bundles_without_a_cache_and_models_without_states_are_refused() {
    let d = scratch("nocache");
    let path = d.join("plain.seam");
    let mut c = mixtral_tiny();
    c.layers = 1;
    c.d_model = 64;
    c.ffn = 64;
    c.vocab = 16;
    std::fs::write(&path, text::print(&c.build().unwrap())).unwrap();
    let model = path.display().to_string();
    let out = d.join("plain.seamb").display().to_string();
    let o = seam(&[
        "compile",
        &model,
        "-o",
        &out,
        "--random-weights",
        "1",
        "--max-seq-len",
        "8",
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text_of(&o));
    assert!(text_of(&o).contains("has none"), "{}", text_of(&o));
    let o = seam(&[
        "compile",
        &model,
        "-o",
        &out,
        "--random-weights",
        "1",
        "--force",
    ]);
    assert!(o.status.success(), "{}", text_of(&o));
    let o = seam(&["generate", &out, "--prompt-ids", "1,2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o));
    assert!(text_of(&o).contains("no KV cache"), "{}", text_of(&o));
}

/// `seam bench` of the batched `step` at more tokens than its `batch` bound
/// (4): the sampled rows are capped at the bound, the tokens are not; past
/// the tokens' own bound it is a named error.
#[test]
fn bench_of_the_batched_step_caps_its_rows_at_the_bound() {
    let dir = scratch("bench_step");
    let bundle = compiled(&dir);
    let o = seam(&[
        "bench", &bundle, "--entry", "step", "--tokens", "1,10", "--iters", "1",
    ]);
    assert!(o.status.success(), "{}", text_of(&o));
    let out = text_of(&o);
    let rows = out.lines().filter(|l| l.starts_with("m.seamb")).count();
    assert_eq!(rows, 2, "{out}");
    let o = seam(&[
        "bench", &bundle, "--entry", "step", "--tokens", "100000", "--iters", "1",
    ]);
    assert!(!o.status.success(), "{}", text_of(&o));
    assert!(
        text_of(&o).contains("`tokens` is 100000, outside 1..="),
        "{}",
        text_of(&o)
    );
}
