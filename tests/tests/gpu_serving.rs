//! The batched serving engine on the default device (lavapipe on CI), over
//! the `step` entry point of imported Hugging Face checkpoints and of the KV
//! examples:
//! - alone, it generates exactly the tokens `transformers` generated;
//! - batch invariance: every sequence decoded in a batch of 4 or 16 — mixed
//!   prompt and output lengths, prompts fed in chunks under a small token
//!   budget, sequences joining mid-way and leaving as they finish, greedy and
//!   seeded top-p — gets the same tokens as when decoded alone;
//! - the engine refuses what does not fit, cancels, and frees its slots.

mod hf_common;

use hf_common::*;
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_frontends::examples::{mixtral_tiny, readme_moe, MoeTransformerConfig};
use seam_frontends::hf::{import, ImportOptions};
use seam_ir::{random_weights, Model, Weights};
use seam_runtime::bundle::BundleReader;
use seam_runtime::generate::Sampling;
use seam_runtime::serving::{
    complete_all, Completion, Engine, EngineOptions, Finish, Request, RequestId,
};
use seam_runtime::{DeviceOptions, Error, Runtime};

/// Sequences the test bundles' pools hold.
const SLOTS: u64 = 16;
/// Positions per slot.
const POSITIONS: u64 = 64;

fn runtime() -> Runtime {
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)")
}

fn load(rt: &Runtime, model: &Model, weights: &Weights, opt: OptLevel) -> seam_runtime::Model {
    let options = CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), opt);
    let bytes = compile(model, weights, &options)
        .unwrap()
        .bundle
        .to_bytes()
        .unwrap();
    rt.load_bundle(BundleReader::from_bytes(bytes).unwrap())
        .unwrap()
}

/// A fixture imported with a KV cache and the batched step.
fn hf_model(name: &str) -> (Model, Weights) {
    let options = ImportOptions {
        kv_cache: Some(POSITIONS),
        max_tokens: Some(POSITIONS),
        max_batch: Some(SLOTS),
    };
    let m = import(&fixture_dir(name), &options).unwrap();
    (m.model, m.weights)
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

/// Sixteen requests: prompts of 1 to 23 tokens, 1 to 10 new tokens, every
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
                max_new_tokens: 1 + (k * 5) % 10,
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
        .map(|(k, r)| complete_all(&mut e, k as RequestId, vec![r.clone()]).unwrap().remove(0))
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
        for event in e.step().unwrap() {
            if let Some(t) = event.token {
                tokens[event.id as usize].push(t);
            }
            if let Some(finish) = event.finish {
                assert_ne!(finish, Finish::Failed, "request {}", event.id);
                finished += 1;
            }
        }
        peak = peak.max(e.stats().running);
        steps += 1;
        assert!(steps < 1000, "the engine does not finish");
    }
    assert_eq!(peak, max_batch.min(requests.len()), "the batch filled up");
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
    for bad in [request(vec![], 4), request(vec![1024], 4), request(vec![1], 0)] {
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
    assert!(matches!(Engine::new(&loaded, too_many), Err(Error::Input(_))));
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
