//! Evaluator tests: a hand-computed case per op, data-dependent errors, input
//! checking, f16 rounding, `moe` against its dense expansion, and a whole
//! decoder-shaped model.

use half::f16;

use super::*;
use crate::op::{BinaryFn, GatedAct, ReduceOp, RouteMode, UnaryFn};
use crate::testutil::{assert_close, f32t, i32t, moe_decoder, run, tf, ti, Builder, DecoderConfig};
use crate::weights::{random_tensor, random_tensor_in, random_weights, Weights};

/// Runs a model of one unary op on one f32 input.
fn unary_f32(op: Op, shape: &[u64], x: &[f32]) -> Vec<f32> {
    let mut b = Builder::new();
    let i = b.input("x", f32t(shape.iter().copied()));
    let y = b.op(op, &[i]);
    let m = b.finish(&[y]);
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    run(&m, vec![], &[tf(&dims, x)]).unwrap()[0].to_f32_vec()
}

/// Runs a model of one binary op on two inputs.
fn binary(op: Op, a: (TensorType, Tensor), b_: (TensorType, Tensor)) -> Result<Tensor, EvalError> {
    let mut b = Builder::new();
    let x = b.input("a", a.0);
    let y = b.input("b", b_.0);
    let z = b.op(op, &[x, y]);
    let m = b.finish(&[z]);
    run(&m, vec![], &[a.1, b_.1]).map(|mut v| v.remove(0))
}

#[test]
fn matmul_2x3_by_3x2() {
    // [[1,2,3],[4,5,6]] · [[7,8],[9,10],[11,12]]
    //   = [[1·7+2·9+3·11, 1·8+2·10+3·12], [4·7+5·9+6·11, 4·8+5·10+6·12]]
    //   = [[58, 64], [139, 154]]
    let out = binary(
        Op::MatMul,
        (f32t([2u64, 3]), tf(&[2, 3], &[1., 2., 3., 4., 5., 6.])),
        (f32t([3u64, 2]), tf(&[3, 2], &[7., 8., 9., 10., 11., 12.])),
    )
    .unwrap();
    assert_eq!(out.shape, vec![2, 2]);
    assert_eq!(out.as_f32().unwrap(), &[58., 64., 139., 154.]);
}

#[test]
fn matmul_batched_and_shared_rhs() {
    // Batched: [1,2]·[[3],[4]] = 11 and [5,6]·[[7],[8]] = 83.
    let out = binary(
        Op::MatMul,
        (f32t([2u64, 1, 2]), tf(&[2, 1, 2], &[1., 2., 5., 6.])),
        (f32t([2u64, 2, 1]), tf(&[2, 2, 1], &[3., 4., 7., 8.])),
    )
    .unwrap();
    assert_eq!(out.shape, vec![2, 1, 1]);
    assert_eq!(out.as_f32().unwrap(), &[11., 83.]);
    // Rank-2 rhs shared by every batch: [1,2]·diag(1,2) = [1,4]; [5,6] → [5,12].
    let out = binary(
        Op::MatMul,
        (f32t([2u64, 1, 2]), tf(&[2, 1, 2], &[1., 2., 5., 6.])),
        (f32t([2u64, 2]), tf(&[2, 2], &[1., 0., 0., 2.])),
    )
    .unwrap();
    assert_eq!(out.shape, vec![2, 1, 2]);
    assert_eq!(out.as_f32().unwrap(), &[1., 4., 5., 12.]);
}

#[test]
fn broadcasting_binary_ops() {
    let col = || (f32t([2u64, 1]), tf(&[2, 1], &[1., 2.]));
    let row = || (f32t([3u64]), tf(&[3], &[10., 20., 30.]));
    // [[1],[2]] + [10,20,30] = [[11,21,31],[12,22,32]]
    let out = binary(Op::Binary(BinaryFn::Add), col(), row()).unwrap();
    assert_eq!(out.shape, vec![2, 3]);
    assert_eq!(out.as_f32().unwrap(), &[11., 21., 31., 12., 22., 32.]);
    // [10,20,30] - [[1],[2]] = [[9,19,29],[8,18,28]]
    let out = binary(Op::Binary(BinaryFn::Sub), row(), col()).unwrap();
    assert_eq!(out.as_f32().unwrap(), &[9., 19., 29., 8., 18., 28.]);
    let out = binary(Op::Binary(BinaryFn::Mul), col(), row()).unwrap();
    assert_eq!(out.as_f32().unwrap(), &[10., 20., 30., 20., 40., 60.]);
    let out = binary(Op::Binary(BinaryFn::Div), row(), col()).unwrap();
    assert_eq!(out.as_f32().unwrap(), &[10., 20., 30., 5., 10., 15.]);
    // A scalar broadcasts everywhere.
    let out = binary(
        Op::Binary(BinaryFn::Mul),
        row(),
        (f32t::<u64>([]), tf(&[], &[0.5])),
    )
    .unwrap();
    assert_eq!(out.as_f32().unwrap(), &[5., 10., 15.]);
    // eq gives 1/0 in the operand dtype.
    let out = binary(
        Op::Binary(BinaryFn::Eq),
        (f32t([3u64]), tf(&[3], &[1., 2., 3.])),
        (f32t([3u64]), tf(&[3], &[1., 5., 3.])),
    )
    .unwrap();
    assert_eq!(out.as_f32().unwrap(), &[1., 0., 1.]);
}

