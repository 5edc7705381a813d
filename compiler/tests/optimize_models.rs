//! The optimizer on whole models: conversion round trips, the examples'
//! dense expansions folded back into `moe`, determinism, and seeded random graphs.

#[path = "../../ir/tests/support/random_graph.rs"]
mod random_graph;
#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::optimize::convert::{decode, encode};
use seam_compiler::optimize::cost::{CostModel, ExtractCost, Extraction};
use seam_compiler::optimize::{optimize, OptLevel, OptimizeOptions};
use seam_ir::{expand_all_moe, text, verify, Model};
use util::{assert_same_outputs, count, fired, parse, run, same_outputs_where_defined};

const TOL: f32 = 1e-5;

fn examples() -> Vec<(&'static str, Model)> {
    [
        ("readme_moe", include_str!("../../examples/readme_moe.seam")),
        (
            "pregated_topk",
            include_str!("../../examples/pregated_topk.seam"),
        ),
        (
            "mixtral_tiny",
            include_str!("../../examples/mixtral_tiny.seam"),
        ),
    ]
    .into_iter()
    .map(|(name, src)| (name, parse(src)))
    .collect()
}

/// Encode then decode with no rules: verifies, same outputs, names kept.
fn round_trip(model: &Model) -> Model {
    let mut out = model.clone();
    for (i, func) in model.functions.iter().enumerate() {
        let encoded = encode(model, func).expect("encode");
        let cost = CostModel::lavapipe();
        let ex = Extraction::new(&encoded.egraph, ExtractCost::new(&encoded.egraph, &cost));
        out.functions[i] = decode(func, &encoded, |c| ex.node(c)).expect("decode");
    }
    verify(&out).expect("round trip verifies");
    out
}

#[test]
fn round_trip_without_rules_preserves_models() {
    for (name, model) in examples() {
        let back = round_trip(&model);
        assert_same_outputs(&model, &back, 1, 0.0);
        // No CSE opportunity in the examples: every value keeps its name.
        let names = |m: &Model| {
            let mut v: Vec<String> = m.functions[0]
                .values
                .iter()
                .map(|v| v.name.clone())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&model), names(&back), "{name}");
    }
    for seed in 0..50 {
        let model = random_graph::random_model(seed);
        let back = round_trip(&model);
        same_outputs_where_defined(&model, &back, seed, 0.0);
    }
}

#[test]
fn examples_fold_back_into_moe() {
    for (name, model) in examples() {
        assert_eq!(count(&model, "moe"), 4, "{name}");
        let dense = expand_all_moe(&model).expect("expand");
        assert_eq!(count(&dense, "moe"), 0);
        let (opt, report) = run(&dense, OptLevel::O2);
        assert_eq!(count(&opt, "moe"), 4, "{name}: {report}");
        // With a shared expert the rule also fires on the experts' sum alone.
        let shared = model.params.iter().any(|p| p.name.contains("shared"));
        let expected = if shared { 8 } else { 4 };
        assert_eq!(fired(&report, "dense-to-moe"), expected, "{name}: {report}");
        assert_same_outputs(&model, &opt, 3, TOL);
        assert!(report.cost_after < report.cost_before, "{name}: {report}");
    }
}

#[test]
fn optimizing_is_deterministic() {
    for (name, model) in examples() {
        let dense = expand_all_moe(&model).expect("expand");
        let (a, ra) = run(&dense, OptLevel::O2);
        let (b, rb) = run(&dense, OptLevel::O2);
        assert_eq!(text::print(&a), text::print(&b), "{name}");
        assert_eq!(ra.rules_fired, rb.rules_fired, "{name}");
        assert_eq!(ra.egraph_nodes, rb.egraph_nodes, "{name}");
    }
}

#[test]
fn random_graphs_keep_verifying_and_computing_the_same() {
    let mut evaluated = 0;
    for seed in 0..50 {
        let model = random_graph::random_model(seed);
        let (opt, _) = run(&model, OptLevel::O2);
        verify(&opt).expect("optimized model verifies");
        evaluated += usize::from(same_outputs_where_defined(&model, &opt, seed, TOL));
    }
    // Some random graphs divide integers by zero on random data; most evaluate.
    assert!(
        evaluated >= 25,
        "only {evaluated} of 50 random graphs evaluated"
    );
}

/// A 32-layer, 64-expert model: the dense form folds back into 32 `moe` and
/// saturates within the default node and iteration limits. The time limit is
/// lifted so a loaded machine cannot fail the test: optimizer time is measured
/// by `cargo bench -p seam-compiler --bench optimize`. Prints the report
/// (`--nocapture`).
#[test]
fn large_dense_model_folds_back() {
    let mut config = seam_frontends::examples::readme_moe();
    config.layers = 32;
    config.experts = 64;
    let model = config.build().expect("build");
    let dense = expand_all_moe(&model).expect("expand");
    let started = std::time::Instant::now();
    let mut opts = OptimizeOptions::new(OptLevel::O2);
    opts.limits.time = std::time::Duration::from_secs(3600);
    let (opt, report) = optimize(&dense, &opts).expect("optimize");
    println!(
        "32x64: {} instrs dense -> {} optimized in {:.2} s\n{report}",
        dense.functions[0].body.len(),
        opt.functions[0].body.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(count(&opt, "moe"), 32, "{report}");
    assert_eq!(
        report.stop_reason,
        seam_compiler::optimize::StopReason::Saturated
    );
}

#[test]
fn readme_moe_report() {
    let model = examples().remove(0).1;
    let dense = expand_all_moe(&model).expect("expand");
    let started = std::time::Instant::now();
    let (_, report) = run(&dense, OptLevel::O2);
    println!(
        "readme_moe dense: {:.1} ms\n{report}",
        started.elapsed().as_secs_f64() * 1e3
    );
}

/// Every example at -O2 (and after folding its param-only values) computes
/// what it computed before, within 1e-5; prints the max differences
/// (`--nocapture`).
#[test]
fn examples_at_o2_compute_the_same() {
    use seam_compiler::fold::fold_params;
    use seam_ir::{evaluate, random_weights};
    let mut all = examples();
    for (name, src) in [
        (
            "pregated_dense",
            include_str!("../../examples/pregated_dense.seam"),
        ),
        (
            "ladder_residual",
            include_str!("../../examples/ladder_residual.seam"),
        ),
    ] {
        all.push((name, parse(src)));
    }
    for (name, model) in all {
        let (opt, report) = run(&model, OptLevel::O2);
        let weights = random_weights(&model, 7);
        let inputs = util::random_inputs(&model, 7);
        let before = evaluate(&model, "forward", &weights, &inputs).expect("before");
        let after = evaluate(&opt, "forward", &weights, &inputs).expect("after");
        let folded = fold_params(&opt, &weights).expect("fold");
        let after_fold =
            evaluate(&folded.model, "forward", &folded.weights, &inputs).expect("folded");
        assert_eq!(after, after_fold, "{name}: folding is exact");
        let diff = before[0]
            .to_f32_vec()
            .iter()
            .zip(after[0].to_f32_vec())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        println!(
            "{name}: -O2 max |before - after| = {diff:.3e}; {} instrs -> {}; fired {:?}",
            model.functions[0].body.len(),
            opt.functions[0].body.len(),
            report.rules_fired
        );
        assert!(diff <= TOL, "{name}: differs by {diff}");
    }
}
