//! The example families built with a KV cache: on the reference evaluator,
//! `prefill` of a prompt followed by `decode` steps gives the logits the
//! cache-free `forward` gives over the whole sequence (within 1e-5 relative to
//! the largest logit), and the state session enforces its bound and resets.

use seam_frontends::examples::{mixtral_tiny, pregated_topk, readme_moe, MoeTransformerConfig};
use seam_ir::eval::StateSession;
use seam_ir::{evaluate, random_weights, text, EvalError, Tensor};

/// A small member of the family, so the evaluator runs quickly.
fn small(mut c: MoeTransformerConfig, max_seq: u64) -> MoeTransformerConfig {
    c.layers = 2;
    c.d_model = 64;
    c.ffn = 96;
    c.shared_ffn = c.shared_ffn.map(|_| 80);
    c.vocab = 50;
    c.kv_cache = Some(max_seq);
    c
}

fn ids(n: usize) -> Vec<i32> {
    (0..n).map(|i| ((i * 17 + 3) % 50) as i32).collect()
}

/// Max |a − b| over max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn check_family(config: MoeTransformerConfig) {
    let name = config.name.clone();
    let model = small(config, 16).build().unwrap();
    let weights = random_weights(&model, 3);
    let (prompt, steps) = (5, 4);
    let all = ids(prompt + steps);
    let n = all.len();
    let full = evaluate(
        &model,
        "forward",
        &weights,
        &[Tensor::i32(vec![n], all.clone()).unwrap()],
    )
    .unwrap()[0]
        .to_f32_vec();
    let vocab = full.len() / n;
    let mut s = StateSession::new(&model, &weights);
    let pre = s
        .run(
            "prefill",
            &[Tensor::i32(vec![prompt], all[..prompt].to_vec()).unwrap()],
        )
        .unwrap();
    assert_eq!(pre.len(), 1, "states are not returned");
    assert_eq!(pre[0].shape, vec![prompt, vocab]);
    let err = rel_err(&pre[0].to_f32_vec(), &full[..prompt * vocab]);
    assert!(err <= 1e-5, "{name} prefill: {err}");
    for (t, &id) in all.iter().enumerate().skip(prompt) {
        let out = s
            .run("decode", &[Tensor::i32(vec![1], vec![id]).unwrap()])
            .unwrap();
        let err = rel_err(&out[0].to_f32_vec(), &full[t * vocab..(t + 1) * vocab]);
        assert!(err <= 1e-5, "{name} decode at {t}: {err}");
    }
    assert_eq!(s.length(), n);
}

#[test]
fn mixtral_prefill_then_decode_equals_forward() {
    check_family(mixtral_tiny());
}

#[test]
fn readme_moe_prefill_then_decode_equals_forward() {
    check_family(readme_moe());
}

#[test]
fn pregated_topk_prefill_then_decode_equals_forward() {
    check_family(pregated_topk());
}

#[test]
fn chunked_prefill_and_reset() {
    let model = small(mixtral_tiny(), 16).build().unwrap();
    let weights = random_weights(&model, 4);
    let all = ids(7);
    let full = evaluate(
        &model,
        "forward",
        &weights,
        &[Tensor::i32(vec![7], all.clone()).unwrap()],
    )
    .unwrap()[0]
        .to_f32_vec();
    let mut s = StateSession::new(&model, &weights);
    // A stale sequence first: reset must forget it.
    s.run("prefill", &[Tensor::i32(vec![3], vec![9, 9, 9]).unwrap()])
        .unwrap();
    s.reset();
    assert_eq!(s.length(), 0);
    let a = s
        .run(
            "prefill",
            &[Tensor::i32(vec![4], all[..4].to_vec()).unwrap()],
        )
        .unwrap();
    let b = s
        .run(
            "prefill",
            &[Tensor::i32(vec![3], all[4..].to_vec()).unwrap()],
        )
        .unwrap();
    let mut got = a[0].to_f32_vec();
    got.extend(b[0].to_f32_vec());
    assert!(rel_err(&got, &full) <= 1e-5);
}

#[test]
fn overflowing_the_cache_is_an_error() {
    let model = small(mixtral_tiny(), 6).build().unwrap();
    let weights = random_weights(&model, 5);
    let mut s = StateSession::new(&model, &weights);
    s.run("prefill", &[Tensor::i32(vec![5], ids(5)).unwrap()])
        .unwrap();
    s.run("decode", &[Tensor::i32(vec![1], vec![1]).unwrap()])
        .unwrap();
    let err = s
        .run("decode", &[Tensor::i32(vec![1], vec![1]).unwrap()])
        .unwrap_err();
    assert!(
        matches!(
            err,
            EvalError::StateFull {
                stored: 6,
                adding: 1,
                max: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--max-seq-len"), "{err}");
    assert_eq!(s.length(), 6, "a refused call leaves the state as it was");
}

#[test]
fn cached_models_print_and_parse_back() {
    for c in [mixtral_tiny(), readme_moe()] {
        let model = small(c, 32).build().unwrap();
        let printed = text::print(&model);
        assert!(
            printed.contains("state %l0.k_cache: f32[kv_len, 2, 16]"),
            "{printed}"
        );
        let (parsed, _) = text::parse_and_verify("m.seam", &printed).unwrap();
        assert_eq!(parsed, model);
    }
}