#[test]
fn integer_binary_ops_are_exact() {
    let a = || (i32t([3u64]), ti(&[3], &[7, -7, i32::MAX]));
    let b = || (i32t([3u64]), ti(&[3], &[2, 2, 1]));
    // Division truncates toward zero.
    assert_eq!(
        binary(Op::Binary(BinaryFn::Div), a(), b())
            .unwrap()
            .as_i32()
            .unwrap(),
        &[3, -3, i32::MAX]
    );
    // Overflow wraps.
    assert_eq!(
        binary(Op::Binary(BinaryFn::Add), a(), b())
            .unwrap()
            .as_i32()
            .unwrap(),
        &[9, -5, i32::MIN]
    );
    assert_eq!(
        binary(Op::Binary(BinaryFn::Eq), a(), a())
            .unwrap()
            .as_i32()
            .unwrap(),
        &[1, 1, 1]
    );
    // Broadcast a [2,1] id column against a scalar, as the moe expansion does.
    let out = binary(
        Op::Binary(BinaryFn::Eq),
        (i32t([2u64, 1]), ti(&[2, 1], &[3, 4])),
        (i32t::<u64>([]), ti(&[], &[4])),
    )
    .unwrap();
    assert_eq!(out.as_i32().unwrap(), &[0, 1]);
    let e = binary(
        Op::Binary(BinaryFn::Div),
        a(),
        (i32t([3u64]), ti(&[3], &[1, 0, 1])),
    )
    .unwrap_err();
    assert!(
        matches!(e, EvalError::DivisionByZero { index: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("division by zero"));
}

#[test]
fn unary_ops() {
    let (ln2, ln3) = (std::f32::consts::LN_2, 3f32.ln());
    assert_close(
        &unary_f32(Op::Unary(UnaryFn::Exp), &[2], &[0., ln2]),
        &[1., 2.],
        1e-6,
    );
    assert_eq!(
        unary_f32(Op::Unary(UnaryFn::Neg), &[2], &[1.5, -2.]),
        vec![-1.5, 2.]
    );
    // sigmoid(ln 3) = 1/(1 + 1/3) = 3/4
    assert_close(
        &unary_f32(Op::Unary(UnaryFn::Sigmoid), &[2], &[0., ln3]),
        &[0.5, 0.75],
        1e-6,
    );
    // tanh(ln 2) = (2 - 1/2)/(2 + 1/2) = 0.6
    assert_close(
        &unary_f32(Op::Unary(UnaryFn::Tanh), &[1], &[ln2]),
        &[0.6],
        1e-6,
    );
    // silu(ln 3) = ln 3 · 3/4; silu(0) = 0
    assert_close(
        &unary_f32(Op::Unary(UnaryFn::Silu), &[2], &[ln3, 0.]),
        &[ln3 * 0.75, 0.],
        1e-6,
    );
    // gelu(1) = 0.5·(1 + erf(1/√2)) = 0.8413447460…, gelu(-1) = -0.1586552539…
    let g = unary_f32(Op::Unary(UnaryFn::GeluErf), &[2], &[1., -1.]);
    let (g1, gm1) = (0.841_344_746_068_542_9f64, -0.158_655_253_931_457_1f64);
    assert_close(&g, &[g1 as f32, gm1 as f32], 1e-7);
    // gelu_tanh(1) = 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.8411919906…
    let g = unary_f32(Op::Unary(UnaryFn::GeluTanh), &[1], &[1.]);
    assert_close(&g, &[0.841_191_990_6f64 as f32], 1e-6);
    // Integer negation.
    let mut b = Builder::new();
    let i = b.input("x", i32t([2u64]));
    let y = b.op(Op::Unary(UnaryFn::Neg), &[i]);
    let m = b.finish(&[y]);
    let out = run(&m, vec![], &[ti(&[2], &[3, -4])]).unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[-3, 4]);
}

#[test]
fn softmax_of_logs() {
    // softmax([0, ln 2, ln 3]) = [1, 2, 3]/6
    let (ln2, ln3) = (std::f32::consts::LN_2, 3f32.ln());
    let out = unary_f32(Op::Softmax, &[2, 3], &[0., ln2, ln3, 1000., 1000., 1000.]);
    // The second row would overflow exp without max subtraction.
    assert_close(
        &out,
        &[1. / 6., 2. / 6., 3. / 6., 1. / 3., 1. / 3., 1. / 3.],
        1e-6,
    );
}

#[test]
fn rms_norm_and_layer_norm() {
    // rms([3, 4]) = sqrt((9 + 16)/2) = sqrt(12.5); with w = [1, 2]:
    // [3/sqrt(12.5), 2·4/sqrt(12.5)] = [0.8485281, 2.2627417]
    let mut b = Builder::new();
    let x = b.input("x", f32t([1u64, 2]));
    let w = b.param("w", f32t([2u64]));
    let y = b.op(Op::RmsNorm { eps: 0.0 }, &[x, w]);
    let m = b.finish(&[y]);
    let out = run(&m, vec![tf(&[2], &[1., 2.])], &[tf(&[1, 2], &[3., 4.])]).unwrap();
    let r = 12.5f32.sqrt();
    assert_close(out[0].as_f32().unwrap(), &[3. / r, 8. / r], 1e-6);

    // layer_norm([1,2,3,4]): mean 2.5, var (2.25+0.25+0.25+2.25)/4 = 1.25;
    // normalised = [-1.5, -0.5, 0.5, 1.5]/sqrt(1.25); w = [1,1,1,2], b = [0,0,0,1].
    let mut b = Builder::new();
    let x = b.input("x", f32t([4u64]));
    let w = b.param("w", f32t([4u64]));
    let bias = b.param("b", f32t([4u64]));
    let y = b.op(Op::LayerNorm { eps: 0.0 }, &[x, w, bias]);
    let m = b.finish(&[y]);
    let out = run(
        &m,
        vec![tf(&[4], &[1., 1., 1., 2.]), tf(&[4], &[0., 0., 0., 1.])],
        &[tf(&[4], &[1., 2., 3., 4.])],
    )
    .unwrap();
    let s = 1.25f32.sqrt();
    assert_close(
        out[0].as_f32().unwrap(),
        &[-1.5 / s, -0.5 / s, 0.5 / s, 2. * 1.5 / s + 1.],
        1e-6,
    );
    // eps is added to the mean square: rms_norm([1, 1], eps=3) = [1/2, 1/2].
    let mut b = Builder::new();
    let x = b.input("x", f32t([2u64]));
    let w = b.param("w", f32t([2u64]));
    let y = b.op(Op::RmsNorm { eps: 3.0 }, &[x, w]);
    let m = b.finish(&[y]);
    let out = run(&m, vec![tf(&[2], &[1., 1.])], &[tf(&[2], &[1., 1.])]).unwrap();
    assert_close(out[0].as_f32().unwrap(), &[0.5, 0.5], 1e-7);
}

#[test]
fn reduce_sum_removes_the_last_axis() {
    assert_eq!(
        unary_f32(Op::ReduceSum, &[2, 3], &[1., 2., 3., 4., 5., 6.]),
        vec![6., 15.]
    );
    let mut b = Builder::new();
    let i = b.input("x", i32t([2u64, 2]));
    let y = b.op(Op::ReduceSum, &[i]);
    let m = b.finish(&[y]);
    let out = run(&m, vec![], &[ti(&[2, 2], &[1, -3, 5, 7])]).unwrap();
    assert_eq!(out[0].shape, vec![2]);
    assert_eq!(out[0].as_i32().unwrap(), &[-2, 12]);
}

#[test]
fn reshape_transpose_concat_slice() {
    let x6 = || tf(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    // transpose [[1,2,3],[4,5,6]] → [[1,4],[2,5],[3,6]]
    let out = unary_f32(
        Op::Transpose { perm: vec![1, 0] },
        &[2, 3],
        &[1., 2., 3., 4., 5., 6.],
    );
    assert_eq!(out, vec![1., 4., 2., 5., 3., 6.]);
    // 3-D: x[a,b,c] = 100a + 10b + c with shape [2,2,3]; perm [2,0,1] → y[c,a,b].
    let vals: Vec<f32> = (0..12)
        .map(|i| (100 * (i / 6) + 10 * ((i / 3) % 2) + i % 3) as f32)
        .collect();
    let out = unary_f32(
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        &[2, 2, 3],
        &vals,
    );
    let expect: Vec<f32> = (0..12)
        .map(|i| {
            let (c, a, b) = (i / 4, (i / 2) % 2, i % 2);
            (100 * a + 10 * b + c) as f32
        })
        .collect();
    assert_eq!(out, expect);
    // slice columns 1..3 of [[1,2,3],[4,5,6]] → [[2,3],[5,6]]
    let out = unary_f32(
        Op::Slice {
            axis: 1,
            start: 1,
            end: 3,
        },
        &[2, 3],
        &[1., 2., 3., 4., 5., 6.],
    );
    assert_eq!(out, vec![2., 3., 5., 6.]);
    // concat along axis 1: [[1,2,3],[4,5,6]] ‖ [[7],[8]] → [[1,2,3,7],[4,5,6,8]];
    // along axis 0 with itself: rows repeated.
    let mut b = Builder::new();
    let x = b.input("x", f32t([2u64, 3]));
    let c = b.input("c", f32t([2u64, 1]));
    let y = b.op(Op::Concat { axis: 1 }, &[x, c]);
    let z = b.op(Op::Concat { axis: 0 }, &[x, x]);
    let r = b.op_ty(Op::Reshape, &[x], f32t([3u64, 2]));
    let m = b.finish(&[y, z, r]);
    let out = run(&m, vec![], &[x6(), tf(&[2, 1], &[7., 8.])]).unwrap();
    assert_eq!(out[0].shape, vec![2, 4]);
    assert_eq!(out[0].as_f32().unwrap(), &[1., 2., 3., 7., 4., 5., 6., 8.]);
    assert_eq!(out[1].shape, vec![4, 3]);
    assert_eq!(
        out[1].as_f32().unwrap(),
        &[1., 2., 3., 4., 5., 6., 1., 2., 3., 4., 5., 6.]
    );
    assert_eq!(out[2].shape, vec![3, 2]);
    assert_eq!(out[2].as_f32().unwrap(), &[1., 2., 3., 4., 5., 6.]);
}

#[test]
fn gather_iota_const_cast() {
    // table rows: 0 → [0,1], 1 → [10,11], 2 → [20,21]; ids [[2,0],[1,1]].
    let mut b = Builder::new();
    let table = b.param("table", f32t([3u64, 2]));
    let ids = b.input("ids", i32t([2u64, 2]));
    let g = b.op(Op::Gather, &[table, ids]);
    let io0 = b.op_ty(Op::Iota { axis: 0 }, &[], i32t([2u64, 3]));
    let io1 = b.op_ty(Op::Iota { axis: 1 }, &[], f32t([2u64, 3]));
    let c = b.op_ty(Op::Const { value: 2.5 }, &[], f32t([2u64]));
    let ci = b.op_ty(Op::Const { value: -2.5 }, &[], i32t([2u64]));
    let m = b.finish(&[g, io0, io1, c, ci]);
    let out = run(
        &m,
        vec![tf(&[3, 2], &[0., 1., 10., 11., 20., 21.])],
        &[ti(&[2, 2], &[2, 0, 1, 1])],
    )
    .unwrap();
    assert_eq!(out[0].shape, vec![2, 2, 2]);
    assert_eq!(
        out[0].as_f32().unwrap(),
        &[20., 21., 0., 1., 10., 11., 10., 11.]
    );
    assert_eq!(out[1].as_i32().unwrap(), &[0, 0, 0, 1, 1, 1]);
    assert_eq!(out[2].as_f32().unwrap(), &[0., 1., 2., 0., 1., 2.]);
    assert_eq!(out[3].as_f32().unwrap(), &[2.5, 2.5]);
    // Const to an integer truncates toward zero.
    assert_eq!(out[4].as_i32().unwrap(), &[-2, -2]);

    // cast: f32 → i32 truncates toward zero; i32 → f32; i32 → u32 reinterprets.
    let mut b = Builder::new();
    let x = b.input("x", f32t([3u64]));
    let i = b.op_ty(Op::Cast, &[x], i32t([3u64]));
    let f = b.op_ty(Op::Cast, &[i], f32t([3u64]));
    let u = b.op_ty(Op::Cast, &[i], TensorType::new(DType::U32, [3u64]));
    let h = b.op_ty(Op::Cast, &[x], TensorType::new(DType::F16, [3u64]));
    let m = b.finish(&[i, f, u, h]);
    let out = run(&m, vec![], &[tf(&[3], &[-1.7, 2.9, 0.1])]).unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[-1, 2, 0]);
    assert_eq!(out[1].as_f32().unwrap(), &[-1., 2., 0.]);
    assert_eq!(out[2].as_u32().unwrap(), &[u32::MAX, 2, 0]);
    assert_eq!(
        out[3].as_f16().unwrap(),
        &[f16::from_f32(-1.7), f16::from_f32(2.9), f16::from_f32(0.1)]
    );
}

#[test]
fn gather_rejects_bad_ids() {
    let mut b = Builder::new();
    let table = b.param("table", f32t([3u64, 2]));
    let ids = b.input("ids", i32t([3u64]));
    let g = b.op(Op::Gather, &[table, ids]);
    let m = b.finish(&[g]);
    let table = tf(&[3, 2], &[0.; 6]);
    let e = run(&m, vec![table.clone()], &[ti(&[3], &[0, 3, 1])]).unwrap_err();
    assert_eq!(
        e,
        EvalError::GatherIdOutOfRange {
            value: "v1".into(),
            index: 1,
            id: 3,
            rows: 3
        }
    );
    assert_eq!(
        e.to_string(),
        "`gather` computing `%v1`: id 3 (element 1 of the ids) is outside the table's rows 0..3"
    );
    let e = run(&m, vec![table], &[ti(&[3], &[0, 1, -1])]).unwrap_err();
    assert!(matches!(
        e,
        EvalError::GatherIdOutOfRange {
            id: -1,
            index: 2,
            ..
        }
    ));
}

#[test]
fn grouped_matmul_takes_each_tokens_matrix() {
    // x[3, 2] · w[ids[t]] with w[0] = I, w[1] = [[0, 1], [2, 0]].
    let mut b = Builder::new();
    let w = b.param("w", f32t([2u64, 2, 2]));
    let x = b.input("x", f32t([3u64, 2]));
    let ids = b.input("ids", i32t([3u64]));
    let y = b.op(Op::GroupedMatMul, &[x, ids, w]);
    let m = b.finish(&[y]);
    let w = tf(&[2, 2, 2], &[1., 0., 0., 1., 0., 1., 2., 0.]);
    let x = tf(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
    let out = run(&m, vec![w.clone()], &[x.clone(), ti(&[3], &[0, 1, 1])]).unwrap();
    assert_close(out[0].as_f32().unwrap(), &[1., 2., 8., 3., 12., 5.], 0.0);
    for bad in [2, -1] {
        let e = run(&m, vec![w.clone()], &[x.clone(), ti(&[3], &[0, bad, 1])]).unwrap_err();
        assert_eq!(
            e,
            EvalError::ExpertIdOutOfRange {
                op: "grouped_matmul",
                value: "v1".into(),
                token: 1,
                id: i64::from(bad),
                experts: 2
            }
        );
        assert!(
            e.to_string().starts_with("`grouped_matmul` computing"),
            "{e}"
        );
    }
}

/// A model `rope(x: f32[T, H, Dh], pos: i32[T])`.
fn rope_model(t: u64, h: u64, dh: u64, theta: f32) -> Model {
    let mut b = Builder::new();
    let x = b.input("x", f32t([t, h, dh]));
    let p = b.input("pos", i32t([t]));
    let y = b.op(Op::Rope { theta }, &[x, p]);
    b.finish(&[y])
}

#[test]
fn rope_rotates_half_pairs() {
    // Dh = 2, theta = 1: the single pair rotates by pos · 1^0 = pos radians.
    // Token 0 (pos 0) is unchanged; token 1 (pos 1), x = [1, 2]:
    // [1·cos 1 − 2·sin 1, 2·cos 1 + 1·sin 1].
    let m = rope_model(2, 1, 2, 1.0);
    let out = run(
        &m,
        vec![],
        &[tf(&[2, 1, 2], &[3., 4., 1., 2.]), ti(&[2], &[0, 1])],
    )
    .unwrap();
    let (c, s) = (1f64.cos() as f32, 1f64.sin() as f32);
    assert_close(
        out[0].as_f32().unwrap(),
        &[3., 4., c - 2. * s, 2. * c + s],
        1e-6,
    );
    // Dh = 4, theta = 100: pair (0, 2) uses freq 100^0 = 1, pair (1, 3) uses
    // 100^(-2/4) = 0.1. At pos 2 with x = [1, 1, 0, 0] (two heads, the second
    // [0, 0, 1, 0]): head 0 → [cos 2, cos 0.2, sin 2, sin 0.2]; head 1 → [−sin 2, 0, cos 2, 0].
    let m = rope_model(1, 2, 4, 100.0);
    let out = run(
        &m,
        vec![],
        &[
            tf(&[1, 2, 4], &[1., 1., 0., 0., 0., 0., 1., 0.]),
            ti(&[1], &[2]),
        ],
    )
    .unwrap();
    let (c2, s2) = (2f32.cos(), 2f32.sin());
    let (c02, s02) = (0.2f32.cos(), 0.2f32.sin());
    assert_close(
        out[0].as_f32().unwrap(),
        &[c2, c02, s2, s02, -s2, 0., c2, 0.],
        1e-6,
    );
}

#[test]
fn rope_rejects_negative_positions() {
    let m = rope_model(2, 1, 2, 1.0);
    let e = run(&m, vec![], &[tf(&[2, 1, 2], &[0.; 4]), ti(&[2], &[0, -3])]).unwrap_err();
    assert_eq!(
        e,
        EvalError::NegativePosition {
            value: "v1".into(),
            token: 1,
            pos: -3
        }
    );
    assert!(e.to_string().contains("`rope`") && e.to_string().contains("-3"));
}

/// A model `attention(q, k, v)` with static shapes.
fn attention_model(q: [u64; 3], kv: [u64; 3], causal: bool, scale: Option<f32>) -> Model {
    let mut b = Builder::new();
    let qi = b.input("q", f32t(q));
    let ki = b.input("k", f32t(kv));
    let vi = b.input("v", f32t(kv));
    let y = b.op(Op::Attention { causal, scale }, &[qi, ki, vi]);
    b.finish(&[y])
}

#[test]
fn attention_causal_mask() {
    // T = S = 2, one kv head shared by 2 query heads, Dh = 1, scale 1.
    // k = [0, 1], v = [10, 20]. Query 0 sees only key 0 → 10 for both heads.
    // Query 1 sees both keys: logits q·k = [0, q]. Head 0 has q = ln 3 →
    // weights [1/4, 3/4] → 17.5; head 1 has q = 0 → [1/2, 1/2] → 15.
    let ln3 = 3f32.ln();
    let m = attention_model([2, 2, 1], [2, 1, 1], true, Some(1.0));
    let q = tf(&[2, 2, 1], &[5., -5., ln3, 0.]);
    let k = tf(&[2, 1, 1], &[0., 1.]);
    let v = tf(&[2, 1, 1], &[10., 20.]);
    let out = run(&m, vec![], &[q.clone(), k.clone(), v.clone()]).unwrap();
    assert_close(out[0].as_f32().unwrap(), &[10., 10., 17.5, 15.], 1e-5);
    // Without the mask query 0 sees both keys: q = 5 → weights ∝ [1, e^5];
    // q = −5 → ∝ [1, e^−5].
    let m = attention_model([2, 2, 1], [2, 1, 1], false, Some(1.0));
    let out = run(&m, vec![], &[q, k, v]).unwrap();
    let mix = |l: f32| (10. + 20. * l.exp()) / (1. + l.exp());
    assert_close(
        out[0].as_f32().unwrap(),
        &[mix(5.), mix(-5.), 17.5, 15.],
        1e-4,
    );
}

#[test]
fn attention_gqa_head_mapping() {
    // T = 1, S = 2, Hq = 4, Hkv = 2, Dh = 1, scale 1: heads 0, 1 read kv head 0,
    // heads 2, 3 read kv head 1 (h / (Hq/Hkv)), not h % Hkv.
    // kv head 0: k = [0, 1], v = [10, 20]; kv head 1: k = [0, 2], v = [100, 200].
    // q = [0, ln 3, 0, ln 3]:
    //   head 0: logits [0, 0] → 15;   head 1: [0, ln 3] → (10 + 3·20)/4 = 17.5;
    //   head 2: [0, 0] → 150;         head 3: [0, 2 ln 3] → (100 + 9·200)/10 = 190.
    // causal with S > T: the single query is the last position and sees both keys.
    let ln3 = 3f32.ln();
    let m = attention_model([1, 4, 1], [2, 2, 1], true, Some(1.0));
    let out = run(
        &m,
        vec![],
        &[
            tf(&[1, 4, 1], &[0., ln3, 0., ln3]),
            tf(&[2, 2, 1], &[0., 0., 1., 2.]),
            tf(&[2, 2, 1], &[10., 100., 20., 200.]),
        ],
    )
    .unwrap();
    assert_close(out[0].as_f32().unwrap(), &[15., 17.5, 150., 190.], 1e-4);
}

#[test]
fn attention_default_scale() {
    // Dh = 4, default scale 1/sqrt(4) = 1/2. q = [1,1,1,1], k0 = 0, k1 = [ln2/2; 4]:
    // logits [0, ½·4·ln2/2] = [0, ln 2] → weights [1/3, 2/3]; v0 = 3, v1 = 6 → 5.
    let h = std::f32::consts::LN_2 / 2.;
    let m = attention_model([1, 1, 4], [2, 1, 4], false, None);
    let out = run(
        &m,
        vec![],
        &[
            tf(&[1, 1, 4], &[1.; 4]),
            tf(&[2, 1, 4], &[0., 0., 0., 0., h, h, h, h]),
            tf(&[2, 1, 4], &[3., 3., 3., 3., 6., 6., 6., 6.]),
        ],
    )
    .unwrap();
    assert_close(out[0].as_f32().unwrap(), &[5.; 4], 1e-5);
}

#[test]
fn topk_descending_with_ties_to_lower_index() {
    let mut b = Builder::new();
    let x = b.input("x", f32t([2u64, 4]));
    let r = b.emit(Op::TopK { k: 3 }, &[x], None);
    let m = b.finish(&r);
    let out = run(
        &m,
        vec![],
        &[tf(&[2, 4], &[1., 3., 3., 2., 5., 5., 5., 5.])],
    )
    .unwrap();
    assert_eq!(out[0].as_f32().unwrap(), &[3., 3., 2., 5., 5., 5.]);
    assert_eq!(out[1].shape, vec![2, 3]);
    assert_eq!(out[1].as_i32().unwrap(), &[1, 2, 3, 0, 1, 2]);
    // Integer topk keeps the dtype of the values.
    let mut b = Builder::new();
    let x = b.input("x", i32t([5u64]));
    let r = b.emit(Op::TopK { k: 2 }, &[x], None);
    let m = b.finish(&r);
    let out = run(&m, vec![], &[ti(&[5], &[-4, 9, 0, 9, 8])]).unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[9, 9]);
    assert_eq!(out[1].as_i32().unwrap(), &[1, 3]);
}

/// A model `route(logits[, scores])` over `[T, E]`.
fn route_model(t: u64, e: u64, k: usize, mode: RouteMode, renorm: bool) -> Model {
    let mut b = Builder::new();
    let l = b.input("logits", f32t([t, e]));
    let mut ops = vec![l];
    if mode == RouteMode::Take {
        ops.push(b.input("scores", f32t([t, e])));
    }
    let r = b.emit(Op::Route { k, mode, renorm }, &ops, None);
    b.finish(&r)
}

#[test]
fn route_modes() {
    // logits = [ln 1, ln 2, ln 3, ln 4]: softmax p = [1, 2, 3, 4]/10.
    let logits = tf(&[1, 4], &[0., 2f32.ln(), 3f32.ln(), 4f32.ln()]);
    // softmax_topk: ids [3, 2], weights [0.4, 0.3].
    let out = run(
        &route_model(1, 4, 2, RouteMode::SoftmaxTopk, false),
        vec![],
        std::slice::from_ref(&logits),
    )
    .unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[3, 2]);
    assert_close(out[1].as_f32().unwrap(), &[0.4, 0.3], 1e-6);
    // ... with renorm: [0.4, 0.3]/0.7 = [4/7, 3/7].
    let out = run(
        &route_model(1, 4, 2, RouteMode::SoftmaxTopk, true),
        vec![],
        std::slice::from_ref(&logits),
    )
    .unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[3, 2]);
    assert_close(out[1].as_f32().unwrap(), &[4. / 7., 3. / 7.], 1e-6);
    // topk_softmax: softmax([ln 4, ln 3]) = [4/7, 3/7]; with k = 3 it differs from
    // softmax_topk: softmax([ln 4, ln 3, ln 2]) = [4, 3, 2]/9.
    let out = run(
        &route_model(1, 4, 3, RouteMode::TopkSoftmax, false),
        vec![],
        std::slice::from_ref(&logits),
    )
    .unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[3, 2, 1]);
    assert_close(out[1].as_f32().unwrap(), &[4. / 9., 3. / 9., 2. / 9.], 1e-6);
    // take: ids from the logits, weights read from the scores, not renormalised.
    let scores = tf(&[1, 4], &[9., 8., 7., 6.]);
    let out = run(
        &route_model(1, 4, 2, RouteMode::Take, false),
        vec![],
        &[logits, scores],
    )
    .unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[3, 2]);
    assert_eq!(out[1].as_f32().unwrap(), &[6., 7.]);
    // Ties pick the lower expert: logits [1, 1, 0] → expert 0 (p = e/(2e+1)).
    let out = run(
        &route_model(2, 3, 1, RouteMode::SoftmaxTopk, false),
        vec![],
        &[tf(&[2, 3], &[1., 1., 0., 0., 0., 0.])],
    )
    .unwrap();
    assert_eq!(out[0].as_i32().unwrap(), &[0, 0]);
    let e1 = 1f32.exp();
    assert_close(
        out[1].as_f32().unwrap(),
        &[e1 / (2. * e1 + 1.), 1. / 3.],
        1e-6,
    );
}

