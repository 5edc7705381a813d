//! `masked-to-grouped` (Mixture-of-Transformers): where it must fire and win
//! extraction, where it must not fire, and reference-evaluator equality
//! before vs after on random weights and inputs. The snapshot in `snapshots/`
//! was read and checked by hand before it was accepted (see the test's comment).

#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::optimize::OptLevel;
use seam_ir::{evaluate, random_weights, text, Model, Tensor, TensorData};
use util::{assert_same_outputs, count, fired, parse, run};

const TOL: f32 = 1e-5;

/// A masked projection of `%x` over the 4 matrices of `@w`. `MASK{e}` is
/// replaced by the mask of modality `e`; the default masks are a one-hot of
/// `%m` (ints in `0..4` from the random inputs, so every id is in range).
const MASKED: &str = "
model masked
dim tokens <= 16
param w: f32[4, 8, 6]
func forward(%x: f32[tokens, 8], %m: i32[tokens], %f: f32[tokens, 1], %m2: i32[tokens]) -> (f32[tokens, 6]) {
  TERMS
  %s01 = add(%t0, %t1) : f32[tokens, 6]
  %s23 = add(%t2, %t3) : f32[tokens, 6]
  %y = add(%s01, %s23) : f32[tokens, 6]
  return %y
}
";

/// Term `e`: the mask's definition `mask` (defining `%maskE`, with `E` for
/// the index), then `%w{e}`, the product `%d{e}` and the term `%t{e}`.
fn term(e: u64, mask: &str) -> String {
    let mask = mask.replace('E', &e.to_string());
    format!(
        "{mask}\n  \
         %ws{e} = slice(@w, axis=0, start={e}, end={}) : f32[1, 8, 6]\n  \
         %w{e} = reshape(%ws{e}) : f32[8, 6]\n  \
         %d{e} = matmul(%x, %w{e}) : f32[tokens, 6]\n  \
         %t{e} = mul(%d{e}, %maskE) : f32[tokens, 6]\n  ",
        e + 1
    )
    .replace("%maskE", &format!("%mask{e}"))
}

/// The one-hot mask of `ids` for index `E`.
fn one_hot(ids: &str) -> String {
    format!(
        "%c.E = const(value=E.0) : i32[]\n  \
         %q.E = eq({ids}, %c.E) : i32[tokens]\n  \
         %h.E = cast(%q.E) : f32[tokens]\n  \
         %maskE = reshape(%h.E) : f32[tokens, 1]"
    )
}

fn model(masks: [&str; 4]) -> Model {
    let terms: String = (0..4).map(|e| term(e as u64, masks[e])).collect();
    parse(&MASKED.replace("TERMS", &terms))
}

fn one_hot_model() -> Model {
    let m = one_hot("%m");
    model([&m, &m, &m, &m])
}

#[test]
fn fires_on_the_one_hot_masked_form_and_wins() {
    let before = one_hot_model();
    let (after, report) = run(&before, OptLevel::O2);
    assert_eq!(fired(&report, "masked-to-grouped"), 1, "{report}");
    assert_eq!(
        count(&after, "grouped_matmul"),
        1,
        "{}",
        text::print(&after)
    );
    assert_eq!(count(&after, "matmul"), 0, "{}", text::print(&after));
    assert!(report.cost_after < report.cost_before, "{report}");
    for seed in [31, 32, 33] {
        assert_same_outputs(&before, &after, seed, TOL);
    }
}

/// Checked by hand: the four slices, matmuls, masks and adds are gone; `%y`
/// is `grouped_matmul(%x, %m, @w) : f32[tokens, 6]`, and the unused inputs
/// `%f` and `%m2` stay in the signature.
#[test]
fn snapshot() {
    let before = one_hot_model();
    let (after, report) = run(&before, OptLevel::O2);
    let shown = format!(
        "# fired masked-to-grouped: {}\n\n# after\n{}",
        fired(&report, "masked-to-grouped"),
        text::print(&after)
    );
    insta::assert_snapshot!("masked_to_grouped", shown);
}

#[test]
fn does_not_fire_on_arbitrary_float_masks() {
    let float = "%maskE = mul(%f, %f) : f32[tokens, 1]";
    let m = one_hot("%m");
    for masks in [[float, float, float, float], [&m, &m, &m, float]] {
        let (_, report) = run(&model(masks), OptLevel::O2);
        assert_eq!(fired(&report, "masked-to-grouped"), 0, "{report}");
    }
}

#[test]
fn does_not_fire_on_masks_of_two_id_inputs() {
    let (a, b) = (one_hot("%m"), one_hot("%m2"));
    let before = model([&a, &a, &b, &b]);
    let (after, report) = run(&before, OptLevel::O2);
    assert_eq!(fired(&report, "masked-to-grouped"), 0, "{report}");
    assert_same_outputs(&before, &after, 34, TOL);
}

#[test]
fn does_not_fire_when_a_modality_is_missing_or_repeated() {
    // Term 3 masks with id 2 again: modality 3 has no term, 2 has two.
    let m = one_hot("%m");
    let repeated = m.replace("value=E.0", "value=2.0");
    let (_, report) = run(&model([&m, &m, &m, &repeated]), OptLevel::O2);
    assert_eq!(fired(&report, "masked-to-grouped"), 0, "{report}");
}

/// `ids` and `modality` for `tokens` tokens of the examples: an interleaved
/// text/image sequence.
fn example_inputs(tokens: usize) -> Vec<Tensor> {
    let ids: Vec<i32> = (0..tokens).map(|i| (i * 37 % 1024) as i32).collect();
    let modality: Vec<i32> = (0..tokens).map(|i| i32::from(i % 5 >= 2)).collect();
    vec![
        Tensor::new(vec![tokens], TensorData::I32(ids)).expect("ids"),
        Tensor::new(vec![tokens], TensorData::I32(modality)).expect("modality"),
    ]
}

#[test]
fn groups_every_projection_of_the_masked_example() {
    let masked = parse(include_str!("../../examples/mot_masked.seam"));
    let grouped = parse(include_str!("../../examples/mot.seam"));
    let (after, report) = run(&masked, OptLevel::O2);
    // q, k, v, o, gate, up, down per layer, and the head.
    assert_eq!(fired(&report, "masked-to-grouped"), 2 * 7 + 1, "{report}");
    assert_eq!(
        count(&after, "grouped_matmul"),
        15,
        "{}",
        text::print(&after)
    );
    assert_eq!(count(&after, "matmul"), 0);
    // The same outputs as the masked form and as the grouped example (which
    // has the same params) under the reference evaluator.
    let weights = random_weights(&masked, 41);
    let inputs = example_inputs(12);
    let naive = evaluate(&masked, "forward", &weights, &inputs).expect("masked");
    for model in [&after, &grouped] {
        let out = evaluate(model, "forward", &weights, &inputs).expect("grouped");
        let (a, b) = (naive[0].to_f32_vec(), out[0].to_f32_vec());
        let max = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff <= 1e-5 * max.max(1.0), "differs by {diff} (max {max})");
    }
}
