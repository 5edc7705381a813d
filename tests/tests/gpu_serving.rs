//! The batched serving engine on the default device (lavapipe on CI), over
//! the `step` entry point of imported Hugging Face checkpoints and of the KV
//! examples:
//! - alone, it generates exactly the tokens `transformers` generated;
//! - batch invariance: every sequence decoded in a batch of 4 or 16 — mixed
//!   prompt and output lengths, prompts fed in chunks under a small token
//!   budget, sequences joining mid-way and leaving as they finish, greedy and
//!   seeded top-p — gets the same tokens as when decoded alone;
//! - the `step` logits of a sequence alone and sharing steps with others
//!   (other slots, chunks of its prompt split differently) agree within 1e-4
//!   relative, and with the reference evaluator's `step`;
//! - the engine refuses what does not fit, cancels, and frees its slots.

mod gpu_common;
mod hf_common;

use gpu_common::{load, runtime};
use hf_common::*;
use seam_compiler::optimize::OptLevel;
use seam_frontends::examples::{mixtral_tiny, readme_moe, MoeTransformerConfig};
use seam_ir::eval::StateSession;
use seam_ir::{random_weights, Model, Tensor, Weights};
use seam_runtime::generate::Sampling;
use seam_runtime::serving::{
    complete_all, Completion, Engine, EngineOptions, Finish, Request, RequestId,
};
use seam_runtime::{Error, HostTensor};

/// Sequences the test bundles' pools hold.
const SLOTS: u64 = 16;
/// Positions per slot.
const POSITIONS: u64 = 64;

/// A fixture imported with a KV cache and the batched step.
fn hf_model(name: &str) -> (Model, Weights) {
    imported_for_serving(name, POSITIONS, SLOTS)
}

/// An example with a KV cache and the batched step, random weights.
fn example(mut c: MoeTransformerConfig) -> (Model, Weights) {
    c.kv_cache = Some(POSITIONS);
    c.max_batch = Some(SLOTS);
    c.max_tokens = POSITIONS;
    let model = c.build().unwrap();
    let weights = random_weights(&model, 9);
    (model, weights)
}

fn engine(model: &seam_runtime::Model, max_batch: usize, budget: usize) -> Engine {
    let options = EngineOptions {
        max_batch: Some(max_batch),
        token_budget: Some(budget),
        ..EngineOptions::default()
    };
    Engine::new(model, options).unwrap()
}

/// Sixteen requests: prompts of 1 to 23 tokens, 4 to 15 new tokens, every
/// fourth sampled (seeded top-p), the rest greedy.
fn requests(vocab: usize) -> Vec<Request> {
    (0..16)
        .map(|k| {
            let len = 1 + (k * 7) % 23;
            let prompt = (0..len)
                .map(|i| ((i * 31 + k * 17 + 3) % vocab) as i32)
                .collect();
            let sampling = if k % 4 == 3 {
                Sampling::TopP {
                    temperature: 1.3,
                    top_p: 0.9,
                    seed: k as u64,
                }
            } else {
                Sampling::Greedy
            };
            Request {
                prompt,
                max_new_tokens: 4 + (k * 5) % 12,
                sampling,
                stop_ids: Vec::new(),
            }
        })
        .collect()
}

/// Each request decoded alone.
fn alone(model: &seam_runtime::Model, requests: &[Request]) -> Vec<Completion> {
    let mut e = engine(model, 1, POSITIONS as usize);
    requests
        .iter()
        .enumerate()
        .map(|(k, r)| {
            complete_all(&mut e, k as RequestId, vec![r.clone()])
                .unwrap()
                .remove(0)
        })
        .collect()
}