/// `moe(x[T, D], ids[T, k], weights[T, k], w_gate[E, D, F], w_up, w_down [, shared])`.
fn moe_model(t: u64, d: u64, k: u64, e: u64, f: u64, shared: Option<u64>, act: GatedAct) -> Model {
    let mut b = Builder::new();
    b.dim("tokens", 64);
    let tt = || Dim::from("tokens");
    let x = b.input("x", f32t([tt(), d.into()]));
    let ids = b.input("ids", i32t([tt(), k.into()]));
    let w = b.input("w", f32t([tt(), k.into()]));
    let _ = t;
    let wg = b.param("w_gate", f32t([e, d, f]));
    let wu = b.param("w_up", f32t([e, d, f]));
    let wd = b.param("w_down", f32t([e, f, d]));
    let mut ops = vec![x, ids, w, wg, wu, wd];
    if let Some(fs) = shared {
        ops.push(b.param("s_gate", f32t([d, fs])));
        ops.push(b.param("s_up", f32t([d, fs])));
        ops.push(b.param("s_down", f32t([fs, d])));
    }
    let y = b.op(Op::Moe { act }, &ops);
    b.finish(&[y])
}

/// Hand weights for 2 experts with D = F = 1: expert 0 has gate 1, up 2, down 3;
/// expert 1 has gate 2, up 1, down −1; the shared expert is all ones.
fn hand_moe_params(shared: bool) -> Vec<Tensor> {
    let mut p = vec![
        tf(&[2, 1, 1], &[1., 2.]),
        tf(&[2, 1, 1], &[2., 1.]),
        tf(&[2, 1, 1], &[3., -1.]),
    ];
    if shared {
        p.extend([tf(&[1, 1], &[1.]), tf(&[1, 1], &[1.]), tf(&[1, 1], &[1.])]);
    }
    p
}

