//! The slot-pool ops on the GPU (lavapipe on CI) against the reference
//! evaluator: a serving function whose states are pools — `write_rows` of the
//! batch's keys and values, then `pooled_attention` — compiled at -O2 and run
//! through a runtime session beside the evaluator's `StateSession`, for head
//! dims 32, 64 and 128, grouped and plain heads, batches of 1 and 5 tokens
//! mixing slots. Later calls read rows earlier calls wrote, so the pools are
//! updated in place and persist. Tokens outside the pool are skipped by the
//! write and get zeros from the attention. `write_rows` on a plain value
//! copies it first. Tolerance: max |gpu − cpu| ≤ 1e-5 · max |cpu| + 1e-6.

mod gpu_common;

use gpu_common::{load, runtime};
use seam_compiler::optimize::OptLevel;
use seam_ir::eval::StateSession;
use seam_ir::{evaluate, random_tensor_in, random_weights, text, DType, Model, Tensor};
use seam_runtime::{HostTensor, Runtime};

/// `model` compiled at -O2 and loaded.
fn load_o2(rt: &Runtime, model: &Model) -> seam_runtime::Model {
    load(rt, model, &random_weights(model, 0), OptLevel::O2)
}

/// The runtime's copies of evaluator tensors (f32 or i32).
fn hosts(inputs: &[Tensor]) -> Vec<HostTensor> {
    inputs
        .iter()
        .map(|t| match t.dtype {
            DType::I32 => HostTensor::from_i32(t.shape.clone(), t.as_i32().unwrap()).unwrap(),
            _ => HostTensor::from_f32(t.shape.clone(), &t.to_f32_vec()).unwrap(),
        })
        .collect()
}

/// Max |gpu − cpu|, asserted within the tolerance.
fn check(gpu: &[f32], cpu: &[f32], what: &str) -> f32 {
    assert_eq!(gpu.len(), cpu.len(), "{what}");
    let scale = cpu.iter().fold(0f32, |m, x| m.max(x.abs()));
    let err = gpu
        .iter()
        .zip(cpu)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-5 * scale + 1e-6,
        "{what}: max abs error {err} (max |ref| {scale})"
    );
    err
}

/// One pool configuration: query heads, kv heads, head dim, slots, positions.
struct Pool {
    hq: usize,
    hkv: usize,
    dh: usize,
    slots: usize,
    len: usize,
}

impl Pool {
    fn model(&self) -> Model {
        let Pool {
            hq,
            hkv,
            dh,
            slots,
            len,
        } = *self;
        let pool = format!("f32[{slots}, {len}, {hkv}, {dh}]");
        let src = format!(
            "model pool\ndim t <= 8\n\
             func serve(%q: f32[t, {hq}, {dh}], %kn: f32[t, {hkv}, {dh}], %vn: f32[t, {hkv}, {dh}], %slot: i32[t], %pos: i32[t], state %kp: {pool}, state %vp: {pool}) -> (f32[t, {hq}, {dh}], state {pool}, state {pool}) {{\n\
             \x20 %k2 = write_rows(%kp, %slot, %pos, %kn) : {pool}\n\
             \x20 %v2 = write_rows(%vp, %slot, %pos, %vn) : {pool}\n\
             \x20 %a = pooled_attention(%q, %k2, %v2, %slot, %pos) : f32[t, {hq}, {dh}]\n\
             \x20 return %a, %k2, %v2\n}}\n"
        );
        text::parse_and_verify("pool", &src)
            .unwrap_or_else(|d| panic!("{}", d.render(false)))
            .0
    }

    /// The inputs of a call of `serve` for tokens `(slot, pos)`.
    fn inputs(&self, tokens: &[(i32, i32)], seed: u64) -> Vec<Tensor> {
        let t = tokens.len();
        let f = |heads: usize, k: u64| {
            random_tensor_in(DType::F32, &[t, heads, self.dh], -2.0, 2.0, seed * 3 + k).unwrap()
        };
        let ints = |v: Vec<i32>| Tensor::i32(vec![t], v).unwrap();
        vec![
            f(self.hq, 0),
            f(self.hkv, 1),
            f(self.hkv, 2),
            ints(tokens.iter().map(|&(s, _)| s).collect()),
            ints(tokens.iter().map(|&(_, p)| p).collect()),
        ]
    }
}

