//! Expert-aware batching on the default device (lavapipe on CI): sixteen
//! requests on sixteen slots, eight fed per step, picked by
//! [`ExpertAware`] from the routing the bundle's `route` gives before each
//! step, generate exactly the tokens first-come-first-served gives each of
//! them (the engine is batch-invariant, and `route` never changes what
//! `step` computes); every step is routed and its experts counted. A model
//! with in-layer routers has no `route`: the policy then picks without
//! routing, with the same tokens.

mod gpu_common;

use gpu_common::{load, runtime};
use seam_compiler::optimize::OptLevel;
use seam_frontends::examples::{mixtral_tiny, pregated_topk, MoeTransformerConfig};
use seam_ir::random_weights;
use seam_runtime::generate::Sampling;
use seam_runtime::serving::{
    complete_all, Engine, EngineOptions, EngineStats, ExpertAware, FirstComeFirstServed, Request,
    SchedulePolicy,
};

/// Sequences the test bundles' pools hold.
const SLOTS: u64 = 16;
/// Positions per slot.
const POSITIONS: u64 = 64;

/// Sixteen requests: prompts of 1 to 23 tokens, 4 to 23 new tokens, every
/// fourth sampled (seeded top-p), the rest greedy.
fn requests(vocab: usize) -> Vec<Request> {
    (0..16)
        .map(|k| Request {
            prompt: (0..1 + (k * 7) % 23)
                .map(|i| ((i * 31 + k * 17 + 3) % vocab) as i32)
                .collect(),
            max_new_tokens: 4 + (k * 5) % 20,
            sampling: if k % 4 == 3 {
                Sampling::TopP {
                    temperature: 1.3,
                    top_p: 0.9,
                    seed: k as u64,
                }
            } else {
                Sampling::Greedy
            },
            stop_ids: Vec::new(),
        })
        .collect()
}

/// Every request's tokens under `policy`, on 16 slots feeding `step_batch`
/// per step (prompts in chunks of at most 16 tokens), and the engine's stats.
fn run(
    model: &seam_runtime::Model,
    requests: &[Request],
    step_batch: usize,
    policy: Box<dyn SchedulePolicy>,
) -> (Vec<Vec<i32>>, EngineStats, bool) {
    let options = EngineOptions {
        max_batch: Some(SLOTS as usize),
        step_batch: Some(step_batch),
        token_budget: Some(16),
        policy,
        count_experts: true,
        ..EngineOptions::default()
    };
    let mut engine = Engine::new(model, options).unwrap();
    let done = complete_all(&mut engine, 0, requests.to_vec()).unwrap();
    let tokens = done.into_iter().map(|c| c.tokens).collect();
    (tokens, engine.stats(), engine.knows_routing())
}

fn check(config: MoeTransformerConfig, pre_gated: bool) {
    let mut c = config;
    c.kv_cache = Some(POSITIONS);
    c.max_batch = Some(SLOTS);
    c.max_tokens = POSITIONS;
    let vocab = c.vocab as usize;
    let model = c.build().unwrap();
    assert_eq!(model.function("route").is_some(), pre_gated, "{}", c.name);
    let weights = random_weights(&model, 11);
    let rt = runtime();
    let loaded = load(&rt, &model, &weights, OptLevel::O0);
    let requests = requests(vocab);
    let (fcfs, fcfs_stats, _) = run(&loaded, &requests, 8, Box::new(FirstComeFirstServed));
    let (aware, stats, routed) = run(&loaded, &requests, 8, Box::new(ExpertAware::default()));
    for (k, (a, f)) in aware.iter().zip(&fcfs).enumerate() {
        assert_eq!(
            a.len(),
            requests[k].max_new_tokens,
            "{}: request {k}",
            c.name
        );
        assert_eq!(a, f, "{}: request {k}, expert-aware against fcfs", c.name);
    }
    assert_eq!(routed, pre_gated, "{}", c.name);
    let per_step = |s: &EngineStats| s.expert_pairs as f64 / s.routed_steps.max(1) as f64;
    if pre_gated {
        assert_eq!(stats.routed_steps, stats.steps, "{}", c.name);
        assert_eq!(fcfs_stats.routed_steps, fcfs_stats.steps, "{}", c.name);
        assert!(per_step(&stats) > 0.0, "{}", c.name);
    } else {
        assert_eq!(
            (stats.routed_steps, stats.expert_pairs),
            (0, 0),
            "{}",
            c.name
        );
    }
    println!(
        "{}: 16 requests, 8 per step: expert-aware equals fcfs; {} vs {} steps, \
         {:.2} vs {:.2} (head, expert) pairs per step",
        c.name,
        stats.steps,
        fcfs_stats.steps,
        per_step(&stats),
        per_step(&fcfs_stats)
    );
}

#[test]
fn expert_aware_batches_generate_what_fcfs_does() {
    check(pregated_topk(), true);
    check(mixtral_tiny(), false);
}
