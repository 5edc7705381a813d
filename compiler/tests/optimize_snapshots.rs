//! Before/after snapshots of small models for the routers, comm and experts
//! rule groups, printed in the text format. Every snapshot in `snapshots/` was
//! read and checked by hand before it was accepted (see each test's comment for
//! what was checked); each test also checks the reference evaluator gives the
//! same outputs before and after (1e-5) on random weights.

#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::optimize::OptLevel;
use seam_ir::{expand_all_moe, text, Model};
use util::{assert_same_outputs, count, fired, parse, run};

const TOL: f32 = 1e-5;

/// `after`, how often `rule` fired, and the text shown: `before`, the rules
/// fired, `after`.
fn before_after(before: &Model, rule: &str) -> (Model, usize, String) {
    let (after, report) = run(before, OptLevel::O2);
    let rules: Vec<String> = report
        .rules_fired
        .iter()
        .map(|(rule, n)| format!("{rule}: {n}"))
        .collect();
    let shown = format!(
        "# before\n{}\n# fired: {}\n\n# after\n{}",
        text::print(before),
        rules.join(", "),
        text::print(&after)
    );
    (after, fired(&report, rule), shown)
}

/// Three per-layer router heads reading one router output `%h`.
const ROUTERS: &str = "
model routers
dim tokens <= 16
param r0: f32[8, 4]
param r1: f32[8, 4]
param r2: f32[8, 4]
param wg: f32[4, 8, 6]
param wu: f32[4, 8, 6]
param wd: f32[4, 6, 8]
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %h = tanh(%x) : f32[tokens, 8]
  %l0 = matmul(%h, @r0) : f32[tokens, 4]
  %i0, %w0 = route(%l0, k=2, mode=topk_softmax) : i32[tokens, 2], f32[tokens, 2]
  %l1 = matmul(%h, @r1) : f32[tokens, 4]
  %i1, %w1 = route(%l1, k=2, mode=topk_softmax) : i32[tokens, 2], f32[tokens, 2]
  %l2 = matmul(%h, @r2) : f32[tokens, 4]
  %i2, %w2 = route(%l2, k=2, mode=topk_softmax) : i32[tokens, 2], f32[tokens, 2]
  %y0 = moe(%x, %i0, %w0, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  %y1 = moe(%y0, %i1, %w1, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  %y2 = moe(%y1, %i2, %w2, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  return %y2
}
";

/// Checked by hand: the three heads become one `matmul(%h, concat(@r0, @r1,
/// @r2, axis=1))` of width 12, reshaped to `[tokens, 3, 4]`, one `route` giving
/// `[tokens, 3, 2]` ids and weights, and per layer `slice(axis=1, i..i+1)` +
/// `reshape` to `[tokens, 2]` feeding moe `i` in order (layer 0 slice 0, …);
/// the route attributes are kept; the moes are unchanged.
#[test]
fn routers_snapshot() {
    let before = parse(ROUTERS);
    let (after, n, shown) = before_after(&before, "hoist-routes");
    insta::assert_snapshot!("routers", shown);
    assert_eq!((n, count(&after, "route")), (6, 1));
    assert_same_outputs(&before, &after, 41, TOL);
}

/// A ladder residual written by hand: module 1 reads `%x` while module 0's
/// sum is in flight, module 2 reads `%x1` while module 1's is.
const LADDER: &str = "
model ladder
dim tokens <= 16
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %a0 = tanh(%x) : f32[tokens, 8]
  %r0 = all_reduce(%a0, reduce=sum) : f32[tokens, 8]
  %a1 = sigmoid(%x) : f32[tokens, 8]
  %r1 = all_reduce(%a1, reduce=sum) : f32[tokens, 8]
  %x1 = add(%x, %r0) : f32[tokens, 8]
  %a2 = exp(%x1) : f32[tokens, 8]
  %r2 = all_reduce(%a2, reduce=sum) : f32[tokens, 8]
  %x2 = add(%x1, %r1) : f32[tokens, 8]
  %x3 = add(%x2, %r2) : f32[tokens, 8]
  return %x3
}
";

/// Checked by hand: each `all_reduce` becomes `all_reduce_start` (right after
/// its producer) and `all_reduce_wait` (right before its first reader, keeping
/// the original value name); `sigmoid` (module 1) sits between start and wait
/// of `%r0`, and `exp` (module 2) between start and wait of `%r1`; `%r2`'s wait
/// directly precedes the final residual adds, which the fusion group (also on
/// at -O2) turns into one `fused` op, `add(add(x1, r1), r2)`; the dataflow is
/// the input's.
#[test]
fn comm_snapshot() {
    let before = parse(LADDER);
    let (after, n, shown) = before_after(&before, "split-all-reduce");
    insta::assert_snapshot!("comm", shown);
    assert_eq!((n, count(&after, "all_reduce_wait")), (3, 3));
    assert_same_outputs(&before, &after, 42, TOL);
}

/// A top-1 routed moe over two experts, without shared expert.
const EXPERTS: &str = "
model experts
dim tokens <= 16
param router: f32[8, 2]
param wg: f32[2, 8, 6]
param wu: f32[2, 8, 6]
param wd: f32[2, 6, 8]
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %logits = matmul(%x, @router) : f32[tokens, 2]
  %ids, %w = route(%logits, k=1, mode=topk_softmax) : i32[tokens, 1], f32[tokens, 1]
  %y = moe(%x, %ids, %w, @wg, @wu, @wd, act=swiglu) : f32[tokens, 8]
  return %y
}
";

/// Checked by hand: the before side is the per-expert dense form (for e in
/// 0, 1: the expert's gate/up/down slices of the stacked weights, the SwiGLU
/// FFN, the mask `cast(eq(ids, e))` times the routing weights summed over k,
/// the scaled outputs summed); the after side is the router matmul, the route
/// and one `moe(%x, ids, weights, @wg, @wu, @wd, act=swiglu)`, nothing else.
#[test]
fn experts_snapshot() {
    let before = expand_all_moe(&parse(EXPERTS)).expect("expand");
    let (after, n, shown) = before_after(&before, "dense-to-moe");
    insta::assert_snapshot!("experts", shown);
    assert_eq!((n, count(&after, "moe")), (1, 1));
    assert_same_outputs(&before, &after, 43, TOL);
}
