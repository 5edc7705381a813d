//! Per-rule tests of the e-graph optimizer: where each rule must fire, where it
//! must not, and reference-evaluator equality before vs after.

#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::optimize::language::SeamLang;
use seam_compiler::optimize::OptLevel;
use seam_ir::expand_all_moe;
use util::{assert_same_outputs, count, fired, parse, run};

const TOL: f32 = 1e-5;

/// A routed moe over 4 experts with a shared expert.
const MOE: &str = "
model m
dim tokens <= 16
param router: f32[8, 4]
param wg: f32[4, 8, 6]
param wu: f32[4, 8, 6]
param wd: f32[4, 6, 8]
param sg: f32[8, 5]
param su: f32[8, 5]
param sd: f32[5, 8]
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %logits = matmul(%x, @router) : f32[tokens, 4]
  %ids, %w = route(%logits, k=2, mode=softmax_topk, renorm=true) : i32[tokens, 2], f32[tokens, 2]
  %y = moe(%x, %ids, %w, @wg, @wu, @wd, @sg, @su, @sd, act=swiglu) : f32[tokens, 8]
  return %y
}
";

#[test]
fn dense_to_moe_fires_on_the_expansion() {
    let model = parse(MOE);
    let dense = expand_all_moe(&model).expect("expand");
    assert_eq!(count(&dense, "moe"), 0);
    let (opt, report) = run(&dense, OptLevel::O1);
    // Twice: on the experts' sum alone, and on the sum plus the shared expert.
    assert_eq!(fired(&report, "dense-to-moe"), 2, "{report}");
    assert_eq!(count(&opt, "moe"), 1);
    assert_eq!(count(&opt, "matmul"), 1, "only the router matmul is left");
    assert_same_outputs(&dense, &opt, 1, TOL);
    assert_same_outputs(&model, &opt, 2, TOL);
}

#[test]
fn dense_to_moe_handles_geglu_and_no_shared_expert() {
    let src = MOE
        .replace(", @sg, @su, @sd, act=swiglu", ", act=geglu")
        .replace("k=2", "k=1")
        .replace("[tokens, 2]", "[tokens, 1]");
    let model = parse(&src);
    let dense = expand_all_moe(&model).expect("expand");
    let (opt, report) = run(&dense, OptLevel::O2);
    assert_eq!(fired(&report, "dense-to-moe"), 1, "{report}");
    assert_eq!(count(&opt, "moe"), 1);
    assert_same_outputs(&dense, &opt, 3, TOL);
}

#[test]
fn dense_to_moe_does_not_fire_when_experts_are_missing() {
    // Stacked weights of 5 experts, but the dense form only has blocks for 4.
    let model = parse(MOE);
    let mut dense = expand_all_moe(&model).expect("expand");
    for p in &mut dense.params {
        if ["wg", "wu", "wd"].contains(&p.name.as_str()) {
            p.ty.shape.0[0] = 5u64.into();
        }
    }
    seam_ir::verify(&dense).expect("still verifies");
    let (opt, report) = run(&dense, OptLevel::O2);
    assert_eq!(fired(&report, "dense-to-moe"), 0, "{report}");
    assert_eq!(count(&opt, "moe"), 0);
    assert_same_outputs(&dense, &opt, 4, TOL);
}

