//! Session state in the text format: every rule of `StateBinding` broken once
//! gives an error that names the problem and points at the line; the rules'
//! evaluator side (`StateSession`) appends, binds the length dim and refuses
//! overflow.

use seam_ir::eval::StateSession;
use seam_ir::{random_weights, text, EvalError, Tensor};

const HEADER: &str = "model m\ndim tokens <= 8\ndim kv_len <= 6\n";

/// A function with one state, `BODY` spliced in.
fn model(signature: &str, body: &str) -> String {
    format!("{HEADER}func step{signature} {{\n{body}\n}}\n")
}

const SIG: &str =
    "(%x: f32[tokens, 2], state %k: f32[kv_len, 2]) -> (f32[kv_len, 2], state f32[kv_len, 2])";

fn error_of(src: &str) -> String {
    match text::parse_and_verify("m.seam", src) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(d) => d.render(false),
    }
}

#[test]
fn a_well_formed_state_function_verifies() {
    let src = model(
        SIG,
        "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  return %a, %a",
    );
    text::parse_and_verify("m.seam", &src).unwrap();
}

#[test]
fn broken_state_rules_are_named_errors() {
    let cases = [
        (
            model(
                "(state %k: f32[kv_len, 2]) -> (f32[kv_len, 2])",
                "  return %k",
            ),
            "marks 1 input(s) but 0 result(s) as `state`",
        ),
        (
            model(
                SIG,
                "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  %b = neg(%k) : f32[kv_len, 2]\n  return %b, %a",
            ),
            "must be used once, as the buffer of a `write_tail` or a `write_rows` (found 2 use(s))",
        ),
        (
            model(SIG, "  %b = neg(%k) : f32[kv_len, 2]\n  return %b, %b"),
            "must be used once, as the buffer of a `write_tail`",
        ),
        (
            model(
                SIG,
                "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  %b = neg(%a) : f32[kv_len, 2]\n  return %a, %b",
            ),
            "the updated state `%b` must be the `write_tail` of `%k`",
        ),
        (
            model(
                "(%x: f32[tokens, 2], state %k: f32[kv_len, 2]) -> (f32[kv_len, 2], state f32[kv_len, 3])",
                "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  return %a, %a",
            ),
            "declares f32[kv_len, 3]",
        ),
        (
            model(
                "(%x: f32[1, 2], state %k: f32[6, 2]) -> (f32[6, 2], state f32[6, 2])",
                "  %a = write_tail(%k, %x) : f32[6, 2]\n  return %a, %a",
            ),
            "must lead with a symbolic length dim",
        ),
        (
            model(
                "(%x: f32[1, 2], state %k: f32[kv_len, 2], state %v: f32[tokens, 2]) -> (state f32[kv_len, 2], state f32[tokens, 2])",
                "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  %b = write_tail(%v, %x) : f32[tokens, 2]\n  return %a, %b",
            ),
            "has length dim `tokens` but an earlier state of `step` has `kv_len`",
        ),
        (
            model(
                "(%x: f32[kv_len, 2], state %k: f32[kv_len, 2]) -> (f32[kv_len, 2], state f32[kv_len, 2])",
                "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  return %a, %a",
            ),
            "must not appear in the other inputs",
        ),
        (
            model(
                "(%x: f32[1, 2], state %k: f32[kv_len, 2]) -> (f32[kv_len, 2], state f32[kv_len, 2])",
                "  %c = const(value=1) : f32[tokens, 2]\n  %a = write_tail(%k, %c) : f32[kv_len, 2]\n  return %a, %a",
            ),
            "the appended rows `tokens` must be a dim of the inputs",
        ),
        (
            format!(
                "{}func other(%x: f32[1, 3], state %k: f32[kv_len, 3]) -> (state f32[kv_len, 3]) {{\n  %a = write_tail(%k, %x) : f32[kv_len, 3]\n  return %a\n}}\n",
                model(SIG, "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  return %a, %a")
            ),
            "state `%k` is f32[kv_len, 3] here but f32[kv_len, 2] in another function",
        ),
        (
            format!(
                "{}func other(%x: f32[1, 2], state %v: f32[tokens, 2]) -> (state f32[tokens, 2]) {{\n  %a = write_tail(%v, %x) : f32[tokens, 2]\n  return %a\n}}\n",
                model(SIG, "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  return %a, %a")
            ),
            "a model's states share one length dim",
        ),
    ];
    for (src, expected) in cases {
        let e = error_of(&src);
        assert!(e.contains(expected), "expected `{expected}` in:\n{e}");
        assert!(e.contains("m.seam:"), "no location in:\n{e}");
    }
}

#[test]
fn tail_and_write_tail_check_their_shapes() {
    let src = format!(
        "{HEADER}func f(%x: f32[tokens, 2], %y: f32[tokens, 3]) -> (f32[tokens, 2]) {{\n  %a = write_tail(%x, %y) : f32[tokens, 2]\n  return %a\n}}\n"
    );
    assert!(error_of(&src).contains("dim 1 differs from the buffer's"));
    let src = format!(
        "{HEADER}func f(%x: f32[tokens, 2]) -> (f32[1, 3]) {{\n  %a = tail(%x) : f32[1, 3]\n  return %a\n}}\n"
    );
    assert!(error_of(&src).contains("tail keeps every dim but the first"));
}

#[test]
fn the_state_session_appends_and_refuses_overflow() {
    // The function returns the whole state, so each call shows what it holds.
    let src = model(
        SIG,
        "  %a = write_tail(%k, %x) : f32[kv_len, 2]\n  return %a, %a",
    );
    let (m, _) = text::parse_and_verify("m.seam", &src).unwrap();
    let w = random_weights(&m, 0);
    let mut s = StateSession::new(&m, &w);
    let rows = |v: &[f32]| Tensor::f32(vec![v.len() / 2, 2], v.to_vec()).unwrap();
    let out = s.run("step", &[rows(&[1., 2., 3., 4.])]).unwrap();
    assert_eq!(out.len(), 1, "the state itself is not returned");
    assert_eq!(out[0].to_f32_vec(), [1., 2., 3., 4.]);
    let out = s.run("step", &[rows(&[5., 6.])]).unwrap();
    assert_eq!(out[0].to_f32_vec(), [1., 2., 3., 4., 5., 6.]);
    assert_eq!(s.length(), 3);
    let err = s.run("step", &[rows(&[0.; 8])]).unwrap_err();
    assert!(
        matches!(
            err,
            EvalError::StateFull {
                stored: 3,
                adding: 4,
                max: 6,
                ..
            }
        ),
        "{err}"
    );
    s.reset();
    let out = s.run("step", &[rows(&[7., 8.])]).unwrap();
    assert_eq!(out[0].to_f32_vec(), [7., 8.]);
}
