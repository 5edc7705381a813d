//! Imported Hugging Face checkpoints against `transformers` on the reference
//! evaluator: prompt logits within 1e-4 and identical greedy tokens, for every
//! supported architecture.

mod hf_common;

use hf_common::*;

/// Prompt logits: evaluator vs the recorded reference.
fn logits_match(name: &str) {
    let m = imported(name);
    let exp = expected(name);
    let got = eval_logits(&m, &exp.prompt);
    assert_eq!(got.shape, exp.logits.shape, "{name}: logits shape");
    let err = max_abs_diff(&got.to_f32_vec(), &exp.logits.to_f32_vec());
    println!("{name}: evaluator max |Δlogit| = {err:.3e}");
    assert!(err <= TOLERANCE, "{name}: max |Δlogit| {err} > {TOLERANCE}");
}

/// Greedy decoding by repeated full forwards equals the recorded tokens.
fn greedy_matches(name: &str) {
    let m = imported(name);
    let exp = expected(name);
    let vocab = exp.logits.shape[1];
    let mut seq = exp.prompt.clone();
    for _ in 0..exp.generated.len() {
        let logits = eval_logits(&m, &seq).to_f32_vec();
        seq.push(argmax_last_row(&logits, vocab));
    }
    assert_eq!(
        &seq[exp.prompt.len()..],
        exp.generated.as_slice(),
        "{name}: greedy tokens"
    );
}

macro_rules! fidelity_tests {
    ($($arch:ident),*) => {$(
        mod $arch {
            #[test]
            fn prompt_logits_match_reference() {
                super::logits_match(stringify!($arch));
            }

            #[test]
            fn greedy_tokens_match_reference() {
                super::greedy_matches(stringify!($arch));
            }
        }
    )*};
}

fidelity_tests!(llama, mixtral, qwen2_moe, olmoe, readme);

#[test]
fn every_fixture_is_tested() {
    assert_eq!(
        FIXTURES,
        ["llama", "mixtral", "qwen2_moe", "olmoe", "readme"]
    );
}

#[test]
fn transformers_5_fused_expert_layout_imports_the_same_weights() {
    // `mixtral_fused` is `mixtral` saved with `save_original_format=False`:
    // fused `gate_up_proj` [E, 2F, D] / `down_proj` [E, D, F], `mlp.gate` router.
    let original = imported("mixtral");
    let fused = imported("mixtral_fused");
    assert_eq!(fused.weights, original.weights);
    let exp = expected("mixtral");
    let got = eval_logits(&fused, &exp.prompt);
    let err = max_abs_diff(&got.to_f32_vec(), &exp.logits.to_f32_vec());
    assert!(err <= TOLERANCE, "mixtral_fused: max |Δlogit| {err}");
}