/// The requests decoded together by an engine of `max_batch` sequences and a
/// token budget of `budget`: half submitted at once, the rest after three
/// steps (joining running sequences); returns each one's tokens.
fn batched(
    model: &seam_runtime::Model,
    requests: &[Request],
    max_batch: usize,
    budget: usize,
) -> Vec<Vec<i32>> {
    let mut e = engine(model, max_batch, budget);
    let mut tokens = vec![Vec::new(); requests.len()];
    let mut finished = 0;
    let half = requests.len() / 2;
    for (k, r) in requests[..half].iter().enumerate() {
        e.submit(k as RequestId, r.clone()).unwrap();
    }
    let mut steps = 0;
    let mut peak = 0;
    while finished < requests.len() {
        if steps == 3 {
            for (k, r) in requests.iter().enumerate().skip(half) {
                e.submit(k as RequestId, r.clone()).unwrap();
            }
        }
        let events = e.step().unwrap();
        peak = peak.max(events.iter().filter(|ev| ev.token.is_some()).count());
        for event in events {
            if let Some(t) = event.token {
                tokens[event.id as usize].push(t);
            }
            if let Some(finish) = event.finish {
                assert_ne!(finish, Finish::Failed, "request {}", event.id);
                finished += 1;
            }
        }
        steps += 1;
        assert!(steps < 1000, "the engine does not finish");
    }
    // Sequences were sampled together (the token budget and early finishes
    // keep a batch of 16 from filling completely).
    assert!(peak >= max_batch * 3 / 4, "peak batch {peak}");
    println!("  batch {max_batch}: {steps} steps, peak {peak} sequences at once");
    assert_eq!(e.stats().running, 0);
    assert!(e.is_idle());
    tokens
}

/// Batch invariance of one model: every request's tokens decoded in batches
/// of 4 and 16 equal its tokens decoded alone.
fn check_batch_invariance(name: &str, model: &seam_runtime::Model, vocab: usize) {
    let requests = requests(vocab);
    let reference: Vec<Vec<i32>> = alone(model, &requests)
        .into_iter()
        .map(|c| c.tokens)
        .collect();
    for (k, (r, t)) in requests.iter().zip(&reference).enumerate() {
        assert_eq!(t.len(), r.max_new_tokens, "{name}: request {k} alone");
    }
    for (max_batch, budget) in [(4, 8), (16, 64)] {
        let got = batched(model, &requests, max_batch, budget);
        for (k, (g, want)) in got.iter().zip(&reference).enumerate() {
            assert_eq!(g, want, "{name}: request {k} in a batch of {max_batch}");
        }
        println!("{name}: batch {max_batch} (budget {budget}): 16 requests equal alone");
    }
}

#[test]
fn alone_the_engine_generates_what_transformers_did() {
    let rt = runtime();
    for &name in FIXTURES {
        let exp = expected(name);
        let (model, weights) = hf_model(name);
        let loaded = load(&rt, &model, &weights, OptLevel::O0);
        let mut e = engine(&loaded, 4, POSITIONS as usize);
        let request = Request {
            prompt: exp.prompt.clone(),
            max_new_tokens: exp.generated.len(),
            sampling: Sampling::Greedy,
            stop_ids: Vec::new(),
        };
        let done = complete_all(&mut e, 0, vec![request]).unwrap().remove(0);
        assert_eq!(done.tokens, exp.generated, "{name}");
        assert_eq!(done.finish, Finish::Length, "{name}");
    }
}

#[test]
fn hf_sequences_decode_the_same_in_a_batch_as_alone() {
    let rt = runtime();
    for name in ["llama", "mixtral", "readme"] {
        let (model, weights) = hf_model(name);
        let vocab = expected(name).logits.shape[1];
        let loaded = load(&rt, &model, &weights, OptLevel::O0);
        check_batch_invariance(name, &loaded, vocab);
    }
}

#[test]
fn example_sequences_decode_the_same_in_a_batch_as_alone_at_o2() {
    let rt = runtime();
    for config in [readme_moe(), mixtral_tiny()] {
        let name = format!("{} -O2", config.name);
        let vocab = config.vocab as usize;
        let (model, weights) = example(config);
        let loaded = load(&rt, &model, &weights, OptLevel::O2);
        check_batch_invariance(&name, &loaded, vocab);
    }
}

