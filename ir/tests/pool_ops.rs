//! The slot-pool ops of batched serving, `write_rows` and `pooled_attention`:
//! text round trip, typing errors, hand-computed evaluations and their
//! data-dependent errors, and the state rules of pool states (the verifier
//! and the evaluator's `StateSession`).

#[path = "support/one_op.rs"]
mod one_op;

use one_op::run;
use seam_ir::eval::StateSession;
use seam_ir::{random_weights, state_use, text, EvalError, Op, Tensor};

/// A pool function: writes the batch's rows, then attends over them.
const SERVE: &str = "model m
dim tokens <= 8
func serve(%q: f32[tokens, 4, 2], %kv: f32[tokens, 2, 2], %slot: i32[tokens], %pos: i32[tokens], state %kp: f32[3, 8, 2, 2], state %vp: f32[3, 8, 2, 2]) -> (f32[tokens, 4, 2], state f32[3, 8, 2, 2], state f32[3, 8, 2, 2]) {
  %k2 = write_rows(%kp, %slot, %pos, %kv) : f32[3, 8, 2, 2]
  %v2 = write_rows(%vp, %slot, %pos, %kv) : f32[3, 8, 2, 2]
  %a = pooled_attention(%q, %k2, %v2, %slot, %pos, scale=0.25) : f32[tokens, 4, 2]
  return %a, %k2, %v2
}
";

fn error_of(src: &str) -> String {
    match text::parse_and_verify("m.seam", src) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(d) => d.render(false),
    }
}

#[test]
fn pool_ops_round_trip_through_text() {
    let (m, _) = text::parse_and_verify("m.seam", SERVE).unwrap();
    let printed = text::print(&m);
    assert!(printed.contains("write_rows(%kp, %slot, %pos, %kv) : f32[3, 8, 2, 2]"));
    assert!(printed.contains("pooled_attention(%q, %k2, %v2, %slot, %pos, scale=0.25)"));
    let (again, _) = text::parse(&printed).unwrap();
    assert_eq!(again, m);
    let f = &m.functions[0];
    assert_eq!(f.body[0].op, Op::WriteRows);
    assert_eq!(f.body[2].op, Op::PooledAttention { scale: Some(0.25) });
    let no_scale = SERVE.replace(", scale=0.25", "");
    let (m, _) = text::parse_and_verify("m.seam", &no_scale).unwrap();
    assert_eq!(
        m.functions[0].body[2].op,
        Op::PooledAttention { scale: None }
    );
    assert!(!text::print(&m).contains("scale="));
}

/// Well-typed one-instruction functions of each op, which the type error
/// cases below break by replacing one piece of text.
const WRITE_ROWS: &str = "model m
func f(%b: f32[3, 4, 2], %s: i32[2], %p: i32[2], %n: f32[2, 2]) -> (f32[3, 4, 2]) {
  %r = write_rows(%b, %s, %p, %n) : f32[3, 4, 2]
  return %r
}
";
const POOLED: &str = "model m
func f(%q: f32[2, 4, 8], %k: f32[3, 5, 2, 8], %v: f32[3, 5, 2, 8], %s: i32[2], %p: i32[2]) -> (f32[2, 4, 8]) {
  %r = pooled_attention(%q, %k, %v, %s, %p) : f32[2, 4, 8]
  return %r
}
";

