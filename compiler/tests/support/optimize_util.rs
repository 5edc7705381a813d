//! Helpers shared by the optimizer tests: random inputs, reference evaluation
//! before and after, op counts.

use seam_compiler::optimize::{optimize, OptLevel, OptimizeOptions, Report};
use seam_ir::{
    evaluate, random_tensor, random_tensor_in, random_weights, text, Dim, Model, Tensor,
};

/// Size bound to every symbolic dim (capped by its declared bound).
const SYM: u64 = 3;

/// Parses a text model, panicking with the diagnostic on error.
pub fn parse(src: &str) -> Model {
    match text::parse(src) {
        Ok((m, _)) => m,
        Err(e) => panic!("parse error: {e:?}"),
    }
}

/// Seeded random inputs for the first function (ints in `0..4`).
pub fn random_inputs(model: &Model, seed: u64) -> Vec<Tensor> {
    let func = &model.functions[0];
    func.inputs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ty = &func.value(v).ty;
            let shape: Vec<usize> = ty
                .shape
                .dims()
                .iter()
                .map(|d| match d {
                    Dim::Static(n) => *n as usize,
                    Dim::Sym(s) => model.dim(s).map_or(SYM, |d| d.max.min(SYM)) as usize,
                })
                .collect();
            let seed = seed * 1000 + i as u64;
            if ty.dtype.is_float() {
                random_tensor(ty.dtype, &shape, seed)
            } else {
                random_tensor_in(ty.dtype, &shape, 0.0, 4.0, seed)
            }
            .expect("random input")
        })
        .collect()
}

/// Evaluates the first function of both models on the same random weights and
/// inputs and asserts every output agrees within `tol`.
pub fn assert_same_outputs(before: &Model, after: &Model, seed: u64, tol: f32) {
    assert!(
        same_outputs_where_defined(before, after, seed, tol),
        "the model before optimization does not evaluate"
    );
}

/// [`assert_same_outputs`] where `before` evaluates on this seed's data (random
/// graphs may divide integers by zero); whether it did.
#[allow(dead_code)]
pub fn same_outputs_where_defined(before: &Model, after: &Model, seed: u64, tol: f32) -> bool {
    let weights = random_weights(before, seed);
    let inputs = random_inputs(before, seed);
    let name = &before.functions[0].name;
    let Ok(a) = evaluate(before, name, &weights, &inputs) else {
        return false;
    };
    let b = evaluate(after, name, &weights, &inputs).expect("evaluate after");
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.shape, y.shape, "output {i} shape");
        let (x, y) = (x.to_f32_vec(), y.to_f32_vec());
        let diff = x
            .iter()
            .zip(&y)
            .map(|(p, q)| match (p.is_nan(), q.is_nan()) {
                (true, true) => 0.0,
                (false, false) if p == q => 0.0,
                (false, false) => (p - q).abs(),
                _ => f32::INFINITY,
            })
            .fold(0.0f32, f32::max);
        assert!(diff <= tol, "output {i} differs by {diff}");
    }
    true
}

/// How many instructions of the first function run `op`.
pub fn count(model: &Model, op: &str) -> usize {
    model.functions[0]
        .body
        .iter()
        .filter(|i| i.op.name() == op)
        .count()
}

/// Optimizes at `level` with default options.
pub fn run(model: &Model, level: OptLevel) -> (Model, Report) {
    optimize(model, &OptimizeOptions::new(level)).expect("optimize")
}

/// How often `rule` fired.
pub fn fired(report: &Report, rule: &str) -> usize {
    report.rules_fired.get(rule).copied().unwrap_or(0)
}
