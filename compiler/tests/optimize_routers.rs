//! The router rules on small models and the examples: where `merge-matmuls` and
//! `hoist-routes` must fire and win extraction, where they must not fire, and
//! reference-evaluator equality before vs after (1e-5). Also compile-time
//! folding of the merged weights.

#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::fold::fold_params;
use seam_compiler::optimize::OptLevel;
use seam_ir::{evaluate, random_weights, Model, Operand};
use util::{assert_same_outputs, count, fired, parse, random_inputs, run};

const TOL: f32 = 1e-5;

/// q/k/v projections of one input: three matmuls.
const QKV: &str = "
model m
dim tokens <= 16
param wq: f32[8, 8]
param wk: f32[8, 4]
param wv: f32[8, 4]
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8], f32[tokens, 4], f32[tokens, 4]) {
  %q = matmul(%x, @wq) : f32[tokens, 8]
  %k = matmul(%x, @wk) : f32[tokens, 4]
  %v = matmul(%x, @wv) : f32[tokens, 4]
  %q2 = exp(%q) : f32[tokens, 8]
  return %q2, %k, %v
}
";

#[test]
fn merge_matmuls_merges_three_projections_and_wins() {
    let model = parse(QKV);
    let (opt, report) = run(&model, OptLevel::O2);
    assert_eq!(fired(&report, "merge-matmuls"), 3, "{report}");
    // One matmul and a split instead of three dispatches: the DAG-aware
    // extraction takes the merged form (the concat of params is free).
    assert_eq!(count(&opt, "matmul"), 1, "{}", seam_ir::text::print(&opt));
    assert_eq!(count(&opt, "slice"), 3);
    assert_eq!(count(&opt, "concat"), 1);
    assert!(report.cost_after < report.cost_before, "{report}");
    assert_same_outputs(&model, &opt, 21, TOL);
}

#[test]
fn folding_turns_the_concat_of_params_into_one_weight() {
    let model = parse(&QKV.replace("func forward", "param unused: f32[2]\nfunc forward"));
    let (opt, _) = run(&model, OptLevel::O2);
    let weights = random_weights(&opt, 5);
    let folded = fold_params(&opt, &weights).expect("fold");
    assert_eq!((folded.added, folded.added_bytes), (1, 8 * 16 * 4));
    let (folded, folded_weights) = (folded.model, folded.weights);
    seam_ir::verify(&folded).expect("folded model verifies");
    assert_eq!(count(&folded, "concat"), 0);
    let names: Vec<&str> = folded.params.iter().map(|p| p.name.as_str()).collect();
    // wq/wk/wv were only read by the concat: dropped; `unused` was never read: kept.
    assert_eq!(names, ["unused", "fold.0"]);
    let matmul = folded.functions[0]
        .body
        .iter()
        .find(|i| i.op.name() == "matmul")
        .expect("merged matmul");
    assert_eq!(matmul.operands[1], Operand::Param(seam_ir::ParamId(1)));
    let inputs = random_inputs(&opt, 5);
    let a = evaluate(&opt, "forward", &weights, &inputs).expect("eval");
    let b = evaluate(&folded, "forward", &folded_weights, &inputs).expect("eval folded");
    assert_eq!(a, b, "folding is exact");
}

fn pregated() -> Model {
    parse(include_str!("../../examples/pregated_topk.seam"))
}

#[test]
fn hoist_routes_batches_the_pregated_heads() {
    let model = pregated();
    assert_eq!(count(&model, "route"), 4);
    let (opt, report) = run(&model, OptLevel::O2);
    // Two results per head (ids, weights), four heads.
    assert_eq!(fired(&report, "hoist-routes"), 8, "{report}");
    assert_eq!(count(&opt, "route"), 1, "{}", seam_ir::text::print(&opt));
    let route = opt.functions[0]
        .body
        .iter()
        .find(|i| i.op.name() == "route")
        .expect("one route");
    let ids = opt.functions[0].value(route.results[0]);
    assert_eq!(ids.ty.to_string(), "i32[tokens, 4, 2]");
    // The router heads read `router.out` through one matmul.
    let out = opt.functions[0]
        .value_by_name("router.out")
        .expect("router.out");
    let readers = opt.functions[0]
        .body
        .iter()
        .filter(|i| i.op.name() == "matmul" && i.operands[0] == Operand::Value(out))
        .count();
    assert_eq!(readers, 1);
    assert_same_outputs(&model, &opt, 22, TOL);
}

#[test]
fn hoist_routes_does_not_fire_on_in_layer_routers() {
    // Mixtral: each layer's router reads that layer's hidden state.
    let model = parse(include_str!("../../examples/mixtral_tiny.seam"));
    let (opt, report) = run(&model, OptLevel::O2);
    assert_eq!(fired(&report, "hoist-routes"), 0, "{report}");
    assert_eq!(count(&opt, "route"), 4);
    assert_same_outputs(&model, &opt, 23, TOL);
}

