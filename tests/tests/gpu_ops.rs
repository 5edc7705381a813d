//! Every op lowered to GPU kernels and checked against the reference evaluator
//! on seeded random inputs, at awkward row counts (1, 7, 33, 257) and dims that
//! are not multiples of any tile. Tolerance: max |gpu − cpu| ≤ 1e-4 · max(1, max |cpu|).

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{evaluate, random_tensor_in, random_weights, text, DType, Tensor, TensorData};
use seam_runtime::bundle::BundleReader;
use seam_runtime::{DeviceOptions, HostTensor, Runtime};

const ROWS: [usize; 4] = [1, 7, 33, 257];

fn to_host(t: &Tensor) -> HostTensor {
    match &t.data {
        TensorData::F32(v) => HostTensor::from_f32(t.shape.clone(), v).unwrap(),
        TensorData::I32(v) => HostTensor::from_i32(t.shape.clone(), v).unwrap(),
        TensorData::U32(v) => HostTensor::from_u32(t.shape.clone(), v).unwrap(),
        TensorData::F16(_) => panic!("no f16 inputs here"),
    }
}

/// Compiles `body` (a model over `dim t <= 512`) and compares GPU and CPU for
/// each row count; integer inputs are drawn in `0..int_hi`.
fn check(name: &str, body: &str, int_hi: f64) {
    let src = format!("model {name}\ndim t <= 512\n{body}");
    let (model, _) =
        text::parse_and_verify(name, &src).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let weights = random_weights(&model, 3);
    std::env::set_var("WGPU_BACKEND", "vulkan");
    let rt = Runtime::new(&DeviceOptions::default()).expect("a Vulkan device");
    let options = CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), OptLevel::O0);
    let bundle = compile(&model, &weights, &options)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .bundle;
    let loaded = rt
        .load_bundle(BundleReader::from_bytes(bundle.to_bytes().unwrap()).unwrap())
        .unwrap();
    let f = loaded.entry("f").unwrap();
    let mut session = loaded.session().unwrap();
    let func = &model.functions[0];
    for (ri, &rows) in ROWS.iter().enumerate() {
        let inputs: Vec<Tensor> = func
            .inputs
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ty = &func.value(v).ty;
                let shape = ty.shape.resolve(|_| Some(rows as u64)).unwrap();
                let (lo, hi) = if ty.dtype.is_int() {
                    (0.0, int_hi)
                } else {
                    (-2.0, 2.0)
                };
                random_tensor_in(ty.dtype, &shape, lo, hi, (ri * 10 + i) as u64).unwrap()
            })
            .collect();
        let host: Vec<HostTensor> = inputs.iter().map(to_host).collect();
        let gpu = session
            .run(&f, &host)
            .unwrap_or_else(|e| panic!("{name} rows={rows}: {e}"));
        let cpu = evaluate(&model, "f", &weights, &inputs).unwrap();
        for (g, c) in gpu.iter().zip(&cpu) {
            assert_eq!(g.shape(), c.shape, "{name} rows={rows}");
            let (gv, cv) = (g.to_f32(), c.to_f32_vec());
            let scale = cv.iter().fold(1f32, |m, x| m.max(x.abs()));
            let err = gv
                .iter()
                .zip(&cv)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let exact = g.dtype() != DType::F32;
            assert!(
                if exact {
                    err == 0.0
                } else {
                    err <= 1e-4 * scale
                },
                "{name} rows={rows}: max abs err {err} (scale {scale})"
            );
        }
    }
}

#[test]
fn matmul_with_weight_and_with_activation() {
    check("matmul", "param w: f32[37, 19]\nfunc f(%x: f32[t, 37], %y: f32[t, 19]) -> (f32[t, 19], f32[t, 19]) {\n  %a = matmul(%x, @w) : f32[t, 19]\n  %b = add(%a, %y) : f32[t, 19]\n  return %a, %b\n}\n", 4.0);
}

#[test]
fn elementwise_unary_and_broadcasting_binary() {
    check("ew", "param b: f32[13]\nfunc f(%x: f32[t, 13], %c: f32[t, 1]) -> (f32[t, 13], f32[t, 13], f32[t, 13], f32[t, 13], f32[t, 13], f32[t, 13], f32[t, 13]) {\n  %a = silu(%x) : f32[t, 13]\n  %g = gelu(%x, approx=erf) : f32[t, 13]\n  %h = gelu(%x, approx=tanh) : f32[t, 13]\n  %s = sigmoid(%x) : f32[t, 13]\n  %k = tanh(%x) : f32[t, 13]\n  %r = add(%x, @b) : f32[t, 13]\n  %m = mul(%x, %c) : f32[t, 13]\n  return %a, %g, %h, %s, %k, %r, %m\n}\n", 4.0);
}

