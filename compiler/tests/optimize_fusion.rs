//! The fusion rules ([`seam_compiler::optimize::rules::fusion`]): where each
//! must fire, where it must not, and reference-evaluator equality (within
//! 1e-5, on random weights and inputs) before vs after.

#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::optimize::OptLevel;
use seam_ir::{text, Op};
use util::{assert_same_outputs, count, fired, parse, run};

const TOL: f32 = 1e-5;

/// `header` params, then `forward(%x: f32[tokens, 8]) -> (outs)` with `body`.
fn model(params: &str, outs: &str, body: &str) -> String {
    format!(
        "model m\ndim tokens <= 16\n{params}\nfunc forward(%x: f32[tokens, 8]) -> ({outs}) {{\n{body}}}\n"
    )
}

const GATED_PARAMS: &str = "param wg: f32[8, 6]\nparam wu: f32[8, 6]";

fn gated(act: &str, swap: bool) -> String {
    let (a, b) = if swap { ("%u", "%s") } else { ("%s", "%u") };
    model(
        GATED_PARAMS,
        "f32[tokens, 6]",
        &format!(
            "  %g = matmul(%x, @wg) : f32[tokens, 6]\n  %s = {act} : f32[tokens, 6]\n  %u = matmul(%x, @wu) : f32[tokens, 6]\n  %y = mul({a}, {b}) : f32[tokens, 6]\n  return %y\n"
        ),
    )
}

#[test]
fn gated_swiglu_fires_in_either_operand_order() {
    for (swap, rule) in [(false, "gated-swiglu"), (true, "gated-swiglu-rev")] {
        let m = parse(&gated("silu(%g)", swap));
        let (opt, report) = run(&m, OptLevel::O1);
        assert_eq!(fired(&report, rule), 1, "{report}");
        assert_eq!(count(&opt, "gated_matmul"), 1, "{}", text::print(&opt));
        assert_eq!(opt.functions[0].body.len(), 1, "{}", text::print(&opt));
        assert_eq!(
            opt.functions[0].body[0].op,
            Op::GatedMatMul {
                act: seam_ir::GatedAct::SwiGlu
            }
        );
        assert_same_outputs(&m, &opt, 1, TOL);
    }
}

#[test]
fn gated_geglu_fires_only_for_the_exact_gelu() {
    let m = parse(&gated("gelu(%g, approx=erf)", true));
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "gated-geglu-rev"), 1, "{report}");
    assert_eq!(count(&opt, "gated_matmul"), 1);
    assert_same_outputs(&m, &opt, 2, TOL);
    // GeGLU's activation is the exact GELU: the tanh form must not become geglu.
    let m = parse(&gated("gelu(%g, approx=tanh)", false));
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "gated-geglu"), 0, "{report}");
    assert_eq!(count(&opt, "gated_matmul"), 0);
    assert_same_outputs(&m, &opt, 3, TOL);
}

#[test]
fn gated_does_not_fire_on_shared_products_or_different_inputs() {
    // The gate product is also returned: folding it would compute it twice.
    let shared = gated("silu(%g)", false)
        .replace("-> (f32[tokens, 6])", "-> (f32[tokens, 6], f32[tokens, 6])")
        .replace("return %y", "return %y, %g");
    let m = parse(&shared);
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "gated-swiglu"), 0, "{report}");
    assert_eq!(count(&opt, "gated_matmul"), 0);
    assert_same_outputs(&m, &opt, 4, TOL);
    // Gate and up read different inputs.
    let other = gated("silu(%g)", false).replace(
        "%u = matmul(%x, @wu)",
        "%x2 = exp(%x) : f32[tokens, 8]\n  %u = matmul(%x2, @wu)",
    );
    let m = parse(&other);
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "gated-swiglu"), 0, "{report}");
    assert_eq!(count(&opt, "gated_matmul"), 0);
    assert_same_outputs(&m, &opt, 5, TOL);
}

fn matmul_plus(r_decl: &str, r: &str, swap: bool) -> String {
    let (a, b) = if swap { (r, "%p") } else { ("%p", r) };
    model(
        &format!("param w: f32[8, 6]\n{r_decl}"),
        "f32[tokens, 6]",
        &format!("  %p = matmul(%x, @w) : f32[tokens, 6]\n  %y = add({a}, {b}) : f32[tokens, 6]\n  return %y\n"),
    )
}

