//! The rotary split (one dispatch for an attention layer's split of a merged
//! q‖k‖v product, the RoPE of q and k and the KV writes) on the GPU (lavapipe
//! on CI) against the reference evaluator, at -O0 and -O2: a cache function
//! (`write_tail` states, calls of 3, 1 and 2 tokens appending) and a pool
//! function (`write_rows`, batches mixing slots), with SmolLM2's heads
//! (9 query and 3 kv heads of 64) and small ones (2 and 1 of 8). Each call
//! returns the attention output (which reads every cached row), the rotated q
//! and, for the cache, the rows just written. The bundles are checked to use
//! the fused kernel, so this tests it and not the separate ones. Tolerance:
//! max |gpu − cpu| ≤ 1e-5 · max |cpu| + 1e-6.

mod gpu_common;

use gpu_common::{bundle_bytes, runtime};
use seam_compiler::optimize::OptLevel;
use seam_ir::eval::StateSession;
use seam_ir::{random_tensor_in, random_weights, text, DType, Model, Tensor};
use seam_runtime::bundle::BundleReader;
use seam_runtime::HostTensor;

/// Heads and RoPE base of one configuration.
struct Heads {
    hq: usize,
    hkv: usize,
    dh: usize,
    theta: f32,
}

impl Heads {
    /// The model: `wqkv` and the pieces of its product; `body` continues with
    /// `%qh`, `%kh`, `%vh` in scope.
    fn model(&self, signature: &str, body: &str) -> Model {
        let Heads { hq, hkv, dh, .. } = *self;
        let (q, kv) = (hq * dh, hkv * dh);
        let w = q + 2 * kv;
        let src = format!(
            "model m\ndim t <= 8\ndim kv_len <= 16\nparam wqkv: f32[32, {w}]\nfunc f({signature} {{\n\
             \x20 %qkv = matmul(%x, @wqkv) : f32[t, {w}]\n\
             \x20 %q = slice(%qkv, axis=1, start=0, end={q}) : f32[t, {q}]\n\
             \x20 %k = slice(%qkv, axis=1, start={q}, end={}) : f32[t, {kv}]\n\
             \x20 %v = slice(%qkv, axis=1, start={}, end={w}) : f32[t, {kv}]\n\
             \x20 %qh = reshape(%q) : f32[t, {hq}, {dh}]\n\
             \x20 %kh = reshape(%k) : f32[t, {hkv}, {dh}]\n\
             \x20 %vh = reshape(%v) : f32[t, {hkv}, {dh}]\n{body}}}\n",
            q + kv,
            q + kv,
        );
        text::parse_and_verify("m.seam", &src)
            .unwrap_or_else(|d| panic!("{}", d.render(false)))
            .0
    }

    /// The types of q and of k (and v) rows, and the RoPE base.
    fn types(&self) -> (String, String, f32) {
        (
            format!("f32[t, {}, {}]", self.hq, self.dh),
            format!("f32[t, {}, {}]", self.hkv, self.dh),
            self.theta,
        )
    }

    /// Appends to `write_tail` states; returns attention, rotated q, new rows.
    fn cache_model(&self) -> Model {
        let (qt, kt, theta) = self.types();
        let ct = format!("f32[kv_len, {}, {}]", self.hkv, self.dh);
        let sig = format!(
            "%x: f32[t, 32], state %kc: {ct}, state %vc: {ct}) -> ({qt}, {qt}, {kt}, {kt}, state {ct}, state {ct})"
        );
        let body = format!(
            "  %pa = iota(axis=0) : i32[kv_len]\n  %p = tail(%pa) : i32[t]\n\
             \x20 %qr = rope(%qh, %p, theta={theta:?}) : {qt}\n\
             \x20 %kr = rope(%kh, %p, theta={theta:?}) : {kt}\n\
             \x20 %k2 = write_tail(%kc, %kr) : {ct}\n\
             \x20 %v2 = write_tail(%vc, %vh) : {ct}\n\
             \x20 %a = attention(%qr, %k2, %v2, causal=true) : {qt}\n\
             \x20 %kn = tail(%k2) : {kt}\n  %vn = tail(%v2) : {kt}\n\
             \x20 return %a, %qr, %kn, %vn, %k2, %v2\n"
        );
        self.model(&sig, &body)
    }

    /// Writes `write_rows` pools of 3 slots of 6; returns attention and rotated q.
    fn pool_model(&self) -> Model {
        let (qt, kt, theta) = self.types();
        let pt = format!("f32[3, 6, {}, {}]", self.hkv, self.dh);
        let sig = format!(
            "%x: f32[t, 32], %slot: i32[t], %pos: i32[t], state %kp: {pt}, state %vp: {pt}) -> ({qt}, {qt}, state {pt}, state {pt})"
        );
        let body = format!(
            "  %qr = rope(%qh, %pos, theta={theta:?}) : {qt}\n\
             \x20 %kr = rope(%kh, %pos, theta={theta:?}) : {kt}\n\
             \x20 %k2 = write_rows(%kp, %slot, %pos, %kr) : {pt}\n\
             \x20 %v2 = write_rows(%vp, %slot, %pos, %vh) : {pt}\n\
             \x20 %a = pooled_attention(%qr, %k2, %v2, %slot, %pos) : {qt}\n\
             \x20 return %a, %qr, %k2, %v2\n"
        );
        self.model(&sig, &body)
    }
}

