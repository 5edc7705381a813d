//! The batched `step` entry point on the reference evaluator: several
//! sequences sharing steps — prompt chunks of two sequences in one step,
//! then decode tokens of both plus a third sequence's whole prompt, in slots
//! out of order — give, for every sampled row, the logits of the cache-free
//! `forward` over that sequence's tokens so far (within 1e-5 relative to the
//! largest logit), for every supported architecture and the KV examples.
//! And the `route` entry point of a pre-gating model returns, for the same
//! tokens, exactly the expert ids `step` then uses (none for in-layer routers).

use std::path::PathBuf;

use seam_frontends::examples::{mixtral_tiny, pregated_topk, readme_moe};
use seam_frontends::hf::{import, ImportOptions};
use seam_ir::eval::StateSession;
use seam_ir::{evaluate, random_weights, Model, Operand, Tensor, Weights};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(name)
}

fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// One step's tokens: (sequence, token id) in feeding order, and which of
/// them are sampled (their logits returned).
struct Step {
    tokens: Vec<(usize, i32)>,
    rows: Vec<usize>,
}

/// Three sequences in slots 2, 0 and 3: sequence 0's and 1's prompts split
/// over two steps, then a step with a decode token of each and sequence 2's
/// whole prompt, then two decode steps of all three.
fn schedule(vocab: usize) -> (Vec<Vec<i32>>, Vec<Step>) {
    let seq = |len: usize, salt: usize| -> Vec<i32> {
        (0..len)
            .map(|i| ((i * 37 + salt * 11 + 1) % vocab) as i32)
            .collect()
    };
    let seqs = vec![seq(9, 1), seq(6, 2), seq(7, 3)];
    let steps = vec![
        Step {
            tokens: (0..4)
                .map(|i| (0, seqs[0][i]))
                .chain((0..3).map(|i| (1, seqs[1][i])))
                .collect(),
            rows: vec![6],
        },
        Step {
            tokens: (4..7)
                .map(|i| (0, seqs[0][i]))
                .chain((3..5).map(|i| (1, seqs[1][i])))
                .collect(),
            rows: vec![2, 4],
        },
        Step {
            tokens: [(0, seqs[0][7]), (1, seqs[1][5])]
                .into_iter()
                .chain((0..5).map(|i| (2, seqs[2][i])))
                .collect(),
            rows: vec![0, 1, 6],
        },
        Step {
            tokens: vec![(2, seqs[2][5]), (0, seqs[0][8])],
            rows: vec![0, 1],
        },
        Step {
            tokens: vec![(2, seqs[2][6])],
            rows: vec![0],
        },
    ];
    (seqs, steps)
}

/// Step `k`'s `ids`, `slots` and `positions` for sequences in `slot_of`,
/// advancing `fed`; and each token's end (its sequence's length after it).
fn token_inputs(step: &Step, slot_of: &[i32], fed: &mut [usize]) -> (Vec<Tensor>, Vec<usize>) {
    let mut positions = Vec::new();
    let mut slots = Vec::new();
    let mut ends = Vec::new();
    for &(s, _) in &step.tokens {
        positions.push(fed[s] as i32);
        slots.push(slot_of[s]);
        fed[s] += 1;
        ends.push(fed[s]);
    }
    let ids: Vec<i32> = step.tokens.iter().map(|&(_, t)| t).collect();
    let t = ids.len();
    let inputs = vec![
        Tensor::i32(vec![t], ids).unwrap(),
        Tensor::i32(vec![t], slots).unwrap(),
        Tensor::i32(vec![t], positions).unwrap(),
    ];
    (inputs, ends)
}