#[test]
fn matmul_add_fires_for_bias_and_residual_in_either_order() {
    let residual_decl = "param wr: f32[8, 6]";
    for swap in [false, true] {
        let rule = if swap { "matmul-add-rev" } else { "matmul-add" };
        // Bias [N].
        let m = parse(&matmul_plus("param b: f32[6]", "@b", swap));
        let (opt, report) = run(&m, OptLevel::O1);
        assert_eq!(fired(&report, rule), 1, "{report}");
        assert_eq!(count(&opt, "matmul_add"), 1);
        assert_eq!(opt.functions[0].body.len(), 1, "{}", text::print(&opt));
        assert_same_outputs(&m, &opt, 6, TOL);
        // Residual of the product's shape (itself computed: another matmul).
        let src = matmul_plus(residual_decl, "%r", swap).replace(
            "  %p =",
            "  %r = exp(%x) : f32[tokens, 8]\n  %rr = matmul(%r, @wr) : f32[tokens, 6]\n  %p =",
        );
        let src = src
            .replace(", %r)", ", %rr)")
            .replace("(%r, %p)", "(%rr, %p)");
        let m = parse(&src);
        let (opt, _) = run(&m, OptLevel::O1);
        assert_eq!(count(&opt, "matmul_add"), 1, "{}", text::print(&opt));
        assert_same_outputs(&m, &opt, 7, TOL);
    }
}

#[test]
fn matmul_add_does_not_fire_on_widening_adds_or_shared_products() {
    // r [tokens, 1] broadcasts along N: neither a bias nor the product's shape.
    let src = model(
        "param w: f32[8, 6]",
        "f32[tokens, 6]",
        "  %p = matmul(%x, @w) : f32[tokens, 6]\n  %r = slice(%x, axis=1, start=0, end=1) : f32[tokens, 1]\n  %y = add(%p, %r) : f32[tokens, 6]\n  return %y\n",
    );
    let m = parse(&src);
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "matmul-add"), 0, "{report}");
    assert_eq!(count(&opt, "matmul_add"), 0);
    assert_same_outputs(&m, &opt, 8, TOL);
    // A bias [3, 6] against a product [tokens=… , 6] would widen it: not legal.
    let src = "model m\nparam w: f32[8, 6]\nparam b: f32[3, 1, 6]\nfunc forward(%x: f32[2, 8]) -> (f32[3, 2, 6]) {\n  %p = matmul(%x, @w) : f32[2, 6]\n  %y = add(%p, @b) : f32[3, 2, 6]\n  return %y\n}\n";
    let m = parse(src);
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "matmul-add"), 0, "{report}");
    assert_same_outputs(&m, &opt, 9, TOL);
    // The product is also returned.
    let src = matmul_plus("param b: f32[6]", "@b", false)
        .replace("-> (f32[tokens, 6])", "-> (f32[tokens, 6], f32[tokens, 6])")
        .replace("return %y", "return %y, %p");
    let m = parse(&src);
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "matmul-add"), 0, "{report}");
    assert_eq!(count(&opt, "matmul_add"), 0);
    assert_same_outputs(&m, &opt, 10, TOL);
    // A batched product (rank-3 weights).
    let src = "model m\nfunc forward(%x: f32[2, 3, 4], %w: f32[2, 4, 5], %r: f32[2, 3, 5]) -> (f32[2, 3, 5]) {\n  %p = matmul(%x, %w) : f32[2, 3, 5]\n  %y = add(%p, %r) : f32[2, 3, 5]\n  return %y\n}\n";
    let m = parse(src);
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "matmul-add"), 0, "{report}");
    assert_same_outputs(&m, &opt, 11, TOL);
}

const CHAIN: &str = "
model m
dim tokens <= 16
param b: f32[8]
func forward(%x: f32[tokens, 8], %y: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %half = const(value=0.5) : f32[]
  %a = add(%x, @b) : f32[tokens, 8]
  %s = silu(%a) : f32[tokens, 8]
  %m = mul(%s, %y) : f32[tokens, 8]
  %h = mul(%m, %half) : f32[tokens, 8]
  %t = tanh(%h) : f32[tokens, 8]
  %d = div(%t, %y) : f32[tokens, 8]
  return %d
}
";

#[test]
fn elementwise_chains_become_one_fused_op() {
    let m = parse(CHAIN);
    let (opt, report) = run(&m, OptLevel::O1);
    assert!(fired(&report, "fuse-elementwise") >= 1, "{report}");
    let body = &opt.functions[0].body;
    assert_eq!(body.len(), 1, "{}", text::print(&opt));
    match &body[0].op {
        Op::Fused { expr } => assert_eq!(
            expr.to_string(),
            "div(tanh(mul(mul(silu(add($0, $1)), $2), 0.5)), $2)"
        ),
        other => panic!("expected fused, found {other:?}"),
    }
    assert_same_outputs(&m, &opt, 12, TOL);
}