#[test]
fn pool_op_type_errors_name_the_problem() {
    text::parse_and_verify("m.seam", WRITE_ROWS).unwrap();
    text::parse_and_verify("m.seam", POOLED).unwrap();
    #[rustfmt::skip]
    let cases = [
        (WRITE_ROWS, "%n: f32[2, 2]", "%n: f32[2, 3]",
         "shape mismatch in `write_rows`: dim 1 of the new rows differs from dim 2 of the pool: 3 vs 2"),
        (WRITE_ROWS, "%s: i32[2]", "%s: f32[2]",
         "`write_rows` operand 1 must be i32 slots (one per token), found f32"),
        (WRITE_ROWS, "%p: i32[2]", "%p: i32[3]", "positions must have one entry per token: 3 vs 2"),
        (WRITE_ROWS, "%n: f32[2, 2]", "%n: f16[2, 2]",
         "`write_rows` operand 3 must be f32 like operand 0, found f16"),
        (WRITE_ROWS, "f32[", "i32[", "`write_rows` operand 0 must be a float tensor, found i32"),
        (WRITE_ROWS, "2]) {\n  %r = write_rows(%b, %s, %p, %n) : f32[3, 4, 2]", "3]) {\n  %r = write_rows(%b, %s, %p, %n) : f32[3, 4, 3]",
         "is declared f32[3, 4, 3] but `write_rows` produces f32[3, 4, 2]"),
        (POOLED, "%k: f32[3, 5, 2, 8]", "%k: f32[5, 2, 8]",
         "`pooled_attention` operand 1 must have rank 4, found rank 3"),
        (POOLED, "2, 8], %v: f32[3, 5, 2, 8]", "2, 4], %v: f32[3, 5, 2, 4]",
         "key head dim must match the query's: 4 vs 8"),
        (POOLED, "f32[2, 4, 8]", "f32[2, 3, 8]", "query heads (3) must be a static multiple of kv heads (2)"),
        (POOLED, "%v: f32[3, 5", "%v: f32[3, 6", "values must have as many positions as keys: 6 vs 5"),
        (POOLED, "%v: f32[3", "%v: f32[4",
         "the value pool must have as many slots as the key pool: 4 vs 3"),
        (POOLED, "%s: i32[2]", "%s: i32[3]", "slots must have one entry per token: 3 vs 2"),
        (POOLED, "%p: i32[2]", "%p: u32[2]",
         "`pooled_attention` operand 4 must be i32 positions (one per token), found u32"),
        (POOLED, "%p)", "%p, causal=true)", "op `pooled_attention` has no attribute `causal`"),
    ];
    for (base, from, to, expected) in cases {
        assert!(base.contains(from), "`{from}` is not in the base");
        let e = error_of(&base.replace(from, to));
        assert!(e.contains(expected), "expected `{expected}` in:\n{e}");
    }
}

/// A 3×4 pool of rows of 2, element `(s, p, e)` = `10·(4s + p) + e`.
fn pool_3x4() -> Tensor {
    Tensor::f32(
        vec![3, 4, 2],
        (0..24).map(|i| (10 * (i / 2) + i % 2) as f32).collect(),
    )
    .unwrap()
}

fn i32s(v: &[i32]) -> Tensor {
    Tensor::i32(vec![v.len()], v.to_vec()).unwrap()
}

fn write_rows(slot: &[i32], pos: &[i32], new: &[f32]) -> Result<Tensor, EvalError> {
    let new = Tensor::f32(vec![slot.len(), 2], new.to_vec()).unwrap();
    let (b, s, p) = (pool_3x4(), i32s(slot), i32s(pos));
    run(
        &[("b", &b), ("s", &s), ("p", &p), ("n", &new)],
        "%w = write_rows(%b, %s, %p, %n) : f32[3, 4, 2]",
        "f32[3, 4, 2]",
        "%w",
    )
}

#[test]
fn write_rows_into_a_3x4_pool_by_hand() {
    let out = write_rows(&[2, 0, 1], &[1, 3, 0], &[-1., -2., -3., -4., -5., -6.]).unwrap();
    #[rustfmt::skip]
    let expected = [
        0., 1., 10., 11., 20., 21., -3., -4.,       // slot 0: row 3 written
        -5., -6., 50., 51., 60., 61., 70., 71.,     // slot 1: row 0 written
        80., 81., -1., -2., 100., 101., 110., 111., // slot 2: row 1 written
    ];
    assert_eq!(out.to_f32_vec(), expected);
}

/// The token, slot and position of a [`EvalError::PoolRowOutOfRange`].
fn outside(e: &EvalError) -> (usize, i64, i64) {
    match e {
        EvalError::PoolRowOutOfRange {
            token, slot, pos, ..
        } => (*token, *slot, *pos),
        _ => panic!("not a row out of range: {e}"),
    }
}

#[test]
fn write_rows_refuses_rows_outside_the_pool_and_twice_written_rows() {
    let e = write_rows(&[0, 3], &[0, 0], &[0.; 4]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`write_rows` computing `%w`: token 1 names slot 3, position 0, outside the pool's 3 slot(s) of 4 position(s)"
    );
    let e = write_rows(&[0, 1], &[-1, 0], &[0.; 4]).unwrap_err();
    assert_eq!(outside(&e), (0, 0, -1));
    let e = write_rows(&[1, 1], &[0, 4], &[0.; 4]).unwrap_err();
    assert_eq!(outside(&e), (1, 1, 4));
    let e = write_rows(&[-2, 1], &[0, 0], &[0.; 4]).unwrap_err();
    assert_eq!(outside(&e), (0, -2, 0));
    let e = write_rows(&[2, 0, 2], &[1, 1, 1], &[0.; 6]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`write_rows` computing `%w`: tokens 0 and 2 both write slot 2, position 1"
    );
}

