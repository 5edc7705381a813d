//! Runs a small function written in the text format on given tensors: a model
//! whose inputs take their static types from the tensors.
//!
//! ```ignore
//! #[path = "support/one_op.rs"]
//! mod one_op;
//! let out = one_op::run(&[("x", &x)], "%y = neg(%x) : f32[2]", "f32[2]", "%y")?;
//! ```

#![allow(dead_code)]

use seam_ir::{evaluate, random_weights, text, EvalError, Tensor};

/// The text type of a tensor (`f32[2, 3]`).
pub fn type_of(t: &Tensor) -> String {
    format!("{}{:?}", t.dtype, t.shape)
}

/// The model text of `func f(inputs) -> (out_ty) { body; return ret }`.
pub fn source(inputs: &[(&str, &Tensor)], body: &str, out_ty: &str, ret: &str) -> String {
    let sig: Vec<String> = inputs
        .iter()
        .map(|(n, t)| format!("%{n}: {}", type_of(t)))
        .collect();
    format!(
        "model m\nfunc f({}) -> ({out_ty}) {{\n  {body}\n  return {ret}\n}}\n",
        sig.join(", ")
    )
}

/// Evaluates `body` on `inputs` and returns the one result `ret`.
pub fn run(
    inputs: &[(&str, &Tensor)],
    body: &str,
    out_ty: &str,
    ret: &str,
) -> Result<Tensor, EvalError> {
    let src = source(inputs, body, out_ty, ret);
    let (model, _) = text::parse_and_verify("m.seam", &src)
        .unwrap_or_else(|d| panic!("{}\n{src}", d.render(false)));
    let tensors: Vec<Tensor> = inputs.iter().map(|(_, t)| (*t).clone()).collect();
    let mut out = evaluate(&model, "f", &random_weights(&model, 0), &tensors)?;
    Ok(out.remove(0))
}

/// The largest |a − b| over two tensors of one shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.max_abs_diff(b).expect("comparable tensors")
}

/// The largest |x| of a tensor.
pub fn max_abs(t: &Tensor) -> f32 {
    t.to_f32_vec().iter().fold(0f32, |m, x| m.max(x.abs()))
}