/// `relu2` (squared ReLU), added through seam-core's table alone, fuses like
/// any other activation.
#[test]
fn relu2_fuses_like_the_other_activations() {
    let src = "
model m
dim tokens <= 16
func forward(%x: f32[tokens, 8], %y: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %r = relu2(%x) : f32[tokens, 8]
  %m = mul(%r, %y) : f32[tokens, 8]
  %n = neg(%m) : f32[tokens, 8]
  return %n
}
";
    let m = parse(src);
    let (opt, report) = run(&m, OptLevel::O1);
    assert!(fired(&report, "fuse-elementwise") >= 1, "{report}");
    let body = &opt.functions[0].body;
    assert_eq!(body.len(), 1, "{}", text::print(&opt));
    match &body[0].op {
        Op::Fused { expr } => assert_eq!(expr.to_string(), "neg(mul(relu2($0), $1))"),
        other => panic!("expected fused, found {other:?}"),
    }
    assert_same_outputs(&m, &opt, 14, TOL);
}

#[test]
fn fused_ops_merge_with_their_neighbours() {
    let src = "
model m
dim tokens <= 16
func forward(%x: f32[tokens, 8], %y: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %f = fused(%x, %y, expr=\"mul(silu($0), $1)\") : f32[tokens, 8]
  %e = exp(%f) : f32[tokens, 8]
  %g = fused(%e, %x, expr=\"sub($0, $1)\") : f32[tokens, 8]
  return %g
}
";
    let m = parse(src);
    let (opt, _) = run(&m, OptLevel::O1);
    let body = &opt.functions[0].body;
    assert_eq!(body.len(), 1, "{}", text::print(&opt));
    match &body[0].op {
        Op::Fused { expr } => assert_eq!(expr.to_string(), "sub(exp(mul(silu($0), $1)), $0)"),
        other => panic!("expected fused, found {other:?}"),
    }
    assert_same_outputs(&m, &opt, 13, TOL);
}

#[test]
fn fusion_keeps_shared_and_broadcast_producers_separate() {
    // %s is also returned, so it must be computed anyway: not folded into %t.
    // %eb = exp(bias [8]) broadcasts into [tokens, 8]: folding it would compute
    // exp per output element, so it stays its own op and an operand.
    let src = "
model m
dim tokens <= 16
param b: f32[8]
func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8], f32[tokens, 8]) {
  %s = silu(%x) : f32[tokens, 8]
  %eb = exp(@b) : f32[8]
  %n = neg(%s) : f32[tokens, 8]
  %t = add(%n, %eb) : f32[tokens, 8]
  %u = tanh(%t) : f32[tokens, 8]
  return %u, %s
}
";
    let m = parse(src);
    let (opt, _) = run(&m, OptLevel::O2);
    let printed = text::print(&opt);
    assert_eq!(count(&opt, "silu"), 1, "{printed}");
    assert_eq!(count(&opt, "exp"), 1, "{printed}");
    assert_eq!(count(&opt, "fused"), 1, "{printed}");
    let fused = opt.functions[0]
        .body
        .iter()
        .find_map(|i| match &i.op {
            Op::Fused { expr } => Some(expr.to_string()),
            _ => None,
        })
        .expect("a fused op");
    assert_eq!(fused, "tanh(add(neg($0), $1))");
    assert_same_outputs(&m, &opt, 14, TOL);
}

#[test]
fn fusion_leaves_integers_and_single_ops_alone() {
    let src = "
model m
func forward(%i: i32[4], %x: f32[4]) -> (i32[4], f32[4]) {
  %a = add(%i, %i) : i32[4]
  %b = mul(%a, %i) : i32[4]
  %e = exp(%x) : f32[4]
  return %b, %e
}
";
    let m = parse(src);
    let (opt, report) = run(&m, OptLevel::O2);
    assert_eq!(fired(&report, "fuse-elementwise"), 0, "{report}");
    assert_eq!(opt, m);
}

#[test]
fn scalar_constants_are_inlined() {
    let src = "
model m
func forward(%x: f32[4]) -> (f32[4]) {
  %c = const(value=-1.5) : f32[1]
  %y = mul(%x, %c) : f32[4]
  return %y
}
";
    let m = parse(src);
    let (opt, _) = run(&m, OptLevel::O1);
    let body = &opt.functions[0].body;
    assert_eq!(body.len(), 1, "{}", text::print(&opt));
    assert_eq!(
        body[0].op,
        Op::Fused {
            expr: seam_ir::FusedExpr::parse("mul($0, -1.5)").unwrap()
        }
    );
    assert_same_outputs(&m, &opt, 15, TOL);
}