#[test]
fn the_engine_refuses_what_does_not_fit_and_frees_cancelled_slots() {
    let rt = runtime();
    let (model, weights) = example(mixtral_tiny());
    let loaded = load(&rt, &model, &weights, OptLevel::O0);
    let mut e = engine(&loaded, 2, 8);
    let request = |prompt: Vec<i32>, max_new_tokens| Request {
        prompt,
        max_new_tokens,
        sampling: Sampling::Greedy,
        stop_ids: Vec::new(),
    };
    // Too long for a slot: prompt + new - 1 positions over 64.
    assert!(matches!(
        e.submit(1, request(vec![1; 60], 6)),
        Err(Error::SequenceFull { max: 64, .. })
    ));
    assert!(e.submit(1, request(vec![1; 60], 5)).is_ok());
    e.cancel(1);
    for bad in [
        request(vec![], 4),
        request(vec![1024], 4),
        request(vec![1], 0),
    ] {
        assert!(matches!(e.submit(2, bad), Err(Error::Input(_))));
    }
    let sampled = Request {
        sampling: Sampling::TopP {
            temperature: 0.0,
            top_p: 0.5,
            seed: 1,
        },
        ..request(vec![1], 1)
    };
    assert!(matches!(e.submit(2, sampled), Err(Error::Sampling(_))));
    // Three requests on two slots: the third waits; a cancelled waiting or
    // running request is reported at the next step, and frees its slot.
    e.submit(2, request(vec![2, 3], 30)).unwrap();
    assert!(e.submit(2, request(vec![1], 1)).is_err(), "a duplicate id");
    e.submit(3, request(vec![4], 30)).unwrap();
    e.submit(4, request(vec![5], 30)).unwrap();
    let cancelled = |events: &[seam_runtime::serving::StepEvent], id| {
        events
            .iter()
            .any(|ev| ev.id == id && ev.finish == Some(Finish::Cancelled))
    };
    let events = e.step().unwrap();
    assert!(cancelled(&events, 1), "{events:?}");
    assert_eq!((e.stats().running, e.stats().waiting), (2, 1));
    e.cancel(2);
    e.cancel(4);
    let events = e.step().unwrap();
    assert!(cancelled(&events, 2) && cancelled(&events, 4), "{events:?}");
    assert_eq!((e.stats().running, e.stats().waiting), (1, 0));
    e.cancel(3);
    e.step().unwrap();
    assert!(e.is_idle());
    // Options past the bundle's bounds.
    let too_many = EngineOptions {
        max_batch: Some(SLOTS as usize + 1),
        ..EngineOptions::default()
    };
    assert!(matches!(
        Engine::new(&loaded, too_many),
        Err(Error::Input(_))
    ));
    // A stop id ends a sequence with the token reported.
    let greedy = complete_all(&mut e, 10, vec![request(vec![7, 8, 9], 6)])
        .unwrap()
        .remove(0);
    let stop = greedy.tokens[2];
    let stopped = complete_all(
        &mut e,
        20,
        vec![Request {
            stop_ids: vec![stop],
            ..request(vec![7, 8, 9], 6)
        }],
    )
    .unwrap()
    .remove(0);
    let first = greedy.tokens.iter().position(|&t| t == stop).unwrap();
    assert_eq!(stopped.tokens, greedy.tokens[..=first]);
    assert_eq!(stopped.finish, Finish::Stop);
}

/// A token of a `step` call: (slot, position, id).
type StepToken = (i32, i32, i32);

/// A `step` call: its tokens, the rows sampled, and which row (if any) is
/// the alone run's call `i` for the sequence checked.
type StepCall = (Vec<StepToken>, Vec<i32>, Option<usize>);