fn check(name: &str, model: &Model, weights: &Weights) {
    let slot_of = [2, 0, 3];
    let mut fed = [0usize; 3];
    let mut session = StateSession::new(model, weights);
    let vocab = {
        let out = evaluate(
            model,
            "forward",
            weights,
            &[Tensor::i32(vec![1], vec![0]).unwrap()],
        )
        .unwrap()
        .remove(0);
        out.shape[1]
    };
    let (seqs, steps) = schedule(vocab);
    let mut worst = 0f32;
    for (k, step) in steps.iter().enumerate() {
        let (mut inputs, ends) = token_inputs(step, &slot_of, &mut fed);
        let rows: Vec<i32> = step.rows.iter().map(|&r| r as i32).collect();
        inputs.push(Tensor::i32(vec![rows.len()], rows).unwrap());
        let logits = session.run("step", &inputs).unwrap().remove(0);
        assert_eq!(logits.shape, [step.rows.len(), vocab], "{name} step {k}");
        let logits = logits.to_f32_vec();
        for (b, &row) in step.rows.iter().enumerate() {
            let (s, _) = step.tokens[row];
            let upto = ends[row];
            let whole = evaluate(
                model,
                "forward",
                weights,
                &[Tensor::i32(vec![upto], seqs[s][..upto].to_vec()).unwrap()],
            )
            .unwrap()
            .remove(0)
            .to_f32_vec();
            let want = &whole[(upto - 1) * vocab..];
            let err = rel_err(&logits[b * vocab..(b + 1) * vocab], want);
            assert!(
                err <= 1e-5,
                "{name} step {k} row {row} (sequence {s}): {err}"
            );
            worst = worst.max(err);
        }
    }
    println!("{name}: 5 steps, 3 sequences: worst rel err vs forward {worst:.2e}");
}

#[test]
fn imported_steps_equal_forward_on_the_evaluator() {
    for name in ["llama", "mixtral", "qwen2_moe", "olmoe", "readme"] {
        let options = ImportOptions {
            kv_cache: Some(16),
            max_batch: Some(4),
            ..ImportOptions::default()
        };
        let m = import(&fixture(name), &options).unwrap();
        check(name, &m.model, &m.weights);
    }
}

#[test]
fn example_steps_equal_forward_on_the_evaluator() {
    for config in [readme_moe(), mixtral_tiny()] {
        let config = config.with_kv_cache(16);
        let model = config.build().unwrap();
        let weights = random_weights(&model, 3);
        check(&config.name, &model, &weights);
    }
}

/// `model` with `step` also returning the expert ids its MoE layers read
/// (after its own outputs, so the state bindings stay), and how many.
fn step_returning_expert_ids(model: &Model) -> (Model, usize) {
    let mut model = model.clone();
    let step = model
        .functions
        .iter_mut()
        .find(|f| f.name == "step")
        .unwrap();
    let mut ids = Vec::new();
    for instr in &step.body {
        if instr.op.name() == "moe" {
            if let Operand::Value(v) = instr.operands[1] {
                if !ids.contains(&v) {
                    ids.push(v);
                }
            }
        }
    }
    step.outputs.extend(&ids);
    (model, ids.len())
}

/// Before every step of the schedule, `route` on the step's tokens; its ids
/// must equal those `step` computes for the same tokens (the shared router
/// head routing every layer, or one head per layer).
fn check_route(name: &str, model: &Model, weights: &Weights) {
    let (model, layers) = step_returning_expert_ids(model);
    let heads = model.function("route").unwrap().outputs.len() - 2;
    let slot_of = [2, 0, 3];
    let mut fed = [0usize; 3];
    let mut session = StateSession::new(&model, weights);
    let (_, steps) = schedule(64);
    for (k, step) in steps.iter().enumerate() {
        let (mut inputs, _) = token_inputs(step, &slot_of, &mut fed);
        let routed = session.run("route", &inputs).unwrap();
        assert_eq!(routed.len(), heads, "{name}");
        let rows: Vec<i32> = step.rows.iter().map(|&r| r as i32).collect();
        inputs.push(Tensor::i32(vec![rows.len()], rows).unwrap());
        let stepped = session.run("step", &inputs).unwrap();
        let used = &stepped[stepped.len() - layers..];
        for (l, ids) in used.iter().enumerate() {
            let head = &routed[l.min(heads - 1)];
            assert_eq!(head.shape, ids.shape, "{name} step {k} layer {l}");
            assert_eq!(
                head.to_i64_vec(),
                ids.to_i64_vec(),
                "{name} step {k} layer {l}"
            );
        }
    }
}

#[test]
fn route_returns_the_expert_ids_step_uses_on_the_evaluator() {
    for config in [readme_moe(), pregated_topk()] {
        let config = config.with_kv_cache(16);
        let model = config.build().unwrap();
        let weights = random_weights(&model, 5);
        check_route(&config.name, &model, &weights);
    }
    let mixtral = mixtral_tiny().with_kv_cache(16).build().unwrap();
    assert!(mixtral.function("step").is_some());
    assert!(mixtral.function("route").is_none());
}
