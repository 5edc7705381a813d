//! AdaMoE's decoupled weighting, as the `adamoe` example writes it, against a
//! hand-written evaluation: experts chosen by `topk(softmax(x·Wr), k)`, weighted
//! by `softmax(x·Wr) + x·Ws` taken at the chosen experts (not renormalised),
//! GeGLU experts, and the layer output `0.5·general(x) + 0.5·Σ w·expert(x)`.

use seam_frontends::examples::adamoe;
use seam_ir::{evaluate, random_tensor, random_weights, text, DType, Model, UnaryFn};

/// One AdaMoE MLP in the text format, written exactly as the example's layers
/// are (`examples/adamoe.seam`, layer 0), at small sizes.
const LAYER: &str = "model adamoe_layer
dim tokens <= 16
param router: f32[8, 4]
param scale_adapter: f32[8, 4]
param experts.w_gate: f32[4, 8, 6]
param experts.w_up: f32[4, 8, 6]
param experts.w_down: f32[4, 6, 8]
param shared.w_gate: f32[8, 10]
param shared.w_up: f32[8, 10]
param shared.w_down: f32[10, 8]
func forward(%h: f32[tokens, 8]) -> (f32[tokens, 8]) {
  %router_logits = matmul(%h, @router) : f32[tokens, 4]
  %router_probs = softmax(%router_logits) : f32[tokens, 4]
  %scale_adapter = matmul(%h, @scale_adapter) : f32[tokens, 4]
  %expert_scores = add(%router_probs, %scale_adapter) : f32[tokens, 4]
  %expert_ids, %expert_weights = route(%router_probs, %expert_scores, k=2, mode=take, renorm=false) : i32[tokens, 2], f32[tokens, 2]
  %moe = moe(%h, %expert_ids, %expert_weights, @experts.w_gate, @experts.w_up, @experts.w_down, @shared.w_gate, @shared.w_up, @shared.w_down, act=geglu) : f32[tokens, 8]
  %output_scale = const(value=0.5) : f32[]
  %moe_scaled = mul(%moe, %output_scale) : f32[tokens, 8]
  return %moe_scaled
}
";

fn weight(m: &Model, w: &seam_ir::Weights, name: &str) -> Vec<f32> {
    let id = m
        .param_by_name(name)
        .unwrap_or_else(|| panic!("no param {name}"));
    w.get(id).expect("weight").to_f32_vec()
}

/// `x[k] · w[k, n]` for one row.
fn row_matmul(x: &[f32], w: &[f32], n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| {
            x.iter()
                .enumerate()
                .map(|(k, &a)| f64::from(a) * f64::from(w[k * n + j]))
                .sum()
        })
        .collect()
}

/// A GeGLU FFN `(gelu_erf(x·g) * (x·u))·d` for one row, hidden size `f`.
fn geglu(x: &[f32], g: &[f32], u: &[f32], d: &[f32], f: usize) -> Vec<f64> {
    let (gate, up) = (row_matmul(x, g, f), row_matmul(x, u, f));
    let hidden: Vec<f32> = gate
        .iter()
        .zip(&up)
        .map(|(&a, &b)| (f64::from(UnaryFn::GeluErf.apply(a as f32)) * b) as f32)
        .collect();
    row_matmul(&hidden, d, x.len())
}

/// The ops (with their attributes) of `func`'s instructions named `prefix` + one
/// of the reference layer's value names, in order.
fn layer_ops(m: &Model, prefix: &str) -> Vec<seam_ir::Op> {
    let func = &m.functions[0];
    let names = [
        "router_logits",
        "router_probs",
        "scale_adapter",
        "expert_scores",
        "expert_ids",
        "moe",
        "output_scale",
        "moe_scaled",
    ];
    func.body
        .iter()
        .filter(|i| {
            let name = &func.value(i.results[0]).name;
            names.iter().any(|n| *name == format!("{prefix}{n}"))
        })
        .map(|i| i.op.clone())
        .collect()
}

#[test]
fn the_example_writes_adamoe_layers_as_this_reference_does() {
    let (reference, _) = text::parse_and_verify("adamoe_layer.seam", LAYER).expect("parses");
    let example = adamoe().build().expect("builds");
    let want = layer_ops(&reference, "");
    assert_eq!(want.len(), 8);
    for layer in 0..adamoe().layers {
        assert_eq!(
            layer_ops(&example, &format!("l{layer}.")),
            want,
            "layer {layer}"
        );
    }
}

#[test]
fn decoupled_weighting_matches_a_hand_written_evaluation() {
    let (m, _) = text::parse_and_verify("adamoe_layer.seam", LAYER).expect("parses");
    let w = random_weights(&m, 11);
    let (t, d, e, f, fs, k) = (5usize, 8usize, 4usize, 6usize, 10usize, 2usize);
    let h = random_tensor(DType::F32, &[t, d], 3).expect("input");
    let got = evaluate(&m, "forward", &w, std::slice::from_ref(&h)).expect("evaluates");
    let got = got[0].to_f32_vec();
    let hv = h.to_f32_vec();
    let (wr, ws) = (weight(&m, &w, "router"), weight(&m, &w, "scale_adapter"));
    let (eg, eu, ed) = (
        weight(&m, &w, "experts.w_gate"),
        weight(&m, &w, "experts.w_up"),
        weight(&m, &w, "experts.w_down"),
    );
    let (sg, su, sd) = (
        weight(&m, &w, "shared.w_gate"),
        weight(&m, &w, "shared.w_up"),
        weight(&m, &w, "shared.w_down"),
    );
    let mut max_err = 0f64;
    for row in 0..t {
        let x = &hv[row * d..(row + 1) * d];
        let logits = row_matmul(x, &wr, e);
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = logits.iter().map(|l| (l - top).exp()).sum();
        let probs: Vec<f64> = logits.iter().map(|l| (l - top).exp() / z).collect();
        let adapter = row_matmul(x, &ws, e);
        // Selection from the router alone (ties: lower index first) ...
        let mut order: Vec<usize> = (0..e).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let mut want = vec![0f64; d];
        for &ex in &order[..k] {
            // ... weighting from the router plus the independent adapter, as is.
            let weight = probs[ex] + adapter[ex];
            let (gs, ds) = (d * f, f * d);
            let y = geglu(
                x,
                &eg[ex * gs..(ex + 1) * gs],
                &eu[ex * gs..(ex + 1) * gs],
                &ed[ex * ds..(ex + 1) * ds],
                f,
            );
            want.iter_mut()
                .zip(y)
                .for_each(|(acc, v)| *acc += weight * v);
        }
        let general = geglu(x, &sg, &su, &sd, fs);
        for c in 0..d {
            let expected = 0.5 * general[c] + 0.5 * want[c];
            max_err = max_err.max((expected - f64::from(got[row * d + c])).abs());
        }
    }
    println!("AdaMoE layer: max |evaluator − hand-written| = {max_err:.3e}");
    assert!(max_err < 1e-4, "max error {max_err}");
}