/// Two slots of three positions, two kv heads of 4; element `(s, r, h, d)` of
/// the values is `1000s + 100r + 10h + d`. Keys are zero but for row 1 of slot
/// 1, whose first element is `2 ln 3` in both heads.
fn hand_pools() -> (Tensor, Tensor) {
    let mut k = vec![0f32; 2 * 3 * 2 * 4];
    for h in 0..2 {
        k[((3 + 1) * 2 + h) * 4] = 2.0 * 3f32.ln();
    }
    let v = (0..48)
        .map(|i| (1000 * (i / 24) + 100 * (i / 8 % 3) + 10 * (i / 4 % 2) + i % 4) as f32)
        .collect();
    (
        Tensor::f32(vec![2, 3, 2, 4], k).unwrap(),
        Tensor::f32(vec![2, 3, 2, 4], v).unwrap(),
    )
}

fn pooled(q: &Tensor, slot: &[i32], pos: &[i32]) -> Result<Tensor, EvalError> {
    let (k, v) = hand_pools();
    let (s, p) = (i32s(slot), i32s(pos));
    let ty = one_op::type_of(q);
    run(
        &[("q", q), ("k", &k), ("v", &v), ("s", &s), ("p", &p)],
        &format!("%a = pooled_attention(%q, %k, %v, %s, %p) : {ty}"),
        &ty,
        "%a",
    )
}

#[test]
fn pooled_attention_with_two_slots_and_grouped_heads_by_hand() {
    // Token 0 (slot 1, position 1): q = e0 in every head, logits 0 and
    // ½·2 ln 3 = ln 3 over rows 0 and 1 (row 2 is not visible), so weights ¼, ¾.
    // Token 1 (slot 0, position 2): q = 0, the mean of rows 0..=2.
    let mut q = vec![0f32; 2 * 4 * 4];
    for h in 0..4 {
        q[h * 4] = 1.0;
    }
    let q = Tensor::f32(vec![2, 4, 4], q).unwrap();
    let out = pooled(&q, &[1, 0], &[1, 2]).unwrap().to_f32_vec();
    for h in 0..4 {
        let kvh = (h / 2) as f32;
        for d in 0..4 {
            let t0 = 0.25 * 1000.0 + 0.75 * 1100.0 + 10.0 * kvh + d as f32;
            let t1 = 100.0 + 10.0 * kvh + d as f32;
            let (g0, g1) = (out[h * 4 + d], out[16 + h * 4 + d]);
            assert!(
                (g0 - t0).abs() <= 1e-3,
                "token 0 head {h} dim {d}: {g0} vs {t0}"
            );
            assert!(
                (g1 - t1).abs() <= 1e-3,
                "token 1 head {h} dim {d}: {g1} vs {t1}"
            );
        }
    }
}

#[test]
fn pooled_attention_refuses_rows_outside_the_pool() {
    let q = Tensor::f32(vec![2, 4, 4], vec![0.; 32]).unwrap();
    let e = pooled(&q, &[0, 2], &[0, 0]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`pooled_attention` computing `%a`: token 1 names slot 2, position 0, outside the pool's 2 slot(s) of 3 position(s)"
    );
    let e = pooled(&q, &[0, 1], &[3, 0]).unwrap_err();
    assert_eq!(outside(&e), (0, 0, 3));
}

#[test]
fn pool_states_verify_without_a_length() {
    let (m, _) = text::parse_and_verify("m.seam", SERVE).unwrap();
    assert_eq!(state_use(&m, &m.functions[0]), None);
    // A model may hold appended-to states in one function and pools in another.
    let both = format!(
        "{}func step(%x: f32[tokens, 2], state %c: f32[kv_len, 2]) -> (state f32[kv_len, 2]) {{\n  %a = write_tail(%c, %x) : f32[kv_len, 2]\n  return %a\n}}\n",
        SERVE.replace("dim tokens <= 8\n", "dim tokens <= 8\ndim kv_len <= 6\n")
    );
    let (m, _) = text::parse_and_verify("m.seam", &both).unwrap();
    assert_eq!(state_use(&m, &m.functions[0]), None);
    assert_eq!(state_use(&m, &m.functions[1]).unwrap().length_dim, "kv_len");
}