#[test]
fn moe_by_hand() {
    let silu = |x: f64| x / (1. + (-x).exp());
    // expert_0(x) = silu(x)·2x·3; expert_1(x) = silu(2x)·x·(−1); shared(x) = silu(x)·x.
    let e0 = |x: f64| silu(x) * 2. * x * 3.;
    let e1 = |x: f64| -silu(2. * x) * x;
    // token 0: x = 1, ids [0, 1], weights [0.25, 0.75];
    // token 1: x = 2, ids [1, 1] (the same expert twice), weights [0.5, 0.25].
    let y0 = 0.25 * e0(1.) + 0.75 * e1(1.);
    let y1 = 0.75 * e1(2.);
    let inputs = [
        tf(&[2, 1], &[1., 2.]),
        ti(&[2, 2], &[0, 1, 1, 1]),
        tf(&[2, 2], &[0.25, 0.75, 0.5, 0.25]),
    ];
    let m = moe_model(2, 1, 2, 2, 1, None, GatedAct::SwiGlu);
    let out = run(&m, hand_moe_params(false), &inputs).unwrap();
    assert_close(out[0].as_f32().unwrap(), &[y0 as f32, y1 as f32], 1e-5);
    let m = moe_model(2, 1, 2, 2, 1, Some(1), GatedAct::SwiGlu);
    let out = run(&m, hand_moe_params(true), &inputs).unwrap();
    let (s0, s1) = (silu(1.), silu(2.) * 2.);
    assert_close(
        out[0].as_f32().unwrap(),
        &[(y0 + s0) as f32, (y1 + s1) as f32],
        1e-5,
    );
    // GeGLU: token x = 1 routed to expert 0 with weight 1: gelu(1)·2·3 with
    // gelu(1) = 0.8413447460685429; the shared expert adds gelu(1)·1.
    let m = moe_model(1, 1, 1, 2, 1, Some(1), GatedAct::GeGlu);
    let out = run(
        &m,
        hand_moe_params(true),
        &[tf(&[1, 1], &[1.]), ti(&[1, 1], &[0]), tf(&[1, 1], &[1.])],
    )
    .unwrap();
    assert_close(
        out[0].as_f32().unwrap(),
        &[(0.841_344_746_068_542_9 * 7.) as f32],
        1e-5,
    );
}