/// A layer-0 router, then three router heads reading `%h` (`HEAD` is replaced
/// by what `%h` is) for three more MoE layers.
const HEADS: &str = "
model m
dim tokens <= 16
param wg: f32[4, 8, 6]
param wu: f32[4, 8, 6]
param wd: f32[4, 6, 8]
param r0: f32[8, 4]
param r1: f32[8, 4]
param r2: f32[8, 4]
param r3: f32[8, 4]
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %l0 = matmul(%x, @r0) : f32[tokens, 4]
  %l, %lw = route(%l0, k=2, mode=softmax_topk, renorm=false) : i32[tokens, 2], f32[tokens, 2]
  %layer0 = moe(%x, %l, %lw, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  HEAD
  %a = matmul(%h, @r1) : f32[tokens, 4]
  %ai, %aw = route(%a, k=2, mode=topk_softmax) : i32[tokens, 2], f32[tokens, 2]
  %b = matmul(%h, @r2) : f32[tokens, 4]
  %bi, %bw = route(%b, k=2, mode=topk_softmax) : i32[tokens, 2], f32[tokens, 2]
  %c = matmul(%h, @r3) : f32[tokens, 4]
  %ci, %cw = route(%c, k=2, mode=topk_softmax) : i32[tokens, 2], f32[tokens, 2]
  %y1 = moe(%layer0, %ai, %aw, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  %y2 = moe(%y1, %bi, %bw, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  %y3 = moe(%y2, %ci, %cw, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  return %y3
}
";

#[test]
fn hoist_routes_fires_on_heads_independent_of_the_layers() {
    let model = parse(&HEADS.replace("HEAD", "%h = tanh(%x) : f32[tokens, 8]"));
    let (opt, report) = run(&model, OptLevel::O2);
    assert_eq!(fired(&report, "hoist-routes"), 6, "{report}");
    assert_eq!(
        count(&opt, "route"),
        2,
        "the layer-0 route and the batched one"
    );
    assert_same_outputs(&model, &opt, 24, TOL);
}

#[test]
fn hoist_routes_does_not_fire_on_heads_reading_a_layer_output() {
    // The same heads, but `%h` depends on layer 0's moe: not hoisted.
    let src = HEADS.replace("HEAD", "%h = tanh(%layer0) : f32[tokens, 8]");
    let model = parse(&src);
    let (opt, report) = run(&model, OptLevel::O2);
    assert_eq!(fired(&report, "hoist-routes"), 0, "{report}");
    assert_eq!(count(&opt, "route"), 4);
    assert_same_outputs(&model, &opt, 25, TOL);
}

#[test]
fn hoist_routes_batches_only_heads_with_equal_attributes() {
    // Head b decides differently: it is not batched with a and c.
    let src = HEADS
        .replace("HEAD", "%h = tanh(%x) : f32[tokens, 8]")
        .replace(
            "%bi, %bw = route(%b, k=2, mode=topk_softmax)",
            "%bi, %bw = route(%b, k=2, mode=softmax_topk, renorm=true)",
        );
    let model = parse(&src);
    let (opt, report) = run(&model, OptLevel::O2);
    // Two results each of heads a and c.
    assert_eq!(fired(&report, "hoist-routes"), 4, "{report}");
    let batched = opt.functions[0]
        .body
        .iter()
        .filter(|i| i.op.name() == "route")
        .filter(|i| opt.functions[0].value(i.results[0]).ty.rank() == 3)
        .count();
    assert!(batched <= 1, "{}", seam_ir::text::print(&opt));
    assert_same_outputs(&model, &opt, 26, TOL);
}

#[test]
fn folding_keeps_views_of_params_and_folds_chains() {
    // `reshape(@a)` read at run time stays a view; `concat(reshape(@a), @b)`
    // becomes one new param; `@a` is still read (by the view), `@b` is dropped.
    let src = "
model m
dim tokens <= 16
param a: f32[2, 4]
param b: f32[8, 3]
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8], f32[tokens, 7]) {
  %ar = reshape(@a) : f32[8]
  %y = add(%x, %ar) : f32[tokens, 8]
  %ac = reshape(@a) : f32[8, 1]
  %w = concat(%ac, @b, axis=1) : f32[8, 4]
  %w2 = concat(%w, @b, axis=1) : f32[8, 7]
  %z = matmul(%x, %w2) : f32[tokens, 7]
  return %y, %z
}
";
    let model = parse(src);
    let weights = random_weights(&model, 9);
    let folded = fold_params(&model, &weights).expect("fold");
    let text = seam_ir::text::print(&folded.model);
    let names: Vec<&str> = folded
        .model
        .params
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["a", "fold.0"], "{text}");
    assert_eq!(folded.added, 1);
    assert_eq!(count(&folded.model, "reshape"), 1, "{text}");
    assert_eq!(count(&folded.model, "concat"), 0, "{text}");
    let inputs = random_inputs(&model, 9);
    let a = evaluate(&model, "forward", &weights, &inputs).expect("eval");
    let b = evaluate(&folded.model, "forward", &folded.weights, &inputs).expect("eval folded");
    assert_eq!(a, b, "folding is exact");
}