#[test]
fn broken_pool_state_rules_are_named_errors() {
    let pool_fn = |sig: &str, body: &str| {
        format!("model m\ndim tokens <= 8\ndim kv_len <= 6\nfunc f{sig} {{\n{body}\n}}\n")
    };
    let sig = "(%n: f32[tokens, 2], %s: i32[tokens], %p: i32[tokens], state %kp: f32[3, 4, 2]) -> (f32[3, 4, 2], state f32[3, 4, 2])";
    let cases = [
        (
            pool_fn(
                "(%n: f32[tokens, 2], %s: i32[tokens], %p: i32[tokens], state %c: f32[kv_len, 2], state %kp: f32[3, 4, 2]) -> (state f32[kv_len, 2], state f32[3, 4, 2])",
                "  %a = write_tail(%c, %n) : f32[kv_len, 2]\n  %w = write_rows(%kp, %s, %p, %n) : f32[3, 4, 2]\n  return %a, %w",
            ),
            "function `f` mixes state `%c`, appended to by `write_tail`, with pool state `%kp`, written by `write_rows`",
        ),
        (
            pool_fn(
                "(%n: f32[tokens, 2], %s: i32[tokens], %p: i32[tokens], state %kp: f32[kv_len, 4, 2]) -> (state f32[kv_len, 4, 2])",
                "  %w = write_rows(%kp, %s, %p, %n) : f32[kv_len, 4, 2]\n  return %w",
            ),
            "pool state `%kp` (written by `write_rows`) must have a static shape, found f32[kv_len, 4, 2]",
        ),
        (
            pool_fn(
                sig,
                "  %w = write_rows(%kp, %s, %p, %n) : f32[3, 4, 2]\n  %x = neg(%kp) : f32[3, 4, 2]\n  return %x, %w",
            ),
            "state `%kp` must be used once, as the buffer of a `write_tail` or a `write_rows` (found 2 use(s))",
        ),
        (
            pool_fn(
                sig,
                "  %w = write_rows(%kp, %s, %p, %n) : f32[3, 4, 2]\n  %x = neg(%w) : f32[3, 4, 2]\n  return %w, %x",
            ),
            "the updated state `%x` must be the `write_rows` of `%kp`",
        ),
    ];
    for (src, expected) in cases {
        let e = error_of(&src);
        assert!(e.contains(expected), "expected `{expected}` in:\n{e}");
        assert!(e.contains("m.seam:"), "no location in:\n{e}");
    }
}

/// The evaluator's session keeps pools whole between calls: a second call
/// reads the rows the first wrote.
#[test]
fn the_state_session_keeps_pools_between_calls() {
    let (m, _) = text::parse_and_verify("m.seam", SERVE).unwrap();
    let w = random_weights(&m, 0);
    let mut session = StateSession::new(&m, &w);
    let call = |s: &mut StateSession<'_>, kv: f32, slot: &[i32], pos: &[i32]| {
        let t = slot.len();
        let q = Tensor::f32(vec![t, 4, 2], vec![0.; t * 8]).unwrap();
        let kv = Tensor::f32(vec![t, 2, 2], vec![kv; t * 4]).unwrap();
        s.run("serve", &[q, kv, i32s(slot), i32s(pos)])
            .unwrap()
            .remove(0)
    };
    // Slot 2 gets 4.0 at position 0; slot 1 gets 8.0 at 0.
    call(&mut session, 4.0, &[2], &[0]);
    call(&mut session, 8.0, &[1], &[0]);
    assert_eq!(session.length(), 0, "pools bind no length");
    // With q = 0, a query averages the values of its slot's rows 0..=pos.
    let out = call(&mut session, 1.0, &[2, 1], &[1, 1]).to_f32_vec();
    assert!(out[..8].iter().all(|&x| (x - 2.5).abs() < 1e-6), "{out:?}");
    assert!(out[8..].iter().all(|&x| (x - 4.5).abs() < 1e-6), "{out:?}");
    session.reset();
    let out = call(&mut session, 1.0, &[2], &[1]).to_f32_vec();
    assert!(out.iter().all(|&x| (x - 0.5).abs() < 1e-6), "{out:?}");
}