const CONFIGS: [Heads; 2] = [
    Heads {
        hq: 9,
        hkv: 3,
        dh: 64,
        theta: 100000.0,
    },
    Heads {
        hq: 2,
        hkv: 1,
        dh: 8,
        theta: 10000.0,
    },
];

/// Max |gpu − cpu|, asserted within the tolerance.
fn check(gpu: &HostTensor, cpu: &Tensor, what: &str) -> f32 {
    let (g, c) = (gpu.to_f32(), cpu.to_f32_vec());
    assert_eq!(gpu.shape(), cpu.shape, "{what}");
    let scale = c.iter().fold(0f32, |m, x| m.max(x.abs()));
    let err = g
        .iter()
        .zip(&c)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-5 * scale + 1e-6,
        "{what}: max abs error {err} (max |ref| {scale})"
    );
    err
}

fn host(t: &Tensor) -> HostTensor {
    match t.dtype {
        DType::I32 => HostTensor::from_i32(t.shape.clone(), t.as_i32().unwrap()).unwrap(),
        _ => HostTensor::from_f32(t.shape.clone(), &t.to_f32_vec()).unwrap(),
    }
}

/// Runs `calls` (each the function's non-state inputs) on the GPU at `level`
/// and on the evaluator; checks every output of every call.
fn compare(model: &Model, level: OptLevel, calls: &[Vec<Tensor>], what: &str) {
    let rt = runtime();
    let weights = random_weights(model, 3);
    let bytes = bundle_bytes(&rt, model, &weights, level);
    let bundle = BundleReader::from_bytes(bytes).unwrap();
    let kernels: Vec<String> = bundle
        .manifest()
        .kernels
        .iter()
        .map(|k| k.kernel.name.clone())
        .collect();
    assert!(
        kernels.iter().any(|k| k == "rotary_split3"),
        "{what}: the bundle does not use the fused kernel: {kernels:?}"
    );
    let loaded = rt.load_bundle(bundle).unwrap();
    let f = loaded.entry("f").unwrap();
    let mut gpu = loaded.session().unwrap();
    let mut cpu = StateSession::new(model, &weights);
    let mut worst = 0f32;
    for (i, inputs) in calls.iter().enumerate() {
        let hosts: Vec<HostTensor> = inputs.iter().map(host).collect();
        let g = gpu.run(&f, &hosts).unwrap();
        let r = cpu.run("f", inputs).unwrap();
        for (j, (g, r)) in g.iter().zip(&r).enumerate() {
            worst = worst.max(check(g, r, &format!("{what} call {i} output {j}")));
        }
    }
    println!("{what}: max abs error {worst:e}");
}

fn x(t: usize, seed: u64) -> Tensor {
    random_tensor_in(DType::F32, &[t, 32], -1.0, 1.0, seed).unwrap()
}

#[test]
fn cache_calls_match_the_evaluator() {
    for h in &CONFIGS {
        let model = h.cache_model();
        let calls: Vec<Vec<Tensor>> = [3, 1, 2]
            .iter()
            .enumerate()
            .map(|(i, &t)| vec![x(t, i as u64)])
            .collect();
        for level in [OptLevel::O0, OptLevel::O2] {
            let what = format!("cache Hq {} Hkv {} Dh {} -O{level}", h.hq, h.hkv, h.dh);
            compare(&model, level, &calls, &what);
        }
    }
}

#[test]
fn pool_batches_match_the_evaluator() {
    let ints = |v: &[i32]| Tensor::i32(vec![v.len()], v.to_vec()).unwrap();
    for h in &CONFIGS {
        let model = h.pool_model();
        // Two sequences' prompts mixed, then decodes reading what they wrote.
        let batches: [&[(i32, i32)]; 3] = [
            &[(0, 0), (2, 0), (0, 1), (2, 1), (0, 2)],
            &[(0, 3)],
            &[(2, 2), (1, 0), (0, 4)],
        ];
        let calls: Vec<Vec<Tensor>> = batches
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let slots: Vec<i32> = b.iter().map(|p| p.0).collect();
                let pos: Vec<i32> = b.iter().map(|p| p.1).collect();
                vec![x(b.len(), 10 + i as u64), ints(&slots), ints(&pos)]
            })
            .collect();
        for level in [OptLevel::O0, OptLevel::O2] {
            let what = format!("pool Hq {} Hkv {} Dh {} -O{level}", h.hq, h.hkv, h.dh);
            compare(&model, level, &calls, &what);
        }
    }
}