#[test]
fn exp_neg_sub_div_eq_cast_const_iota() {
    check("ew2", "func f(%x: f32[t, 5], %y: f32[t, 5], %i: i32[t, 5]) -> (f32[t, 5], f32[t, 5], f32[t, 5], i32[t, 5], f32[t, 5], i32[t, 5], f32[t, 5]) {\n  %e = exp(%x) : f32[t, 5]\n  %n = neg(%x) : f32[t, 5]\n  %two = const(value=2.5) : f32[t, 5]\n  %d = div(%x, %two) : f32[t, 5]\n  %q = eq(%i, %i) : i32[t, 5]\n  %c = cast(%i) : f32[t, 5]\n  %o = iota(axis=0) : i32[t, 5]\n  %s = sub(%x, %y) : f32[t, 5]\n  return %e, %n, %d, %q, %c, %o, %s\n}\n", 7.0);
}

/// `relu2` (squared ReLU), added through seam-core's table alone: as its own
/// kernel and inside a fused one.
#[test]
fn relu2_alone_and_fused() {
    check("relu2", "func f(%x: f32[t, 11], %y: f32[t, 11]) -> (f32[t, 11], f32[t, 11]) {\n  %r = relu2(%x) : f32[t, 11]\n  %g = fused(%x, %y, expr=\"mul(relu2($0), sigmoid($1))\") : f32[t, 11]\n  return %r, %g\n}\n", 4.0);
}

#[test]
fn norms_softmax_and_sum() {
    check("rows", "param w: f32[29]\nparam b: f32[29]\nfunc f(%x: f32[t, 29]) -> (f32[t, 29], f32[t, 29], f32[t, 29], f32[t]) {\n  %r = rms_norm(%x, @w, eps=1e-5) : f32[t, 29]\n  %l = layer_norm(%x, @w, @b, eps=1e-5) : f32[t, 29]\n  %s = softmax(%x) : f32[t, 29]\n  %u = reduce_sum(%x) : f32[t]\n  return %r, %l, %s, %u\n}\n", 4.0);
}

#[test]
fn movement_transpose_concat_slice_gather_reshape() {
    check("move", "param e: f32[50, 6]\nfunc f(%x: f32[t, 6], %y: f32[t, 3], %ids: i32[t]) -> (f32[6, t], f32[t, 9], f32[t, 4], f32[t, 6], f32[t, 2, 3]) {\n  %tr = transpose(%x, perm=[1, 0]) : f32[6, t]\n  %c = concat(%x, %y, axis=1) : f32[t, 9]\n  %s = slice(%c, axis=1, start=3, end=7) : f32[t, 4]\n  %g = gather(@e, %ids) : f32[t, 6]\n  %r = reshape(%g) : f32[t, 2, 3]\n  return %tr, %c, %s, %g, %r\n}\n", 50.0);
}

#[test]
fn rope_and_causal_grouped_query_attention() {
    check("attn", "func f(%q: f32[t, 4, 8], %k: f32[t, 2, 8], %v: f32[t, 2, 8]) -> (f32[t, 4, 8], f32[t, 4, 8]) {\n  %p = iota(axis=0) : i32[t]\n  %qr = rope(%q, %p, theta=10000.0) : f32[t, 4, 8]\n  %kr = rope(%k, %p, theta=10000.0) : f32[t, 2, 8]\n  %a = attention(%qr, %kr, %v, causal=true) : f32[t, 4, 8]\n  return %qr, %a\n}\n", 4.0);
}

/// Slices of one value along one axis lower as one `split` dispatch (here 3
/// outputs of an f32 and 2 of an i32 tensor, one overlapping another).
#[test]
fn sibling_slices_lower_as_split() {
    check("split", "func f(%x: f32[t, 9], %i: i32[t, 4, 2]) -> (f32[t, 2], f32[t, 4], f32[t, 5], i32[t, 1, 2], i32[t, 3, 2]) {\n  %a = slice(%x, axis=1, start=0, end=2) : f32[t, 2]\n  %b = slice(%x, axis=1, start=2, end=6) : f32[t, 4]\n  %c = slice(%x, axis=1, start=4, end=9) : f32[t, 5]\n  %d = slice(%i, axis=1, start=3, end=4) : i32[t, 1, 2]\n  %e = slice(%i, axis=1, start=0, end=3) : i32[t, 3, 2]\n  return %a, %b, %c, %d, %e\n}\n", 50.0);
}

/// `route` over `[t, L, E]`: one decision per row (the batched router heads).
#[test]
fn route_over_leading_dims() {
    check("route3", "func f(%l: f32[t, 3, 6]) -> (i32[t, 3, 2], f32[t, 3, 2]) {\n  %a, %aw = route(%l, k=2, mode=softmax_topk, renorm=true) : i32[t, 3, 2], f32[t, 3, 2]\n  return %a, %aw\n}\n", 4.0);
}

#[test]
fn topk_and_every_route_mode() {
    check("route", "func f(%l: f32[t, 6], %s: f32[t, 6]) -> (f32[t, 2], i32[t, 2], i32[t, 2], f32[t, 2], i32[t, 1], f32[t, 1], i32[t, 3], f32[t, 3]) {\n  %v, %i = topk(%l, k=2) : f32[t, 2], i32[t, 2]\n  %a, %aw = route(%l, k=2, mode=softmax_topk, renorm=true) : i32[t, 2], f32[t, 2]\n  %b, %bw = route(%l, k=1, mode=topk_softmax) : i32[t, 1], f32[t, 1]\n  %c, %cw = route(%l, %s, k=3, mode=take) : i32[t, 3], f32[t, 3]\n  return %v, %i, %a, %aw, %b, %bw, %c, %cw\n}\n", 4.0);
}

