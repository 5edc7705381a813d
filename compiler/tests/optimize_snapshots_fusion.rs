//! Snapshot of the fusion group on a small model: the text IR before and after
//! `-O1` (which runs the fusion rules). The accepted snapshot was read and
//! checked by hand, op by op: `%gu = gated_matmul(%h, @wg, @wu, act=swiglu)` is
//! `silu(h·wg) * (h·wu)`; `%r = matmul_add(%gu, @wd, %x)` is the residual
//! `x + gu·wd`; the bias add, the scale by 0.5, the tanh and the final sub
//! became one `fused(%o, @bo, %r)` computing `tanh((o + bo)·0.5) − r` with the
//! scalar inlined (folding the bias into `%o` as a `matmul_add` instead would
//! also take two dispatches; the cost model preferred this); the norm, which no
//! rule covers, stayed. 13 instructions became 5, names kept. The evaluator
//! agrees before and after (checked below, within 1e-5).

#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::optimize::OptLevel;
use seam_ir::text;
use util::{assert_same_outputs, count, fired, parse, run};

const BLOCK: &str = "
model block
dim tokens <= 64
param norm: f32[16]
param wg: f32[16, 32]
param wu: f32[16, 32]
param wd: f32[32, 16]
param wo: f32[16, 16]
param bo: f32[16]
func forward(%x: f32[tokens, 16]) -> (f32[tokens, 16]) {
  %h = rms_norm(%x, @norm, eps=1e-5) : f32[tokens, 16]
  %g = matmul(%h, @wg) : f32[tokens, 32]
  %ga = silu(%g) : f32[tokens, 32]
  %u = matmul(%h, @wu) : f32[tokens, 32]
  %gu = mul(%ga, %u) : f32[tokens, 32]
  %d = matmul(%gu, @wd) : f32[tokens, 16]
  %r = add(%x, %d) : f32[tokens, 16]
  %o = matmul(%r, @wo) : f32[tokens, 16]
  %ob = add(%o, @bo) : f32[tokens, 16]
  %half = const(value=0.5) : f32[]
  %s = mul(%ob, %half) : f32[tokens, 16]
  %t = tanh(%s) : f32[tokens, 16]
  %y = sub(%t, %r) : f32[tokens, 16]
  return %y
}
";

#[test]
fn fusion_group_snapshot() {
    let before = parse(BLOCK);
    let (after, report) = run(&before, OptLevel::O1);
    assert_same_outputs(&before, &after, 1, 1e-5);
    assert_eq!(fired(&report, "gated-swiglu"), 1, "{report}");
    assert_eq!(count(&after, "gated_matmul"), 1);
    insta::assert_snapshot!(format!(
        "# before\n{}\n# after -O1\n{}",
        text::print(&before),
        text::print(&after)
    ));
}
