//! Checkpoints imported with a KV cache: on the reference evaluator, `prefill`
//! of the fixture's prompt then `decode` of its recorded greedy tokens give the
//! logits of the cache-free `forward` over the whole sequence (within 1e-5
//! relative to the largest logit), for every supported architecture.

use std::path::PathBuf;

use seam_frontends::hf::{import, ImportOptions};
use seam_ir::eval::StateSession;
use seam_ir::{evaluate, Tensor};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(name)
}

/// A fixture's prompt and generated ids (from expected.json, as make_fixtures.py writes it).
fn sequence(name: &str) -> Vec<i32> {
    let json = std::fs::read_to_string(fixture(name).join("expected.json")).unwrap();
    let ints = |key: &str| -> Vec<i32> {
        let start = json.find(&format!("\"{key}\"")).unwrap();
        let open = start + json[start..].find('[').unwrap();
        let close = open + json[open..].find(']').unwrap();
        json[open + 1..close]
            .split(',')
            .map(|s| s.trim().parse().unwrap())
            .collect()
    };
    let mut seq = ints("prompt");
    seq.extend(ints("generated"));
    seq
}

fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn cached_imports_equal_forward_on_the_evaluator() {
    for name in ["llama", "mixtral", "qwen2_moe", "olmoe", "readme"] {
        let options = ImportOptions {
            kv_cache: Some(32),
            ..ImportOptions::default()
        };
        let m = import(&fixture(name), &options).unwrap();
        let seq = sequence(name);
        let n = seq.len();
        let full = evaluate(
            &m.model,
            "forward",
            &m.weights,
            &[Tensor::i32(vec![n], seq.clone()).unwrap()],
        )
        .unwrap()
        .remove(0)
        .to_f32_vec();
        let vocab = full.len() / n;
        let prompt = 8;
        let mut s = StateSession::new(&m.model, &m.weights);
        let pre = s
            .run(
                "prefill",
                &[Tensor::i32(vec![prompt], seq[..prompt].to_vec()).unwrap()],
            )
            .unwrap();
        let mut got = pre[0].to_f32_vec();
        for &id in &seq[prompt..] {
            let out = s
                .run("decode", &[Tensor::i32(vec![1], vec![id]).unwrap()])
                .unwrap();
            got.extend(out[0].to_f32_vec());
        }
        let err = rel_err(&got, &full);
        assert!(err <= 1e-5, "{name}: {err}");
        assert_eq!(got.len(), n * vocab);
    }
}