#[test]
fn dense_to_moe_does_not_fire_when_ids_may_be_out_of_range() {
    // Ids from an input: the dense form ignores an id ≥ 4, `moe` would reject it.
    let src = "
model m
dim tokens <= 16
param wg: f32[4, 8, 6]
param wu: f32[4, 8, 6]
param wd: f32[4, 6, 8]
func forward(%x: f32[tokens, 8], %ids: i32[tokens, 2], %w: f32[tokens, 2]) -> (f32[tokens, 8]) {
  %y = moe(%x, %ids, %w, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  return %y
}
";
    let dense = expand_all_moe(&parse(src)).expect("expand");
    let (opt, report) = run(&dense, OptLevel::O2);
    assert_eq!(fired(&report, "dense-to-moe"), 0, "{report}");
    assert_eq!(count(&opt, "moe"), 0);
    assert_same_outputs(&dense, &opt, 5, TOL);
}

#[test]
fn dense_to_moe_does_not_fire_when_an_expert_is_duplicated() {
    // Expert 3's block reads expert 2's gate slice: indices are not 0..E once each.
    let model = parse(MOE);
    let mut dense = expand_all_moe(&model).expect("expand");
    let func = &mut dense.functions[0];
    let target = func.value_by_name("y_e3_wg").expect("expert 3 gate slice");
    for instr in &mut func.body {
        if instr.results == [target] {
            instr.op = seam_ir::Op::Slice {
                axis: 0,
                start: 2,
                end: 3,
            };
        }
    }
    seam_ir::verify(&dense).expect("still verifies");
    let (opt, report) = run(&dense, OptLevel::O2);
    assert_eq!(fired(&report, "dense-to-moe"), 0, "{report}");
    assert_eq!(count(&opt, "moe"), 0);
    assert_same_outputs(&dense, &opt, 6, TOL);
}

const TWO_ROUTERS: &str = "
model m
dim tokens <= 16
param wr: f32[8, 4]
param ws: f32[8, 4]
func forward(%x: f32[tokens, 8], %z: f32[tokens, 8]) -> (f32[tokens, 4], f32[tokens, 4]) {
  %r = matmul(%x, @wr) : f32[tokens, 4]
  %s = matmul(%X, @ws) : f32[tokens, 4]
  return %r, %s
}
";

#[test]
fn merge_matmuls_fires_on_a_shared_input() {
    let model = parse(&TWO_ROUTERS.replace("%X", "%x"));
    let (opt, report) = run(&model, OptLevel::O1);
    // One count per matmul given the merged form.
    assert_eq!(fired(&report, "merge-matmuls"), 2, "{report}");
    // Two narrow heads: one matmul plus one `split` dispatch costs as much as
    // two matmuls (and writes the slices), so extraction keeps the two
    // (`merge_matmuls_merges_three_projections_and_wins` has the winning case).
    assert_eq!(count(&opt, "matmul"), 2);
    assert_same_outputs(&model, &opt, 7, TOL);
}

#[test]
fn merge_matmuls_does_not_fire_on_different_inputs() {
    let model = parse(&TWO_ROUTERS.replace("%X", "%z"));
    let (opt, report) = run(&model, OptLevel::O2);
    assert_eq!(fired(&report, "merge-matmuls"), 0, "{report}");
    assert_eq!(count(&opt, "matmul"), 2);
    assert_same_outputs(&model, &opt, 8, TOL);
}

#[test]
fn merge_matmuls_does_not_fire_on_computed_weights() {
    // Only params are concatenated (a compile-time constant); `exp(@ws)` is not one.
    let src = TWO_ROUTERS.replace(
        "%s = matmul(%X, @ws) : f32[tokens, 4]",
        "%ws = exp(@ws) : f32[8, 4]\n  %s = matmul(%x, %ws) : f32[tokens, 4]",
    );
    let model = parse(&src);
    let (opt, report) = run(&model, OptLevel::O2);
    assert_eq!(fired(&report, "merge-matmuls"), 0, "{report}");
    assert_eq!(count(&opt, "matmul"), 2);
    assert_same_outputs(&model, &opt, 11, TOL);
}

const ALGEBRA: &str = "
model m
dim tokens <= 16
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %one = const(value=1.0) : f32[]
  %zero = const(value=0.0) : f32[8]
  %a = mul(%x, %one) : f32[tokens, 8]
  %b = add(%zero, %a) : f32[tokens, 8]
  %c = reshape(%b) : f32[tokens, 2, 4]
  %d = reshape(%c) : f32[tokens, 4, 2]
  %e = reshape(%d) : f32[tokens, 8]
  %f = exp(%e) : f32[tokens, 8]
  return %f
}
";