/// One `step` call's inputs: (slot, position, id) per token, sampled rows.
fn step_inputs(tokens: &[StepToken], rows: &[i32]) -> (Vec<HostTensor>, Vec<Tensor>) {
    let column = |f: fn(&StepToken) -> i32| tokens.iter().map(f).collect::<Vec<i32>>();
    let columns = [
        column(|t| t.2),
        column(|t| t.0),
        column(|t| t.1),
        rows.to_vec(),
    ];
    let host = columns
        .iter()
        .map(|c| HostTensor::from_i32(vec![c.len()], c).unwrap())
        .collect();
    let reference = columns
        .iter()
        .map(|c| Tensor::i32(vec![c.len()], c.clone()).unwrap())
        .collect();
    (host, reference)
}

/// Max |a − b| over max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1.0);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn step_logits_alone_and_in_a_batch_agree_and_match_the_evaluator() {
    let rt = runtime();
    for config in [readme_moe(), mixtral_tiny()] {
        let name = config.name.clone();
        let (model, weights) = example(config);
        let loaded = load(&rt, &model, &weights, OptLevel::O2);
        let step = loaded.entry("step").unwrap();
        let a: Vec<i32> = (0..12).map(|i| (i * 53 + 7) % 1024).collect();
        let b: Vec<i32> = (0..9).map(|i| (i * 29 + 400) % 1024).collect();
        // Alone: `a` in slot 0, its prompt in one step, then two decode tokens.
        let mut alone = loaded.session().unwrap();
        let mut rows_alone = Vec::new();
        let whole: Vec<StepToken> = (0..10).map(|p| (0, p, a[p as usize])).collect();
        let calls = [whole, vec![(0, 10, a[10])], vec![(0, 11, a[11])]];
        for tokens in &calls {
            let (host, _) = step_inputs(tokens, &[tokens.len() as i32 - 1]);
            rows_alone.push(alone.run(&step, &host).unwrap().remove(0).to_f32());
        }
        // Batched: `a` in slot 5, its prompt in chunks of 6 and 4 beside `b`'s
        // prompt in slot 2, then decode tokens of both; on the GPU and on the
        // evaluator's `step`.
        let mut gpu = loaded.session().unwrap();
        let mut cpu = StateSession::new(&model, &weights);
        let chunk = |seq: &[i32], slot, range: std::ops::Range<i32>| -> Vec<StepToken> {
            range.map(|p| (slot, p, seq[p as usize])).collect()
        };
        let batched: [StepCall; 4] = [
            (
                [chunk(&b, 2, 0..5), chunk(&a, 5, 0..6)].concat(),
                vec![4],
                None,
            ),
            (
                [chunk(&a, 5, 6..10), chunk(&b, 2, 5..9)].concat(),
                vec![3, 7],
                Some(0),
            ),
            (
                [chunk(&b, 2, 9..9), chunk(&a, 5, 10..11)].concat(),
                vec![0],
                Some(1),
            ),
            (
                [chunk(&a, 5, 11..12), chunk(&b, 2, 0..0)].concat(),
                vec![0],
                Some(2),
            ),
        ];
        let mut worst = (0f32, 0f32);
        for (k, (tokens, rows, a_row)) in batched.iter().enumerate() {
            let (host, reference) = step_inputs(tokens, rows);
            let got = gpu.run(&step, &host).unwrap().remove(0);
            let want = cpu.run("step", &reference).unwrap().remove(0);
            let vs_evaluator = rel_err(&got.to_f32(), &want.to_f32_vec());
            assert!(
                vs_evaluator <= 1e-4,
                "{name} step {k}: {vs_evaluator} vs the evaluator"
            );
            worst.0 = worst.0.max(vs_evaluator);
            if let Some(i) = a_row {
                let vocab = got.shape()[1];
                // `a`'s row: the first of the step's rows.
                let row = &got.to_f32()[..vocab];
                let vs_alone = rel_err(row, &rows_alone[*i]);
                assert!(vs_alone <= 1e-4, "{name} step {k}: {vs_alone} vs alone");
                worst.1 = worst.1.max(vs_alone);
            }
        }
        println!(
            "{name}: step logits vs the evaluator {:.2e}, batched vs alone {:.2e}",
            worst.0, worst.1
        );
    }
}
