//! Element-wise kernels: unary ops, broadcasting binary ops, eq, casts, fill,
//! iota, transposes and a fused expression.

use seam_shaders::{
    binary, cast, elementwise, fill, iota, transpose, transpose_sizes, unary, BinaryFn, Dim,
    ElementwiseConfig, Expr, IndexMap, ScalarType, UnaryFn,
};

use crate::common::*;

fn gelu_erf(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

#[test]
fn unary_ops_match_f64() {
    let lim = limits();
    for &n in &[1usize, 7, 1000] {
        let mut x: Vec<f32> = rand_f32(n as u64, n).iter().map(|v| v * 6.0).collect();
        if n == 1000 {
            x[0] = 0.0;
            x[1] = -30.0;
            x[2] = 30.0;
            x[3] = -9.0;
        }
        let xb = up(&x);
        for (op, f) in [
            (UnaryFn::Neg, (|v: f64| -v) as fn(f64) -> f64),
            (UnaryFn::Exp, f64::exp),
            (UnaryFn::Silu, |v| v / (1.0 + (-v).exp())),
            (UnaryFn::GeluErf, gelu_erf),
            (UnaryFn::GeluTanh, gelu_tanh),
            (UnaryFn::Sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
            (UnaryFn::Tanh, f64::tanh),
        ] {
            let k = unary(op, &lim).unwrap();
            let p = pipeline(&k);
            let o = out(n);
            run(&p, &[&xb, &o], &[("n", n as u32)]);
            let want: Vec<f64> = x.iter().map(|&v| f(f64::from(v))).collect();
            // Transcendentals: 1e-4 relative, with an absolute floor of 1e-6.
            assert_close(&format!("{op:?} n={n}"), &read_f32(&o, n), &want);
        }
    }
}

#[test]
fn sqrt_and_recip() {
    let lim = limits();
    let x: Vec<f32> = rand_f32(3, 33).iter().map(|v| v.abs() + 0.1).collect();
    let xb = up(&x);
    for (op, f) in [
        (UnaryFn::Sqrt, f64::sqrt as fn(f64) -> f64),
        (UnaryFn::Recip, |v: f64| 1.0 / v),
    ] {
        let p = pipeline(&unary(op, &lim).unwrap());
        let o = out(33);
        run(&p, &[&xb, &o], &[("n", 33)]);
        let want: Vec<f64> = x.iter().map(|&v| f(f64::from(v))).collect();
        assert_close(&format!("{op:?}"), &read_f32(&o, 33), &want);
    }
}

/// A broadcast case: the second operand's map, its data, its index for output
/// element `i`, and the extra sizes.
type Case<'a> = (
    IndexMap,
    &'a [f32],
    Box<dyn Fn(usize) -> usize>,
    Vec<(&'a str, u32)>,
);

#[test]
fn binary_broadcasts_f32() {
    let lim = limits();
    let (t, d) = (7usize, 33usize);
    let a = rand_f32(10, t * d);
    let bias = rand_f32(11, d);
    let col = rand_f32(12, t);
    let s = [0.75f32];
    let ab = up(&a);
    for op in [
        BinaryFn::Add,
        BinaryFn::Sub,
        BinaryFn::Mul,
        BinaryFn::Div,
        BinaryFn::Max,
        BinaryFn::Min,
    ] {
        let f = |x: f64, y: f64| match op {
            BinaryFn::Add => x + y,
            BinaryFn::Sub => x - y,
            BinaryFn::Mul => x * y,
            BinaryFn::Div => x / y,
            BinaryFn::Max => x.max(y),
            BinaryFn::Min => x.min(y),
            BinaryFn::Eq => unreachable!(),
        };
        // [T, D] ∘ [D] (trailing broadcast), [T, D] ∘ [T, 1] (outer), [T, D] ∘ scalar.
        let cases: Vec<Case<'_>> = vec![
            (
                IndexMap::Repeat(Dim::Dynamic),
                &bias,
                Box::new(move |i| i % d),
                vec![("len1", d as u32)],
            ),
            (
                IndexMap::Outer(Dim::Fixed(d as u32)),
                &col,
                Box::new(move |i| i / d),
                vec![],
            ),
            (IndexMap::Scalar, &s, Box::new(|_| 0), vec![]),
        ];
        for (map, b, idx, extra) in cases {
            let k = binary(op, ScalarType::F32, map, &lim).unwrap();
            let p = pipeline(&k);
            let (bb, o) = (up(b), out(t * d));
            let mut sizes = vec![("n", (t * d) as u32)];
            sizes.extend(extra);
            run(&p, &[&ab, &bb, &o], &sizes);
            let want: Vec<f64> = (0..t * d)
                .map(|i| f(f64::from(a[i]), f64::from(b[idx(i)])))
                .collect();
            assert_close(&k.name, &read_f32(&o, t * d), &want);
        }
    }
}

#[test]
fn general_strided_broadcast() {
    // out[2, 3, 4] = a[2, 1, 4] + b[3, 1] with strides (0 where broadcast).
    let lim = limits();
    let a = rand_f32(20, 8);
    let b = rand_f32(21, 3);
    let mut cfg = ElementwiseConfig::new(
        "add_strided",
        Expr::binary(BinaryFn::Add, Expr::Input(0), Expr::Input(1)),
        ScalarType::F32,
        &lim,
    )
    .input(ScalarType::F32, IndexMap::Strided(vec![Dim::Dynamic; 3]))
    .input(ScalarType::F32, IndexMap::Strided(vec![Dim::Dynamic; 3]));
    cfg.dims = Some(vec![Dim::Dynamic; 3]);
    let p = pipeline(&elementwise(&cfg).unwrap());
    let (ab, bb, o) = (up(&a), up(&b), out(24));
    let sizes = [
        ("n", 24),
        ("d0", 2),
        ("d1", 3),
        ("d2", 4),
        ("s0_0", 4),
        ("s0_1", 0),
        ("s0_2", 1),
        ("s1_0", 0),
        ("s1_1", 1),
        ("s1_2", 0),
    ];
    run(&p, &[&ab, &bb, &o], &sizes);
    let mut want = Vec::new();
    for i in 0..2 {
        for j in 0..3 {
            for l in 0..4 {
                want.push(f64::from(a[i * 4 + l]) + f64::from(b[j]));
            }
        }
    }
    assert_close("strided add", &read_f32(&o, 24), &want);
}

#[test]
fn integer_ops_eq_and_casts() {
    let lim = limits();
    let a = rand_i32(30, 257, -50, 50);
    let b = rand_i32(31, 257, 1, 7);
    let (ab, bb) = (up(&a), up(&b));
    for op in [
        BinaryFn::Add,
        BinaryFn::Sub,
        BinaryFn::Mul,
        BinaryFn::Div,
        BinaryFn::Eq,
    ] {
        let p = pipeline(&binary(op, ScalarType::I32, IndexMap::Same, &lim).unwrap());
        let o = out(257);
        run(&p, &[&ab, &bb, &o], &[("n", 257)]);
        let want: Vec<i32> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| match op {
                BinaryFn::Add => x + y,
                BinaryFn::Sub => x - y,
                BinaryFn::Mul => x * y,
                BinaryFn::Div => x / y,
                BinaryFn::Eq => i32::from(x == y),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(read_i32(&o, 257), want, "{op:?}");
    }
    // f32 eq: 1.0 where equal.
    let x = [1.0f32, 2.0, -0.0, 3.5];
    let y = [1.0f32, 2.5, 0.0, 3.5];
    let p = pipeline(&binary(BinaryFn::Eq, ScalarType::F32, IndexMap::Same, &lim).unwrap());
    let o = out(4);
    run(&p, &[&up(&x), &up(&y), &o], &[("n", 4)]);
    assert_eq!(read_f32(&o, 4), vec![1.0, 0.0, 1.0, 1.0]);
    // Casts: f32 -> i32 truncates toward zero and saturates; i32 -> f32.
    let f = [1.7f32, -1.7, 0.0, -0.5, 3e9, -3e9, 123456.9];
    let p = pipeline(&cast(ScalarType::F32, ScalarType::I32, &lim).unwrap());
    let o = out(f.len());
    run(&p, &[&up(&f), &o], &[("n", f.len() as u32)]);
    // WGSL saturates to the largest f32 below 2^31 (2147483520), not i32::MAX.
    assert_eq!(
        read_i32(&o, f.len()),
        vec![1, -1, 0, 0, 2147483520, i32::MIN, 123456]
    );
    let p = pipeline(&cast(ScalarType::I32, ScalarType::F32, &lim).unwrap());
    let o = out(257);
    run(&p, &[&ab, &o], &[("n", 257)]);
    let want: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    assert_eq!(read_f32(&o, 257), want);
}

#[test]
fn fill_iota_and_fused_expression() {
    let lim = limits();
    let p = pipeline(&fill(-2.5, ScalarType::F32, &lim).unwrap());
    let o = out(1000);
    run(&p, &[&o], &[("n", 1000)]);
    assert!(read_f32(&o, 1000).iter().all(|&v| v == -2.5));
    // iota over [3, 5, 2] along axis 1.
    let p = pipeline(&iota(1, 3, ScalarType::I32, &lim).unwrap());
    let o = out(30);
    run(&p, &[&o], &[("n", 30), ("d0", 3), ("d1", 5), ("d2", 2)]);
    let want: Vec<i32> = (0..30).map(|i| (i / 2) % 5).collect();
    assert_eq!(read_i32(&o, 30), want);
    // silu(g) * u, the SwiGLU epilogue as one kernel.
    let g = rand_f32(40, 77);
    let u = rand_f32(41, 77);
    let cfg = ElementwiseConfig::new(
        "swiglu",
        Expr::binary(
            BinaryFn::Mul,
            Expr::unary(UnaryFn::Silu, Expr::Input(0)),
            Expr::Input(1),
        ),
        ScalarType::F32,
        &lim,
    )
    .input(ScalarType::F32, IndexMap::Same)
    .input(ScalarType::F32, IndexMap::Same);
    let p = pipeline(&elementwise(&cfg).unwrap());
    let o = out(77);
    run(&p, &[&up(&g), &up(&u), &o], &[("n", 77)]);
    let want: Vec<f64> = g
        .iter()
        .zip(&u)
        .map(|(&a, &b)| {
            let a = f64::from(a);
            a / (1.0 + (-a).exp()) * f64::from(b)
        })
        .collect();
    assert_close("swiglu", &read_f32(&o, 77), &want);
}

#[test]
fn transposes() {
    let lim = limits();
    for (shape, perm) in [
        (vec![7u32, 33], vec![1usize, 0]),
        (vec![2, 3, 5], vec![2, 0, 1]),
        (vec![1, 4, 1, 3], vec![3, 1, 2, 0]),
    ] {
        let n: usize = shape.iter().product::<u32>() as usize;
        let x = rand_i32(50, n, -1000, 1000);
        let p = pipeline(&transpose(&perm, ScalarType::I32, &lim).unwrap());
        let o = out(n);
        let sizes = transpose_sizes(&shape, &perm);
        let sizes: Vec<(&str, u32)> = sizes.iter().map(|(s, v)| (s.as_str(), *v)).collect();
        run(&p, &[&up(&x), &o], &sizes);
        // Reference: walk the output in order.
        let rank = shape.len();
        let mut in_strides = vec![1usize; rank];
        for d in (0..rank - 1).rev() {
            in_strides[d] = in_strides[d + 1] * shape[d + 1] as usize;
        }
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p] as usize).collect();
        let mut want = Vec::with_capacity(n);
        for i in 0..n {
            let mut rest = i;
            let mut src = 0;
            for d in (0..rank).rev() {
                let c = rest % out_shape[d];
                rest /= out_shape[d];
                src += c * in_strides[perm[d]];
            }
            want.push(x[src]);
        }
        assert_eq!(read_i32(&o, n), want, "{shape:?} {perm:?}");
    }
}
