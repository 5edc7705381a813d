//! `relu2` (squared ReLU, `max(x, 0)²`), the activation added through
//! seam-core's function table alone: its values in the reference evaluator,
//! its text form and its name in a `fused` expression.

use seam_ir::{evaluate, text, FusedExpr, Op, Tensor, UnaryFn, Weights};

/// A model in the printer's canonical form.
const MODEL: &str = "model m

dim t <= 8

func f(%x: f32[t, 4]) -> (f32[t, 4], f32[t, 4]) {
  %r = relu2(%x) : f32[t, 4]
  %g = fused(%x, %r, expr=\"mul(relu2($0), $1)\") : f32[t, 4]
  return %r, %g
}
";

#[test]
fn relu2_squares_the_positive_part() {
    let (model, _) = text::parse_and_verify("m", MODEL).unwrap_or_else(|d| panic!("{d:?}"));
    let x = Tensor::from_f32_vec(
        seam_ir::DType::F32,
        vec![2, 4],
        vec![-3.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, -1e-3],
    )
    .unwrap();
    let weights = Weights::new(&model, Vec::new()).unwrap();
    let out = evaluate(&model, "f", &weights, &[x]).unwrap();
    // max(x, 0)² by hand.
    let relu2 = [0.0, 0.0, 0.0, 0.25, 1.0, 4.0, 9.0, 0.0];
    assert_eq!(out[0].to_f32_vec(), relu2);
    // relu2(x) · relu2(x) = max(x, 0)⁴.
    let fourth = [0.0, 0.0, 0.0, 0.0625, 1.0, 16.0, 81.0, 0.0];
    assert_eq!(out[1].to_f32_vec(), fourth);
}

#[test]
fn relu2_round_trips_through_the_text_format() {
    let (model, _) = text::parse(MODEL).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        model.functions[0].body[0].op,
        Op::Unary(UnaryFn::Relu2),
        "relu2 parses as the table's function"
    );
    assert_eq!(text::print(&model), MODEL);
    let expr = FusedExpr::parse("mul(relu2($0), $1)").unwrap();
    assert_eq!(expr.to_string(), "mul(relu2($0), $1)");
}