#[test]
fn moe_top2_with_shared_expert_and_geglu() {
    check("moe", "param g: f32[5, 12, 20]\nparam u: f32[5, 12, 20]\nparam d: f32[5, 20, 12]\nparam sg: f32[12, 9]\nparam su: f32[12, 9]\nparam sd: f32[9, 12]\nfunc f(%x: f32[t, 12], %l: f32[t, 5]) -> (f32[t, 12], f32[t, 12]) {\n  %ids, %w = route(%l, k=2, mode=softmax_topk, renorm=true) : i32[t, 2], f32[t, 2]\n  %y = moe(%x, %ids, %w, @g, @u, @d, @sg, @su, @sd, act=swiglu) : f32[t, 12]\n  %z = moe(%x, %ids, %w, @g, @u, @d, act=geglu) : f32[t, 12]\n  return %y, %z\n}\n", 4.0);
}

#[test]
fn tail_and_write_tail_on_plain_values() {
    // `%b` is not a state, so write_tail copies it before writing its last t
    // rows; `%b` itself must stay intact (it is returned too).
    check("tails", "func f(%b: f32[300, 5], %x: f32[t, 5]) -> (f32[300, 5], f32[300, 5], f32[t, 5], i32[1]) {\n  %w = write_tail(%b, %x) : f32[300, 5]\n  %l = tail(%b) : f32[t, 5]\n  %o = iota(axis=0) : i32[t]\n  %p = tail(%o) : i32[1]\n  return %w, %b, %l, %p\n}\n", 4.0);
}

#[test]
fn gated_matmul_and_matmul_add_every_weight_path() {
    // K=37, N=19: the scalar row-blocked path; K=36, N=20: the subgroup path on
    // lavapipe; weights as params (repacked) and as run-time values (row-major).
    check("fused_mm", "param g: f32[37, 19]\nparam u: f32[37, 19]\nparam g4: f32[36, 20]\nparam u4: f32[36, 20]\nparam bias: f32[19]\nparam bias4: f32[20]\nfunc f(%x: f32[t, 37], %x4: f32[t, 36], %wv: f32[37, 19], %r: f32[t, 19], %r4: f32[t, 20]) -> (f32[t, 19], f32[t, 19], f32[t, 20], f32[t, 19], f32[t, 19], f32[t, 20], f32[t, 20], f32[t, 19]) {\n  %a = gated_matmul(%x, @g, @u, act=swiglu) : f32[t, 19]\n  %b = gated_matmul(%x, @g, @u, act=geglu) : f32[t, 19]\n  %c = gated_matmul(%x4, @g4, @u4) : f32[t, 20]\n  %d = matmul_add(%x, @g, @bias) : f32[t, 19]\n  %e = matmul_add(%x, @u, %r) : f32[t, 19]\n  %h = matmul_add(%x4, @g4, @bias4) : f32[t, 20]\n  %i = matmul_add(%x4, @u4, %r4) : f32[t, 20]\n  %j = gated_matmul(%x, %wv, @u) : f32[t, 19]\n  return %a, %b, %c, %d, %e, %h, %i, %j\n}\n", 4.0);
}

#[test]
fn fused_elementwise_expressions_broadcast() {
    check("fused_ew", "param b: f32[13]\nfunc f(%x: f32[t, 13], %y: f32[t, 13], %c: f32[t, 1]) -> (f32[t, 13], f32[t, 13]) {\n  %a = fused(%x, %y, expr=\"mul(silu($0), $1)\") : f32[t, 13]\n  %z = fused(%x, @b, %c, %y, expr=\"add(div(exp(neg($0)), add(1.5, sigmoid($2))), sub(mul(gelu_tanh($1), tanh($3)), gelu_erf($0)))\") : f32[t, 13]\n  return %a, %z\n}\n", 4.0);
}

#[test]
fn moe_top1_unit_weight_writes_tokens_without_a_combine() {
    // route k=1 topk_softmax: weight exactly 1, so the down projection writes
    // token order directly (with and without the shared expert added).
    check("moe1", "param g: f32[5, 12, 20]\nparam u: f32[5, 12, 20]\nparam d: f32[5, 20, 12]\nparam sg: f32[12, 9]\nparam su: f32[12, 9]\nparam sd: f32[9, 12]\nfunc f(%x: f32[t, 12], %l: f32[t, 5]) -> (f32[t, 12], f32[t, 12]) {\n  %ids, %w = route(%l, k=1, mode=topk_softmax) : i32[t, 1], f32[t, 1]\n  %y = moe(%x, %ids, %w, @g, @u, @d, @sg, @su, @sd, act=swiglu) : f32[t, 12]\n  %z = moe(%x, %ids, %w, @g, @u, @d, act=geglu) : f32[t, 12]\n  return %y, %z\n}\n", 4.0);
}