#[test]
fn pooled_serving_matches_the_evaluator_and_updates_pools_in_place() {
    let rt = runtime();
    let configs = [
        Pool {
            hq: 4,
            hkv: 2,
            dh: 32,
            slots: 3,
            len: 8,
        },
        Pool {
            hq: 2,
            hkv: 2,
            dh: 64,
            slots: 2,
            len: 16,
        },
        Pool {
            hq: 8,
            hkv: 2,
            dh: 128,
            slots: 4,
            len: 12,
        },
    ];
    for c in configs {
        let name = format!("Hq {} Hkv {} Dh {}", c.hq, c.hkv, c.dh);
        let model = c.model();
        let weights = random_weights(&model, 0);
        let loaded = load_o2(&rt, &model);
        let serve = loaded.entry("serve").unwrap();
        let mut gpu = loaded.session().unwrap();
        let mut cpu = StateSession::new(&model, &weights);
        let last = c.slots as i32 - 1;
        // A mixed prefill of two sequences, then decodes reading those rows.
        let calls: [&[(i32, i32)]; 4] = [
            &[(0, 0), (last, 0), (0, 1), (last, 1), (0, 2)],
            &[(0, 3)],
            &[(last, 2), (0, 4), (1, 0), (last, 3), (1, 1)],
            &[(last, 4)],
        ];
        let mut worst = 0f32;
        for (i, tokens) in calls.iter().enumerate() {
            let inputs = c.inputs(tokens, i as u64);
            let host = hosts(&inputs);
            let g = gpu.run(&serve, &host).unwrap();
            let r = cpu.run("serve", &inputs).unwrap();
            let what = format!("{name} call {i} ({} tokens)", tokens.len());
            worst = worst.max(check(&g[0].to_f32(), &r[0].to_f32_vec(), &what));
        }
        // Out-of-range tokens: the write is skipped and the output is zero;
        // the valid token matches the evaluator's call without them.
        let len = c.len as i32;
        let tokens = [(1, 2), (c.slots as i32, 0), (0, len), (-1, 0)];
        let inputs = c.inputs(&tokens, 9);
        let host = hosts(&inputs);
        let g = gpu.run(&serve, &host).unwrap()[0].to_f32();
        let valid: Vec<Tensor> = inputs.iter().map(first_row).collect();
        let r = cpu.run("serve", &valid).unwrap()[0].to_f32_vec();
        let row = c.hq * c.dh;
        worst = worst.max(check(&g[..row], &r, &format!("{name} valid token")));
        assert!(
            g[row..].iter().all(|&x| x == 0.0),
            "{name}: out-of-range tokens"
        );
        // A decode after them: the pools were not corrupted.
        let inputs = c.inputs(&[(0, 5)], 10);
        let host = hosts(&inputs);
        let g = gpu.run(&serve, &host).unwrap();
        let r = cpu.run("serve", &inputs).unwrap();
        worst = worst.max(check(
            &g[0].to_f32(),
            &r[0].to_f32_vec(),
            &format!("{name} last decode"),
        ));
        println!("{name}: max abs error {worst:e}");
    }
}

/// The first row (token) of a tensor.
fn first_row(t: &Tensor) -> Tensor {
    let mut shape = t.shape.clone();
    let row: usize = shape[1..].iter().product();
    shape[0] = 1;
    match t.dtype {
        DType::I32 => Tensor::i32(shape, t.as_i32().unwrap()[..row].to_vec()).unwrap(),
        _ => Tensor::f32(shape, t.to_f32_vec()[..row].to_vec()).unwrap(),
    }
}

/// `write_rows` into a plain value copies it: the input is left as it was.
#[test]
fn write_rows_on_a_plain_value_copies_it() {
    let src = "model copy\ndim t <= 8\n\
        func f(%b: f32[3, 4, 5], %s: i32[t], %p: i32[t], %n: f32[t, 5]) -> (f32[3, 4, 5], f32[3, 4, 5]) {\n\
        \x20 %w = write_rows(%b, %s, %p, %n) : f32[3, 4, 5]\n\
        \x20 return %w, %b\n}\n";
    let model = text::parse_and_verify("copy", src).unwrap().0;
    let rt = runtime();
    let loaded = load_o2(&rt, &model);
    let f = loaded.entry("f").unwrap();
    let mut session = loaded.session().unwrap();
    for (seed, rows) in [
        (1u64, vec![(2, 3)]),
        (2, vec![(0, 0), (2, 1), (1, 3), (0, 2)]),
    ] {
        let t = rows.len();
        let inputs = vec![
            random_tensor_in(DType::F32, &[3, 4, 5], -2.0, 2.0, seed).unwrap(),
            Tensor::i32(vec![t], rows.iter().map(|r| r.0).collect()).unwrap(),
            Tensor::i32(vec![t], rows.iter().map(|r| r.1).collect()).unwrap(),
            random_tensor_in(DType::F32, &[t, 5], -2.0, 2.0, seed + 10).unwrap(),
        ];
        let host = hosts(&inputs);
        let g = session.run(&f, &host).unwrap();
        let r = evaluate(&model, "f", &random_weights(&model, 0), &inputs).unwrap();
        for (gi, ri) in g.iter().zip(&r) {
            assert_eq!(gi.to_f32(), ri.to_f32_vec(), "{t} rows");
        }
    }
}