#[test]
fn moe_rejects_bad_expert_ids() {
    let m = moe_model(2, 1, 2, 2, 1, None, GatedAct::SwiGlu);
    for bad in [2, -1] {
        let e = run(
            &m,
            hand_moe_params(false),
            &[
                tf(&[2, 1], &[1., 2.]),
                ti(&[2, 2], &[0, 1, 1, bad]),
                tf(&[2, 2], &[0.5; 4]),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e,
            EvalError::ExpertIdOutOfRange {
                op: "moe",
                value: "v1".into(),
                token: 1,
                id: i64::from(bad),
                experts: 2
            }
        );
        let msg = e.to_string();
        assert!(
            msg.contains("`moe`") && msg.contains(&format!("expert {bad}")),
            "{msg}"
        );
    }
}

#[test]
fn moe_matches_its_dense_expansion() {
    let mut cases = 0;
    for seed in [1u64, 2, 3] {
        for experts in [1u64, 3, 8] {
            for k in [1u64, 2] {
                for shared in [None, Some(5)] {
                    for act in [GatedAct::SwiGlu, GatedAct::GeGlu] {
                        let (t, d, f) = (7usize, 8u64, 6u64);
                        let m = moe_model(t as u64, d, k, experts, f, shared, act);
                        let expanded = crate::expand::expand_all_moe(&m).unwrap();
                        let w = random_weights(&m, seed);
                        let x = random_tensor(DType::F32, &[t, d as usize], seed + 100).unwrap();
                        let mut ids = random_tensor_in(
                            DType::I32,
                            &[t, k as usize],
                            0.0,
                            experts as f64,
                            seed + 200,
                        )
                        .unwrap();
                        if k == 2 {
                            // Token 0 selects the last expert twice.
                            if let TensorData::I32(v) = &mut ids.data {
                                v[0] = experts as i32 - 1;
                                v[1] = experts as i32 - 1;
                            }
                        }
                        let wts =
                            random_tensor_in(DType::F32, &[t, k as usize], 0.0, 1.0, seed + 300)
                                .unwrap();
                        let inputs = [x, ids, wts];
                        let a = evaluate(&m, "forward", &w, &inputs).unwrap();
                        let b = evaluate(&expanded, "forward", &w, &inputs).unwrap();
                        let diff = a[0].max_abs_diff(&b[0]).unwrap();
                        assert!(
                            diff <= 1e-5,
                            "seed {seed} E={experts} k={k} shared={shared:?} {act:?}: {diff}"
                        );
                        // The output is not trivially zero.
                        assert!(a[0].to_f32_vec().iter().any(|v| v.abs() > 1e-3));
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 72);
}

#[test]
fn identity_ops() {
    let mut b = Builder::new();
    let x = b.input("x", f32t([2u64]));
    let a = b.op(
        Op::AllReduce {
            reduce: ReduceOp::Sum,
        },
        &[x],
    );
    let c = b.op(
        Op::Cache {
            key: "enc".into(),
            refresh: 4,
        },
        &[a],
    );
    let started = b.op(
        Op::AllReduceStart {
            reduce: ReduceOp::Sum,
        },
        &[x],
    );
    let waited = b.op(Op::AllReduceWait, &[started]);
    let m = b.finish(&[c, a, waited]);
    let out = run(&m, vec![], &[tf(&[2], &[1.5, -2.])]).unwrap();
    assert_eq!(out[0].as_f32().unwrap(), &[1.5, -2.]);
    assert_eq!(out[1].as_f32().unwrap(), &[1.5, -2.]);
    assert_eq!(out[2].as_f32().unwrap(), &[1.5, -2.]);
}

/// `x * @w` reduced `reductions` times: an `all_reduce`, then started and waited.
fn reducing(reductions: usize) -> Model {
    let mut b = Builder::new();
    let x = b.input("x", f32t([2u64]));
    let w = b.param("w", f32t([2u64]));
    let mut y = b.op(Op::Binary(BinaryFn::Mul), &[x, w]);
    for i in 0..reductions {
        let reduce = ReduceOp::Sum;
        y = if i == 0 {
            b.op(Op::AllReduce { reduce }, &[y])
        } else {
            let started = b.op(Op::AllReduceStart { reduce }, &[y]);
            b.op(Op::AllReduceWait, &[started])
        };
    }
    b.finish(&[y])
}

#[test]
fn all_reduce_sums_across_ranks() {
    let m = reducing(2);
    let weights: Vec<Weights> = (1..=3)
        .map(|r| Weights::new(&m, vec![tf(&[2], &[r as f32, 10. * r as f32])]).unwrap())
        .collect();
    let ranks: Vec<(&Model, &Weights)> = weights.iter().map(|w| (&m, w)).collect();
    let x = tf(&[2], &[1., 0.5]);
    let inputs = [std::slice::from_ref(&x); 3];
    let out = evaluate_ranks(&ranks, "forward", &inputs).unwrap();
    // Each rank contributes [r, 5r]: the first sum is [6, 30], the second
    // sums three copies of it.
    for outputs in &out {
        assert_eq!(outputs[0].as_f32().unwrap(), &[18., 90.]);
    }
    // One device: the identity.
    let one = evaluate(&m, "forward", &weights[0], &[x]).unwrap();
    assert_eq!(one[0].as_f32().unwrap(), &[1., 5.]);
}

#[test]
fn ranks_that_disagree_on_their_reductions_fail_without_hanging() {
    let (one, two) = (reducing(1), reducing(2));
    let w = |m: &Model| Weights::new(m, vec![tf(&[2], &[1., 1.])]).unwrap();
    let (w1, w2) = (w(&one), w(&two));
    let x = [tf(&[2], &[1., 2.])];
    let err = evaluate_ranks(&[(&one, &w1), (&two, &w2)], "forward", &[&x, &x]).unwrap_err();
    assert!(
        matches!(
            &err,
            EvalError::OnRank { rank: 1, source } if matches!(
                **source,
                EvalError::Collective { source: CollectiveError::RankLeft { rank: 0, round: 1 }, .. }
            )
        ),
        "{err}"
    );
    // A rank's own failure is reported before the others' abandoned reductions.
    let bad = [tf(&[3], &[1., 2., 3.])];
    let err = evaluate_ranks(&[(&two, &w2), (&two, &w2)], "forward", &[&bad, &bad]).unwrap_err();
    assert!(
        matches!(&err, EvalError::OnRank { rank: 0, source } if matches!(**source, EvalError::InputDim { .. })),
        "{err}"
    );
    // One input list per rank.
    let err = evaluate_ranks(&[(&two, &w2), (&two, &w2)], "forward", &[&x]).unwrap_err();
    assert_eq!(
        err,
        EvalError::RankInputs {
            ranks: 2,
            inputs: 1
        }
    );
}

#[test]
fn f16_results_are_rounded() {
    let h = |v: &[f32]| v.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>();
    // [1, 1] · [[1000], [0.3]]: f16(0.3) = 0.2998046875, so the f32 sum is
    // 1000.2998…; f16 spacing at 1000 is 0.5, so the result rounds to 1000.5.
    let mut b = Builder::new();
    let a = b.input("a", TensorType::new(DType::F16, [1u64, 2]));
    let w = b.param("w", TensorType::new(DType::F16, [2u64, 1]));
    let y = b.op(Op::MatMul, &[a, w]);
    // 1024.5 + 1024.5 = 2049 is not an f16 (spacing 2 above 2048): ties to even → 2048.
    let c = b.input("c", TensorType::new(DType::F16, [2u64]));
    let z = b.op(Op::Binary(BinaryFn::Add), &[c, c]);
    let m = b.finish(&[y, z]);
    let out = run(
        &m,
        vec![Tensor::f16(vec![2, 1], h(&[1000., 0.3])).unwrap()],
        &[
            Tensor::f16(vec![1, 2], h(&[1., 1.])).unwrap(),
            Tensor::f16(vec![2], h(&[1., 1024.5])).unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(out[0].dtype, DType::F16);
    assert_eq!(out[0].to_f32_vec(), vec![1000.5]);
    // 1 + 1 = 2; 1024.5 + 1024.5 = 2049 → 2048.
    assert_eq!(out[1].dtype, DType::F16);
    assert_eq!(out[1].to_f32_vec(), vec![2., 2048.]);
}

/// A model over a symbolic `tokens <= 4` dim with two inputs sharing it.
fn symbolic_model() -> Model {
    let mut b = Builder::new();
    b.dim("tokens", 4);
    let x = b.input("x", f32t([Dim::from("tokens"), Dim::Static(2)]));
    let y = b.input("y", f32t([Dim::from("tokens"), Dim::Static(2)]));
    let z = b.op(Op::Binary(BinaryFn::Add), &[x, y]);
    b.finish(&[z])
}

#[test]
fn symbolic_dims_bind_from_inputs() {
    let m = symbolic_model();
    for t in [1usize, 3, 4] {
        let x = tf(&[t, 2], &vec![1.; 2 * t]);
        let out = run(&m, vec![], &[x.clone(), x]).unwrap();
        assert_eq!(out[0].shape, vec![t, 2]);
    }
}

#[test]
fn input_errors() {
    let m = symbolic_model();
    let x3 = tf(&[3, 2], &[0.; 6]);
    // Over the bound.
    let e = run(&m, vec![], &[tf(&[5, 2], &[0.; 10]), x3.clone()]).unwrap_err();
    assert_eq!(
        e,
        EvalError::DimOverBound {
            dim: "tokens".into(),
            size: 5,
            max: 4,
            input: "x".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "symbolic dim `tokens` is 5 in input `%x`, over its bound (`dim tokens <= 4`)"
    );
    // Inconsistent across inputs.
    let e = run(&m, vec![], &[x3.clone(), tf(&[2, 2], &[0.; 4])]).unwrap_err();
    assert!(matches!(
        e,
        EvalError::DimMismatch {
            first: 3,
            second: 2,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "symbolic dim `tokens` is 3 in input `%x` but 2 in input `%y`"
    );
    // Wrong dtype.
    let e = run(&m, vec![], &[x3.clone(), ti(&[3, 2], &[0; 6])]).unwrap_err();
    assert_eq!(
        e,
        EvalError::InputDType {
            index: 1,
            name: "y".into(),
            expected: DType::F32,
            found: DType::I32
        }
    );
    assert_eq!(
        e.to_string(),
        "input 1 (`%y`) must be f32, but a i32 tensor was given"
    );
    // Wrong static dim, wrong rank, wrong count.
    let e = run(&m, vec![], &[x3.clone(), tf(&[3, 1], &[0.; 3])]).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::InputDim {
                axis: 1,
                expected: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = run(&m, vec![], &[x3.clone(), tf(&[6], &[0.; 6])]).unwrap_err();
    assert!(matches!(e, EvalError::InputRank { expected: 2, .. }), "{e}");
    let e = run(&m, vec![], std::slice::from_ref(&x3)).unwrap_err();
    assert!(matches!(
        e,
        EvalError::InputCount {
            expected: 2,
            found: 1,
            ..
        }
    ));
    // A hand-built inconsistent tensor.
    let mut bad = x3.clone();
    bad.shape = vec![2, 2];
    let e = run(&m, vec![], &[x3.clone(), bad]).unwrap_err();
    assert!(matches!(e, EvalError::InputTensor { index: 1, .. }), "{e}");
    // Unknown function.
    let w = Weights::new(&m, vec![]).unwrap();
    let e = evaluate(&m, "decode", &w, &[x3.clone(), x3.clone()]).unwrap_err();
    assert_eq!(e, EvalError::UnknownFunction("decode".into()));
    // Weights of another model.
    let other = moe_model(2, 1, 2, 2, 1, None, GatedAct::SwiGlu);
    let w = random_weights(&other, 0);
    let e = evaluate(&m, "forward", &w, &[x3.clone(), x3]).unwrap_err();
    assert!(matches!(e, EvalError::Weights(_)), "{e}");
}

#[test]
fn unverified_models_and_unbound_dims_are_errors() {
    // A const over a symbolic dim no input binds.
    let mut b = Builder::new();
    b.dim("n", 8);
    let c = b.op_ty(Op::Const { value: 1.0 }, &[], f32t([Dim::from("n")]));
    let m = b.finish(&[c]);
    let e = run(&m, vec![], &[]).unwrap_err();
    assert!(
        matches!(e, EvalError::UnboundDim { ref dim, .. } if dim == "n"),
        "{e}"
    );
    // A model that does not verify.
    let mut bad = m.clone();
    bad.functions[0].outputs.clear();
    let e = evaluate(&bad, "forward", &Weights::new(&m, vec![]).unwrap(), &[]).unwrap_err();
    assert!(matches!(e, EvalError::Verify(_)), "{e}");
}

/// The decoder of the brief: 4 layers, d = 256, 8 experts (top-2), ffn 512, vocab 1024.
fn brief_decoder() -> DecoderConfig {
    DecoderConfig {
        layers: 4,
        d: 256,
        heads: 4,
        kv_heads: 2,
        experts: 8,
        k: 2,
        ffn: 512,
        shared_ffn: 512,
        vocab: 1024,
        max_tokens: 64,
    }
}

#[test]
fn decoder_model_evaluates_to_finite_logits() {
    let m = moe_decoder(&brief_decoder());
    let w = random_weights(&m, 0);
    let ids = random_tensor_in(DType::I32, &[32], 0.0, 1024.0, 1).unwrap();
    let start = std::time::Instant::now();
    let out = evaluate(&m, "forward", &w, &[ids]).unwrap();
    let elapsed = start.elapsed();
    println!("4-layer d=256 8-expert decoder, 32 tokens: evaluated in {elapsed:?}");
    assert_eq!(out[0].shape, vec![32, 1024]);
    let v = out[0].as_f32().unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    assert!(v.iter().any(|x| x.abs() > 1e-3));
}

#[test]
fn small_decoder_matches_its_expansion() {
    let c = DecoderConfig {
        layers: 2,
        d: 16,
        heads: 4,
        kv_heads: 2,
        experts: 4,
        k: 2,
        ffn: 12,
        shared_ffn: 8,
        vocab: 32,
        max_tokens: 16,
    };
    let m = moe_decoder(&c);
    let expanded = crate::expand::expand_all_moe(&m).unwrap();
    let w = random_weights(&m, 9);
    let ids = random_tensor_in(DType::I32, &[11], 0.0, 32.0, 2).unwrap();
    let a = evaluate(&m, "forward", &w, std::slice::from_ref(&ids)).unwrap();
    let b = evaluate(&expanded, "forward", &w, &[ids]).unwrap();
    assert!(a[0].max_abs_diff(&b[0]).unwrap() <= 1e-5);
}

#[test]
fn a_value_defined_twice_does_not_verify() {
    // %v1 = neg(%x); then a second instruction also claiming %v1 as its result
    // (the verifier's SSA check; the evaluator would otherwise overwrite it).
    let mut b = Builder::new();
    let x = b.input("x", f32t([2u64]));
    let y = b.op(Op::Unary(UnaryFn::Neg), &[x]);
    let mut m = b.finish(&[y]);
    let f = &mut m.functions[0];
    let mut again = f.body[0].clone();
    again.op = Op::Unary(UnaryFn::Exp);
    f.body.push(again);
    let e = run(&m, vec![], &[tf(&[2], &[1., 2.])]).unwrap_err();
    assert!(
        matches!(&e, EvalError::Verify(v) if v.to_string() == "value `v1` is declared twice"),
        "{e}"
    );
    // An input listed twice is caught the same way.
    let mut m2 = m.clone();
    m2.functions[0].body.pop();
    let input = m2.functions[0].inputs[0];
    m2.functions[0].inputs.push(input);
    assert!(matches!(
        crate::verify::verify(&m2),
        Err(crate::verify::VerifyError { .. })
    ));
}

#[test]
fn route_over_leading_dims_is_one_decision_per_row() {
    // [2, 3, 4] logits: six rows, each routed as a [1, 4] route would be.
    let logits: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.0).collect();
    let mut b = Builder::new();
    let l = b.input("l", f32t([2u64, 3, 4]));
    let r = b.emit(
        Op::Route {
            k: 2,
            mode: RouteMode::SoftmaxTopk,
            renorm: true,
        },
        &[l],
        None,
    );
    let m = b.finish(&r);
    let all = run(&m, vec![], &[tf(&[2, 3, 4], &logits)]).unwrap();
    assert_eq!(all[0].shape, vec![2, 3, 2]);
    for row in 0..6 {
        let mut b = Builder::new();
        let l = b.input("l", f32t([1u64, 4]));
        let r = b.emit(
            Op::Route {
                k: 2,
                mode: RouteMode::SoftmaxTopk,
                renorm: true,
            },
            &[l],
            None,
        );
        let m = b.finish(&r);
        let one = run(&m, vec![], &[tf(&[1, 4], &logits[row * 4..row * 4 + 4])]).unwrap();
        assert_eq!(
            &all[0].as_i32().unwrap()[row * 2..row * 2 + 2],
            one[0].as_i32().unwrap()
        );
        assert_eq!(
            &all[1].as_f32().unwrap()[row * 2..row * 2 + 2],
            one[1].as_f32().unwrap()
        );
    }
}

/// Runs a model of one op on inputs of the given shapes and values.
fn run_op(op: Op, inputs: &[(&[usize], &[f32])]) -> Result<Tensor, EvalError> {
    let mut b = Builder::new();
    let ops: Vec<Operand> = inputs
        .iter()
        .enumerate()
        .map(|(i, (shape, _))| b.input(&format!("x{i}"), f32t(shape.iter().map(|&d| d as u64))))
        .collect();
    let y = b.op(op, &ops);
    let m = b.finish(&[y]);
    let values: Vec<Tensor> = inputs.iter().map(|(s, v)| tf(s, v)).collect();
    run(&m, vec![], &values).map(|mut v| v.remove(0))
}

#[test]
fn gated_matmul_by_hand() {
    // x = [[1, 2]], gate column picks x0 = 1, up column picks x1 = 2.
    let x: (&[usize], &[f32]) = (&[1, 2], &[1., 2.]);
    let gate: (&[usize], &[f32]) = (&[2, 1], &[1., 0.]);
    let up: (&[usize], &[f32]) = (&[2, 1], &[0., 1.]);
    // swiglu: silu(1)·2 = 2 / (1 + e^-1) = 1.4621172
    let out = run_op(
        Op::GatedMatMul {
            act: GatedAct::SwiGlu,
        },
        &[x, gate, up],
    )
    .unwrap();
    assert_eq!(out.shape, vec![1, 1]);
    assert!((out.as_f32().unwrap()[0] - 1.462_117_2).abs() < 1e-6);
    // geglu: gelu_erf(1)·2 = 0.8413447·2 = 1.6826895
    let out = run_op(
        Op::GatedMatMul {
            act: GatedAct::GeGlu,
        },
        &[x, gate, up],
    )
    .unwrap();
    assert!((out.as_f32().unwrap()[0] - 1.682_689_5).abs() < 1e-6);
}

#[test]
fn matmul_add_bias_and_residual() {
    let x: (&[usize], &[f32]) = (&[2, 2], &[1., 2., 3., 4.]);
    let w: (&[usize], &[f32]) = (&[2, 2], &[0., 1., 1., 0.]);
    // x·w swaps the columns: [[2, 1], [4, 3]]; + bias [10, 20].
    let out = run_op(Op::MatMulAdd, &[x, w, (&[2], &[10., 20.])]).unwrap();
    assert_eq!(out.shape, vec![2, 2]);
    assert_eq!(out.as_f32().unwrap(), &[12., 21., 14., 23.]);
    // + residual [[1, 2], [3, 4]].
    let out = run_op(Op::MatMulAdd, &[x, w, x]).unwrap();
    assert_eq!(out.as_f32().unwrap(), &[3., 3., 7., 7.]);
}

#[test]
fn fused_broadcasts_and_matches_the_unfused_ops() {
    let expr = crate::fused::FusedExpr::parse("mul(silu($0), $1)").unwrap();
    let a: (&[usize], &[f32]) = (&[2, 1], &[0., 2.]);
    let b: (&[usize], &[f32]) = (&[3], &[1., 2., 3.]);
    let out = run_op(Op::Fused { expr }, &[a, b]).unwrap();
    assert_eq!(out.shape, vec![2, 3]);
    // silu(0) = 0; silu(2) = 1.7615942, times 1, 2, 3.
    let want = [0., 0., 0., 1.761_594_2, 3.523_188_4, 5.284_782_6];
    assert_close(out.as_f32().unwrap(), &want, 1e-6);
    // Every function equals its op, element by element (bit for bit: `sqrt`
    // of the negative inputs is NaN both ways).
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let xs: Vec<f32> = (0..24).map(|i| i as f32 * 0.37 - 4.0).collect();
    for &f in UnaryFn::ALL {
        let (name, op) = (f.name(), Op::Unary(f));
        let expr = crate::fused::FusedExpr::parse(&format!("{name}($0)")).unwrap();
        let fused = run_op(Op::Fused { expr }, &[(&[24], &xs)]).unwrap();
        assert_eq!(
            bits(fused.as_f32().unwrap()),
            bits(&unary_f32(op, &[24], &xs)),
            "{name}"
        );
    }
    for &f in BinaryFn::ALL.iter().filter(|f| f.in_fused()) {
        let (name, op) = (f.name(), Op::Binary(f));
        let expr = crate::fused::FusedExpr::parse(&format!("{name}($0, $1)")).unwrap();
        let ys: Vec<f32> = xs.iter().map(|x| x * 0.5 + 0.1).collect();
        let fused = run_op(Op::Fused { expr }, &[(&[24], &xs), (&[24], &ys)]).unwrap();
        let plain = run_op(op, &[(&[24], &xs), (&[24], &ys)]).unwrap();
        assert_eq!(
            bits(fused.as_f32().unwrap()),
            bits(plain.as_f32().unwrap()),
            "{name}"
        );
    }
}

/// `y = cache(2x) + x`: a reused cache gives the value kept by the last call
/// that computed it, a refreshed one the fresh value.
#[test]
fn cache_session_reuses_the_kept_value() {
    let mut b = Builder::new();
    let x = b.input("x", f32t([2u64]));
    let doubled = b.op(Op::Binary(BinaryFn::Add), &[x, x]);
    let z = b.op(
        Op::Cache {
            key: "enc".into(),
            refresh: 2,
        },
        &[doubled],
    );
    let y = b.op(Op::Binary(BinaryFn::Add), &[z, x]);
    let m = b.finish(&[y]);
    let w = Weights::new(&m, vec![]).unwrap();
    let mut s = CacheSession::new(&m, &w);
    let call = |s: &mut CacheSession, x: [f32; 2], reuse: &[&str]| {
        s.run("forward", &[tf(&[2], &x)], reuse)
            .map(|o| o[0].as_f32().unwrap().to_vec())
    };
    assert!(matches!(
        call(&mut s, [1., 2.], &["enc"]),
        Err(EvalError::CacheEmpty { .. })
    ));
    assert!(matches!(
        call(&mut s, [1., 2.], &["dec"]),
        Err(EvalError::UnknownCache { .. })
    ));
    assert_eq!(call(&mut s, [1., 2.], &[]).unwrap(), [3., 6.]);
    // Reused: 2·[1, 2] kept from the first call, plus the new x.
    assert_eq!(call(&mut s, [10., 20.], &["enc"]).unwrap(), [12., 24.]);
    assert_eq!(call(&mut s, [10., 20.], &[]).unwrap(), [30., 60.]);
    s.reset();
    assert!(call(&mut s, [1., 2.], &["enc"]).is_err());
}