#[test]
fn algebra_rules_fire_and_simplify() {
    let model = parse(ALGEBRA);
    let (opt, report) = run(&model, OptLevel::O2);
    for rule in ["mul-one", "zero-add", "reshape-reshape", "reshape-noop"] {
        assert!(fired(&report, rule) >= 1, "{rule} did not fire: {report}");
    }
    let body = &opt.functions[0].body;
    assert_eq!(
        body.len(),
        1,
        "only exp is left: {}",
        seam_ir::text::print(&opt)
    );
    assert_same_outputs(&model, &opt, 9, TOL);
}

#[test]
fn algebra_rules_respect_broadcasting_and_other_constants() {
    // `mul` by a broadcast const 1 widens x; `add` of 0.5 is not the identity.
    let src = "
model m
func forward(%x: f32[8]) -> (f32[3, 8], f32[8]) {
  %one = const(value=1.0) : f32[3, 8]
  %half = const(value=0.5) : f32[]
  %a = mul(%x, %one) : f32[3, 8]
  %b = add(%x, %half) : f32[8]
  return %a, %b
}
";
    let model = parse(src);
    let (opt, report) = run(&model, OptLevel::O2);
    for rule in ["mul-one", "one-mul", "add-zero", "zero-add"] {
        assert_eq!(fired(&report, rule), 0, "{rule} fired: {report}");
    }
    assert_eq!(count(&opt, "mul"), 1);
    // The add of 0.5 stays: as an `add`, or with the 0.5 inlined into a `fused`.
    assert_eq!(count(&opt, "add") + count(&opt, "fused"), 1);
    assert_same_outputs(&model, &opt, 10, TOL);
}

#[test]
fn o0_is_the_identity_and_o1_skips_algebra() {
    let model = parse(ALGEBRA);
    let (same, report) = run(&model, OptLevel::O0);
    assert_eq!(same, model);
    assert!(report.rules_fired.is_empty());
    let (_, report) = run(&model, OptLevel::O1);
    assert_eq!(fired(&report, "mul-one"), 0, "{report}");
}

/// Prefers every matmul that reads a `concat`, so extraction takes the merged form.
struct PreferMerged<'a>(&'a seam_compiler::optimize::analysis::SeamGraph);

impl egg::CostFunction<SeamLang> for PreferMerged<'_> {
    type Cost = f64;

    fn cost<C: FnMut(egg::Id) -> f64>(&mut self, node: &SeamLang, mut costs: C) -> f64 {
        let reads_concat = |id: egg::Id| {
            self.0[id]
                .nodes
                .iter()
                .any(|n| matches!(n, SeamLang::Concat(_)))
        };
        let own = match node {
            SeamLang::MatMul(c) if !c.iter().any(|&id| reads_concat(id)) => 1000.0,
            _ => 1.0,
        };
        egg::Language::fold(node, own, |sum, id| sum + costs(id))
    }
}

#[test]
fn merged_matmuls_compute_the_same() {
    use seam_compiler::optimize::convert::{decode, encode};
    use seam_compiler::optimize::cost::Extraction;
    use seam_compiler::optimize::rules::{rules, RuleGroup};
    use seam_compiler::optimize::saturate::{saturate, Limits};

    let model = parse(&TWO_ROUTERS.replace("%X", "%x"));
    let func = &model.functions[0];
    let mut encoded = encode(&model, func).expect("encode");
    let rules = rules(&[RuleGroup::Routers]).expect("rules");
    let (egraph, report) = saturate(encoded.egraph, &rules, &Limits::default());
    encoded.egraph = egraph;
    assert_eq!(fired(&report, "merge-matmuls"), 2);
    let ex = Extraction::new(&encoded.egraph, PreferMerged(&encoded.egraph));
    let mut merged = model.clone();
    merged.functions[0] = decode(func, &encoded, |c| ex.node(c)).expect("decode");
    seam_ir::verify(&merged).expect("verifies");
    assert_eq!(
        count(&merged, "matmul"),
        1,
        "{}",
        seam_ir::text::print(&merged)
    );
    assert_eq!(count(&merged, "concat"), 1);
    assert_eq!(count(&merged, "slice"), 2);
    assert_same_outputs(&model, &merged, 12, TOL);
}
