//! Diagnostics of the text format: parse errors, verifier errors mapped back
//! to the source, robustness on hostile input, and rustc-style rendering.
//! Line:column positions are 1-based and were counted by hand.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seam_ir::text::{
    line_col, parse, parse_and_verify, parse_bytes, parse_bytes_and_verify, Diagnostic, ParseError,
    SourceMap, Span,
};
use seam_ir::{
    verify, BinaryFn, DType, Function, FusedExpr, Instr, Location, Model, Op, Operand, ParamId,
    TensorType, ValueId,
};

/// Joins lines with `\n` (and a final newline).
fn src(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// The parse error of `text`: message and line:column.
fn parse_err(text: &str) -> (String, (usize, usize)) {
    match parse(text) {
        Ok((m, _)) => panic!("expected a parse error, got {m:#?}"),
        Err(e) => {
            let span = e.span();
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{e}: bad span {span:?}"
            );
            (e.to_string(), line_col(text, span.start))
        }
    }
}

/// The diagnostic of `text` after parsing and verifying: message and line:column.
fn diag(text: &str) -> (String, (usize, usize)) {
    match parse_and_verify("t.seam", text) {
        Ok(_) => panic!("expected an error in\n{text}"),
        Err(d) => {
            let lc = d
                .line_col()
                .unwrap_or_else(|| panic!("no position for {d}"));
            (d.message.clone(), lc)
        }
    }
}

/// A parse-only error in the fourth line of a small function.
fn instr_err(instr: &str) -> (String, (usize, usize)) {
    parse_err(&src(&[
        "model m",
        "param w: f32[4, 8]",
        "func f(%x: f32[2, 4], %i: i32[2], %s: f32[]) -> (f32[2, 4]) {",
        instr,
        "  return %x",
        "}",
    ]))
}

/// A verifier error in the fourth line of a small function.
fn instr_diag(instr: &str) -> (String, (usize, usize)) {
    diag(&src(&[
        "model m",
        "param w: f32[4, 8]",
        "func f(%x: f32[2, 4], %i: i32[2], %s: f32[]) -> (f32[2, 4]) {",
        instr,
        "  return %x",
        "}",
    ]))
}

fn s(x: &str) -> String {
    x.to_string()
}

// ----- one test per VerifyErrorKind ---------------------------------------

#[test]
fn verify_duplicate_dim() {
    let text = src(&[
        "model m",
        "dim t <= 4",
        "dim t <= 8",
        "func f(%x: f32[t]) -> (f32[t]) {",
        "  return %x",
        "}",
    ]);
    assert_eq!(diag(&text), (s("dim `t` is declared twice"), (3, 5)));
}

#[test]
fn verify_duplicate_function() {
    let text = src(&[
        "model m",
        "func f(%x: f32[2]) -> (f32[2]) {",
        "  return %x",
        "}",
        "func f(%x: f32[2]) -> (f32[2]) {",
        "  return %x",
        "}",
    ]);
    assert_eq!(diag(&text), (s("function `f` is declared twice"), (5, 6)));
}

#[test]
fn verify_zero_bound() {
    let text = src(&[
        "model m",
        "dim tokens <= 0",
        "func f(%x: f32[tokens]) -> (f32[tokens]) {",
        "  return %x",
        "}",
    ]);
    assert_eq!(
        diag(&text),
        (s("dim `tokens` must have a bound of at least 1"), (2, 5))
    );
}

#[test]
fn verify_unknown_dim_in_input() {
    let text = src(&[
        "model m",
        "dim tokens <= 8",
        "func f(%ids: i32[tokns]) -> (i32[tokns]) {",
        "  return %ids",
        "}",
    ]);
    assert_eq!(
        diag(&text),
        (
            s("unknown dim `tokns` (declare it with `dim tokns <= N`)"),
            (3, 8)
        )
    );
}

#[test]
fn verify_unknown_dim_in_result_type() {
    let text = src(&[
        "model m",
        "func f(%x: f32[4]) -> (f32[4]) {",
        "  %y = reshape(%x) : f32[n, 4]",
        "  return %x",
        "}",
    ]);
    assert_eq!(
        diag(&text),
        (s("unknown dim `n` (declare it with `dim n <= N`)"), (3, 22))
    );
}

#[test]
fn verify_symbolic_param() {
    let text = src(&[
        "model m",
        "dim t <= 4",
        "param w: f32[t, 4]",
        "func f(%x: f32[4]) -> (f32[4]) {",
        "  return %x",
        "}",
    ]);
    assert_eq!(
        diag(&text),
        (
            s("param `w` must have a static shape, found f32[t, 4]"),
            (3, 7)
        )
    );
}

const TWO_INSTRS: &str = "model m
func f(%x: f32[4]) -> (f32[4]) {
  %a = neg(%x) : f32[4]
  %b = exp(%a) : f32[4]
  return %b
}
";

/// Verifies an edited model and reports through the source map of the text
/// it was parsed from.
fn diag_of_edited(m: &Model, map: &SourceMap) -> (String, (usize, usize)) {
    let e = verify(m).expect_err("edited model must be invalid");
    let d = Diagnostic::from_verify_error("t.seam", TWO_INSTRS, m, map, &e);
    (d.message.clone(), d.line_col().expect("span"))
}

#[test]
fn verify_use_before_def() {
    // The parser rejects forward references, so edit a parsed model: the first
    // instruction now reads `%b`, which the second defines.
    let (mut m, map) = parse(TWO_INSTRS).unwrap();
    verify(&m).unwrap();
    m.functions[0].body[0].operands[0] = Operand::Value(ValueId(2));
    assert_eq!(
        diag_of_edited(&m, &map),
        (s("value `%b` is used before it is defined"), (3, 12))
    );
    // A returned value that nothing defines.
    let (mut m, map) = parse(TWO_INSTRS).unwrap();
    let orphan = m.functions[0].add_value("ghost", TensorType::new(DType::F32, [4u64]));
    m.functions[0].outputs[0] = orphan;
    assert_eq!(
        diag_of_edited(&m, &map),
        (s("value `%ghost` is used before it is defined"), (5, 10))
    );
}

#[test]
fn verify_dangling() {
    let (mut m, map) = parse(TWO_INSTRS).unwrap();
    m.functions[0].body[0].operands[0] = Operand::Value(ValueId(99));
    assert_eq!(
        diag_of_edited(&m, &map),
        (s("operand refers to a nonexistent value"), (3, 12))
    );
    let (mut m, map) = parse(TWO_INSTRS).unwrap();
    m.functions[0].body[1].operands[0] = Operand::Param(ParamId(5));
    assert_eq!(
        diag_of_edited(&m, &map),
        (s("operand refers to a nonexistent param"), (4, 12))
    );
}

#[test]
fn verify_no_outputs() {
    let text = src(&["model m", "func main(%x: f32[4]) -> () {", "  return", "}"]);
    assert_eq!(
        diag(&text),
        (s("function `main` returns no values"), (2, 6))
    );
}

#[test]
fn verify_no_functions() {
    let text = src(&["# nothing but declarations", "model m", "dim t <= 2"]);
    assert_eq!(diag(&text), (s("model has no function"), (2, 1)));
}

#[test]
fn verify_type_operand_count() {
    assert_eq!(
        instr_diag("  %y = add(%x) : f32[2, 4]"),
        (s("`add` takes 2 operand(s), found 1"), (4, 8))
    );
}

#[test]
fn verify_type_result_count() {
    assert_eq!(
        instr_diag("  %y = topk(%x, k=1) : f32[2, 1]"),
        (s("`topk` produces 2 result(s), found 1"), (4, 8))
    );
}

#[test]
fn verify_type_dtype() {
    assert_eq!(
        instr_diag("  %y = matmul(%x, %i) : f32[2, 8]"),
        (
            s("`matmul` operand 1 must be f32 like operand 0, found i32"),
            (4, 19)
        )
    );
}

#[test]
fn verify_type_rank() {
    assert_eq!(
        instr_diag("  %y = softmax(%s) : f32[]"),
        (
            s("`softmax` operand 0 must have rank 1 or more, found rank 0"),
            (4, 16)
        )
    );
}

#[test]
fn verify_type_shape() {
    assert_eq!(
        instr_diag("  %y = add(%x, @w) : f32[2, 4]"),
        (
            s("shape mismatch in `add`: [2, 4] and [4, 8] do not broadcast"),
            (4, 16)
        )
    );
}

/// Wrong shapes for the fused ops point at the operand at fault (columns
/// counted by hand: `%x` after `@w, ` in each line).
#[test]
fn verify_fused_op_shapes() {
    assert_eq!(
        instr_diag("  %y = gated_matmul(%x, @w, %x) : f32[2, 8]"),
        (
            s("shape mismatch in `gated_matmul`: w_up [2, 4] must have w_gate's shape [4, 8]"),
            (4, 29)
        )
    );
    assert_eq!(
        instr_diag("  %y = gated_matmul(%x, %x, %x) : f32[2, 8]"),
        (
            s("shape mismatch in `gated_matmul`: contraction dims differ: 4 vs 2"),
            (4, 25)
        )
    );
    assert_eq!(
        instr_diag("  %y = matmul_add(%x, @w, %x) : f32[2, 8]"),
        (
            s("shape mismatch in `matmul_add`: the addend [2, 4] must be a bias [8] or have the product's shape [2, 8]"),
            (4, 27)
        )
    );
    assert_eq!(
        instr_diag("  %y = fused(%x, @w, expr=\"add($0, $1)\") : f32[2, 4]"),
        (
            s("shape mismatch in `fused`: [4, 8] does not broadcast with [2, 4]"),
            (4, 18)
        )
    );
    assert_eq!(
        instr_diag("  %y = fused(%x, %i, expr=\"add($0, $1)\") : f32[2, 4]"),
        (
            s("`fused` operand 1 must be f32 like operand 0, found i32"),
            (4, 18)
        )
    );
}

/// A `fused` expression must read every operand and only existing ones.
#[test]
fn verify_fused_expression_operands() {
    assert_eq!(
        instr_diag("  %y = fused(%x, %s, expr=\"neg($0)\") : f32[2, 4]"),
        (
            s("bad attribute for `fused`: `neg($0)` never reads operand $1"),
            (4, 8)
        )
    );
    assert_eq!(
        instr_diag("  %y = fused(%x, expr=\"add($0, $2)\") : f32[2, 4]"),
        (
            s("bad attribute for `fused`: `add($0, $2)` reads $2 but there are 1 operand(s)"),
            (4, 8)
        )
    );
}

/// A `fused` expression that does not parse is an attribute error naming the
/// byte in the expression.
#[test]
fn parse_bad_fused_expression() {
    let (msg, at) = instr_err("  %y = fused(%x, expr=\"mul(relu($0), 2)\") : f32[2, 4]");
    let known = FusedExpr::function_names();
    assert!(known.starts_with(&["neg", "exp", "silu", "gelu_erf", "gelu_tanh"]));
    assert_eq!(
        msg,
        format!(
            "attribute `expr` of `fused` must be a fused expression (at byte 4 of the fused \
             expression: unknown function `relu` (known: {})), found `\"mul(relu($0), 2)\"`",
            known.join(", ")
        )
    );
    // The attribute value (`"` at column 23).
    assert_eq!(at, (4, 23));
}

#[test]
fn verify_type_attr() {
    assert_eq!(
        instr_diag("  %y = transpose(%x, perm=[0, 0]) : f32[2, 2]"),
        (
            s("bad attribute for `transpose`: perm [0, 0] is not a permutation of 0..2"),
            (4, 8)
        )
    );
}

#[test]
fn verify_type_result_type() {
    assert_eq!(
        instr_diag("  %y = matmul(%x, @w) : f32[2, 4]"),
        (
            s("result 0 of `matmul` is declared f32[2, 4] but `matmul` produces f32[2, 8]"),
            (4, 25)
        )
    );
}

#[test]
fn verify_error_without_span_names_function_and_instruction() {
    let mut m = Model::new("built");
    let mut f = Function::new("f");
    let x = f.add_value("x", TensorType::new(DType::F32, [2u64]));
    let y = f.add_value("y", TensorType::new(DType::F32, [2u64]));
    f.inputs = vec![x];
    f.body.push(Instr {
        op: Op::Binary(BinaryFn::Add),
        operands: vec![Operand::Value(x)],
        results: vec![y],
    });
    f.outputs = vec![y];
    m.functions.push(f);
    let e = verify(&m).unwrap_err();
    let d = Diagnostic::from_verify_error("built.seam", "", &m, &SourceMap::default(), &e);
    assert_eq!(d.span, None);
    assert_eq!(
        d.to_string(),
        "built.seam: `add` takes 2 operand(s), found 1 (in function `f`, instruction 0 (`add`))"
    );
    let r = d.render(false);
    assert!(
        r.starts_with("error: `add` takes 2 operand(s), found 1\n"),
        "{r}"
    );
    assert!(
        r.contains("= in function `f`, instruction 0 (`add`)"),
        "{r}"
    );
}

#[test]
fn source_map_covers_every_location_kind() {
    let text = src(&[
        "model m",                                              // 1
        "dim t <= 4",                                           // 2
        "param w: f32[4, 4]",                                   // 3
        "func f(%x: f32[t, 4], %ids: i32[t]) -> (f32[t, 4]) {", // 4
        "  %y = matmul(%x, @w) : f32[t, 4]",                    // 5
        "  return %y",                                          // 6
        "}",                                                    // 7
    ]);
    let (_, map) = parse(&text).unwrap();
    let at = |loc| {
        let sp = map
            .span(loc)
            .unwrap_or_else(|| panic!("no span for {loc:?}"));
        (
            line_col(&text, sp.start),
            sp.slice(&text).unwrap_or("").to_string(),
        )
    };
    assert_eq!(at(Location::Model), ((1, 1), s("model m")));
    assert_eq!(at(Location::Dim(0)), ((2, 5), s("t")));
    assert_eq!(at(Location::Param(0)), ((3, 7), s("w")));
    assert_eq!(at(Location::Function(0)), ((4, 6), s("f")));
    assert_eq!(
        at(Location::Input { func: 0, input: 1 }),
        ((4, 23), s("%ids: i32[t]"))
    );
    assert_eq!(
        at(Location::Instr { func: 0, instr: 0 }),
        ((5, 8), s("matmul"))
    );
    assert_eq!(
        at(Location::Operand {
            func: 0,
            instr: 0,
            operand: 1
        }),
        ((5, 19), s("@w"))
    );
    assert_eq!(
        at(Location::ResultType {
            func: 0,
            instr: 0,
            result: 0
        }),
        ((5, 25), s("f32[t, 4]"))
    );
    assert_eq!(
        at(Location::Output { func: 0, output: 0 }),
        ((6, 10), s("%y"))
    );
    assert_eq!(map.span(Location::Output { func: 0, output: 1 }), None);
    assert_eq!(map.span(Location::Dim(1)), None);
}

// ----- parse errors ---------------------------------------------------------

#[test]
fn empty_input() {
    let msg = s("empty input: expected a `model NAME` header");
    assert_eq!(parse_err(""), (msg.clone(), (1, 1)));
    assert_eq!(parse_err("\n  # only a comment\n\t\n"), (msg, (1, 1)));
}

#[test]
fn missing_model_header() {
    assert_eq!(
        parse_err("# hi\ndim t <= 3\n"),
        (s("expected a `model NAME` header, found `dim`"), (2, 1))
    );
    assert_eq!(
        parse_err("model\n"),
        (
            s("expected a model name after `model`, found end of file"),
            (1, 6)
        )
    );
    assert_eq!(
        parse_err("model m\nmodel n\n"),
        (s("the model header may appear only once"), (2, 1))
    );
}

#[test]
fn unknown_op() {
    assert_eq!(
        instr_err("  %y = matmull(%x, @w) : f32[2, 4]"),
        (s("unknown op `matmull` (did you mean `matmul`?)"), (4, 8))
    );
    assert_eq!(
        instr_err("  %y = frobnicate(%x) : f32[2, 4]"),
        (s("unknown op `frobnicate`"), (4, 8))
    );
}

#[test]
fn unknown_attribute() {
    assert_eq!(
        instr_err("  %y = topk(%x, k=2, largest=true) : f32[2, 2]"),
        (
            s("op `topk` has no attribute `largest` (it takes: k)"),
            (4, 22)
        )
    );
    assert_eq!(
        instr_err("  %y = neg(%x, k=2) : f32[2, 4]"),
        (
            s("op `neg` has no attribute `k` (it takes: no attributes)"),
            (4, 16)
        )
    );
}

#[test]
fn missing_required_attribute() {
    assert_eq!(
        instr_err("  %y = topk(%x) : f32[2, 2]"),
        (s("op `topk` needs attribute `k`"), (4, 8))
    );
    assert_eq!(
        instr_err("  %y = cache(%x, refresh=2) : f32[2, 4]"),
        (s("op `cache` needs attribute `key`"), (4, 8))
    );
}

#[test]
fn bad_attribute_value() {
    assert_eq!(
        instr_err("  %y = topk(%x, k=true) : f32[2, 2]"),
        (
            s("attribute `k` of `topk` must be a non-negative integer, found `true`"),
            (4, 19)
        )
    );
    assert_eq!(
        instr_err("  %y = topk(%x, k=-1) : f32[2, 2]"),
        (
            s("attribute `k` of `topk` must be a non-negative integer, found `-1`"),
            (4, 19)
        )
    );
    assert_eq!(
        instr_err("  %a, %b = route(%x, k=1, mode=fast) : i32[2, 1], f32[2, 1]"),
        (
            s("attribute `mode` of `route` must be one of softmax_topk, topk_softmax, take, found `fast`"),
            (4, 32)
        )
    );
    assert_eq!(
        instr_err("  %y = cache(%x, key=enc) : f32[2, 4]"),
        (
            s("attribute `key` of `cache` must be a quoted string, found `enc`"),
            (4, 22)
        )
    );
    assert_eq!(
        instr_err("  %y = cache(%x, key=\"k\", refresh=4294967296) : f32[2, 4]"),
        (
            s("attribute `refresh` of `cache` must be an integer below 2^32, found `4294967296`"),
            (4, 35)
        )
    );
    assert_eq!(
        instr_err("  %y = const(value=\"x\") : f32[2, 4]"),
        (
            s("attribute `value` of `const` must be a number, found `\"x\"`"),
            (4, 20)
        )
    );
    assert_eq!(
        instr_err("  %y = add(%x, %x, k=) : f32[2, 4]"),
        (
            s("expected an attribute value (a number, `true`, `false`, a name, a string or a list of integers), found `)`"),
            (4, 22)
        )
    );
}

#[test]
fn duplicate_attribute() {
    assert_eq!(
        instr_err("  %y = topk(%x, k=1, k=2) : f32[2, 1], i32[2, 1]"),
        (s("attribute `k` given twice"), (4, 22))
    );
}

#[test]
fn undefined_value() {
    assert_eq!(
        instr_err("  %y = neg(%z) : f32[2, 4]"),
        (s("undefined value `%z`"), (4, 12))
    );
    assert_eq!(
        instr_err("  %y = neg(%xx) : f32[2, 4]"),
        (s("undefined value `%xx` (did you mean `%x`?)"), (4, 12))
    );
    // A forward reference is undefined at its use.
    let text = src(&[
        "model m",
        "func f(%x: f32[2]) -> (f32[2]) {",
        "  %y = neg(%later) : f32[2]",
        "  %later = neg(%x) : f32[2]",
        "  return %y",
        "}",
    ]);
    assert_eq!(parse_err(&text), (s("undefined value `%later`"), (3, 12)));
    // Values are scoped to their function.
    let text = src(&[
        "model m",
        "func f(%x: f32[2]) -> (f32[2]) {",
        "  return %x",
        "}",
        "func g(%a: f32[2]) -> (f32[2]) {",
        "  return %x",
        "}",
    ]);
    assert_eq!(parse_err(&text), (s("undefined value `%x`"), (6, 10)));
}

#[test]
fn redefined_value() {
    assert_eq!(
        instr_err("  %x = neg(%x) : f32[2, 4]"),
        (s("value `%x` is already defined"), (4, 3))
    );
    assert_eq!(
        instr_err("  %v, %v = topk(%x, k=1) : f32[2, 1], i32[2, 1]"),
        (s("value `%v` is already defined"), (4, 7))
    );
    assert_eq!(
        parse_err("model m\nfunc f(%a: f32[2], %a: f32[2]) -> () {\n  return\n}\n"),
        (s("value `%a` is already defined"), (2, 20))
    );
}

#[test]
fn unknown_param() {
    assert_eq!(
        instr_err("  %y = matmul(%x, @wq) : f32[2, 8]"),
        (s("unknown param `@wq` (did you mean `@w`?)"), (4, 19))
    );
    assert_eq!(
        parse_err("model m\nparam w: f32[2]\nparam w: f32[3]\n"),
        (s("param `w` is already declared"), (3, 7))
    );
}

#[test]
fn expected_token_messages() {
    assert_eq!(
        instr_err("  %y = add(%x, %x : f32[2, 4]"),
        (s("expected `)` or `,` after operand, found `:`"), (4, 19))
    );
    assert_eq!(
        parse_err("model m\nparam w:"),
        (
            s("expected a type like `f32[tokens, 256]`, found end of file"),
            (2, 9)
        )
    );
    assert_eq!(
        instr_err("  %y = topk(k=1, %x) : f32[2, 1], i32[2, 1]"),
        (
            s("expected an attribute like `name=value` (operands come before attributes), found `%x`"),
            (4, 18)
        )
    );
    assert_eq!(
        instr_err("  %y = neg(%x) f32[2, 4]"),
        (
            s("expected `:` and the result types after `)`, found `f32`"),
            (4, 16)
        )
    );
    assert_eq!(
        instr_err("  %y = neg(%x) : f32[2 4]"),
        (s("expected `,` or `]` after dim, found `4`"), (4, 24))
    );
    assert_eq!(
        parse_err("model m\nfunc f(%x: f32[2]) -> (f32[2]) {\n}\n"),
        (
            s("expected an instruction like `%y = op(%x) : f32[4]`, or `return`, found `}`"),
            (3, 1)
        )
    );
    assert_eq!(
        parse_err("model m\nfunc f(%x: f32[2]) -> (f32[2]) {\n  return %x\n"),
        (
            s("expected `,` or `}` after returned value, found end of file"),
            (3, 12)
        )
    );
    assert_eq!(
        parse_err("model m\nfunc f(x: f32[2]) -> (f32[2]) {\n"),
        (
            s("expected an input like `%x: f32[tokens, 256]`, found `x`"),
            (2, 8)
        )
    );
    assert_eq!(
        parse_err("model m\nfunc f(%x: f32[2]) {\n"),
        (
            s("expected `->` and the result types after the inputs, found `{`"),
            (2, 20)
        )
    );
    assert_eq!(
        parse_err("model m\n42\n"),
        (
            s("expected a `dim`, `param` or `func` declaration, found `42`"),
            (2, 1)
        )
    );
    assert_eq!(
        parse_err("model m\ndim t 4\n"),
        (
            s("expected `<=` and an upper bound after the dim name, found `4`"),
            (2, 7)
        )
    );
    assert_eq!(
        parse_err("model m\ndim t <= -1\n"),
        (
            s("expected an integer upper bound after `<=`, found `-`"),
            (2, 10)
        )
    );
    assert_eq!(
        parse_err("model m\nparam %w: f32[2]\n"),
        (s("expected a param name after `param`, found `%w`"), (2, 7))
    );
}

#[test]
fn structural_errors() {
    let text = src(&[
        "model m",
        "func f(%x: f32[2]) -> (f32[2]) {",
        "  return %x",
        "}",
        "param w: f32[2]",
    ]);
    assert_eq!(
        parse_err(&text),
        (
            s("`param` declarations must come before the first `func`"),
            (5, 1)
        )
    );
    assert_eq!(
        instr_err("  %a, %b = topk(%x, k=1) : f32[2, 1]"),
        (
            s("instruction defines 2 value(s) but declares 1 type(s)"),
            (4, 28)
        )
    );
    let text = src(&[
        "model m",
        "func f(%x: f32[2]) -> (f32[2]) {",
        "  return %x, %x",
        "}",
    ]);
    assert_eq!(
        parse_err(&text),
        (
            s("function `f` returns 2 value(s) but its signature declares 1"),
            (3, 3)
        )
    );
}

#[test]
fn unknown_dtype_and_bad_characters() {
    assert_eq!(
        parse_err("model m\nparam w: f64[2]\n"),
        (
            s("unknown dtype `f64` (expected f32, f16, i32 or u32)"),
            (2, 10)
        )
    );
    assert_eq!(
        parse_err("model m\nparam w: f33[2]\n"),
        (
            s("unknown dtype `f33` (expected f32, f16, i32 or u32) (did you mean `f32`?)"),
            (2, 10)
        )
    );
    assert_eq!(
        parse_err("model m\ndim t <= 4 $\n"),
        (s("unexpected character `$`"), (2, 12))
    );
    assert_eq!(
        parse_err("model m\ndim tökens <= 4\n"),
        (s("unexpected character `ö`"), (2, 6))
    );
    assert_eq!(
        instr_err("  %y = neg(% x) : f32[2, 4]"),
        (s("expected a value name after `%`"), (4, 12))
    );
}

#[test]
fn unterminated_string_and_bad_escape() {
    assert_eq!(
        instr_err("  %y = cache(%x, key=\"enc) : f32[2, 4]"),
        (
            s("unterminated string (missing the closing `\"` on this line)"),
            (4, 22)
        )
    );
    assert_eq!(
        instr_err("  %y = cache(%x, key=\"a\\qb\") : f32[2, 4]"),
        (
            s("unknown escape `\\q` in string (use `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\0` or `\\u{...}`)"),
            (4, 24)
        )
    );
}

#[test]
fn huge_and_bad_numbers() {
    assert_eq!(
        parse_err("model m\ndim t <= 99999999999999999999\n"),
        (
            s("bad number `99999999999999999999`: does not fit in 64 bits"),
            (2, 10)
        )
    );
    assert_eq!(
        instr_err("  %y = topk(%x, k=99999999999999999999) : f32[2, 2]"),
        (
            s("bad number `99999999999999999999`: does not fit in a 64-bit signed integer"),
            (4, 19)
        )
    );
    assert_eq!(
        instr_err("  %y = transpose(%x, perm=[1, -99999999999999999999]) : f32[2, 2]"),
        (
            s("bad number `-99999999999999999999`: does not fit in a 64-bit signed integer"),
            (4, 31)
        )
    );
    assert_eq!(
        instr_err("  %y = const(value=-1e999) : f32[2]"),
        (
            s("bad number `-1e999`: out of range for a 64-bit float (write `inf` for infinity)"),
            (4, 20)
        )
    );
    assert_eq!(
        instr_err("  %y = neg(%x) : f32[18446744073709551616]"),
        (
            s("bad number `18446744073709551616`: does not fit in 64 bits"),
            (4, 22)
        )
    );
    assert_eq!(
        parse_err("model m\ndim t <= 10x\n"),
        (s("bad number `10x`: not a number"), (2, 10))
    );
    // A very long literal is shortened in the message.
    let long = "9".repeat(100_000);
    let (msg, lc) = parse_err(&format!("model m\ndim t <= {long}\n"));
    assert_eq!(
        msg,
        format!(
            "bad number `{}...`: does not fit in 64 bits",
            "9".repeat(40)
        )
    );
    assert_eq!(lc, (2, 10));
}

#[test]
fn zero_bound_parses() {
    let (m, _) = parse("model m\ndim x <= 0\n").unwrap();
    assert_eq!(m.dims[0].max, 0);
}

#[test]
fn invalid_utf8_names_the_byte() {
    let bytes = b"model m\nparam \xff: f32[2]\n";
    let e = parse_bytes(bytes).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input is not valid UTF-8: invalid byte 0xff at offset 14 (line 2, column 7)"
    );
    assert_eq!(e.span(), Span::at(14));
    let d = parse_bytes_and_verify("bin.seam", bytes).unwrap_err();
    assert_eq!(
        d.to_string(),
        "bin.seam:2:7: input is not valid UTF-8: invalid byte 0xff at offset 14 (line 2, column 7)"
    );
    let r = d.render(false);
    assert!(r.contains("--> bin.seam:2:7"), "{r}");
    assert!(r.contains("^"), "{r}");
    // A multi-byte character before the bad byte counts as one column.
    let e = parse_bytes(b"# \xc3\xa9\n# \xf0\x9f\x98\x80\x80").unwrap_err();
    assert!(e.to_string().ends_with("(line 2, column 4)"), "{e}");
    // A sequence truncated at the end of input.
    let e = parse_bytes(b"model m\n# \xe2\x82").unwrap_err();
    assert_eq!(
        e.to_string(),
        "input is not valid UTF-8: invalid byte 0xe2 at offset 10 (line 2, column 3)"
    );
    // Valid bytes parse like text.
    assert!(parse_bytes(b"model m\n").is_ok());
}

#[test]
fn ten_megabytes_of_random_bytes() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut bytes = vec![0u8; 10 << 20];
    rng.fill(&mut bytes[..]);
    let start = std::time::Instant::now();
    let e = parse_bytes(&bytes).unwrap_err();
    let offset = std::str::from_utf8(&bytes).unwrap_err().valid_up_to();
    match e {
        ParseError::InvalidUtf8 {
            offset: o, byte, ..
        } => {
            assert_eq!(o, offset);
            assert_eq!(byte, bytes[offset]);
        }
        other => panic!("unexpected error {other}"),
    }
    let d = parse_bytes_and_verify("random.bin", &bytes).unwrap_err();
    assert!(d.to_string().starts_with("random.bin:1:"), "{d}");
    let _ = d.render(true);
    // Ten megabytes of random printable ASCII: valid UTF-8, an early parse error.
    for b in bytes.iter_mut() {
        *b = b' ' + *b % 95;
    }
    let e = parse_bytes(&bytes).unwrap_err();
    assert!(e.span().end <= bytes.len());
    let text = std::str::from_utf8(&bytes).unwrap();
    let _ = Diagnostic::from_parse_error("ascii.bin", text, &e).render(false);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

const MEDIUM: &str = r#"# A medium model (comments with é and 😀).
model medium

dim tokens <= 2048
dim kv_len <= 4096

param embed: f32[64, 16]
param wq: f32[16, 16]
param norm.w: f32[16]
param router: f32[16, 4]
param experts.gate: f32[4, 16, 32]
param experts.up: f32[4, 16, 32]
param experts.down: f32[4, 32, 16]

func forward(%ids: i32[tokens], %pos: i32[tokens]) -> (f32[tokens, 16], i32[tokens, 2]) {
  %x = gather(@embed, %ids) : f32[tokens, 16]
  %h = rms_norm(%x, @norm.w, eps=1e-5) : f32[tokens, 16]
  %q = matmul(%h, @wq) : f32[tokens, 16]
  %q3 = reshape(%q) : f32[tokens, 2, 8]
  %r = rope(%q3, %pos, theta=10000.0) : f32[tokens, 2, 8]
  %a = attention(%r, %r, %r, causal=true, scale=-0.125) : f32[tokens, 2, 8]
  %flat = reshape(%a) : f32[tokens, 16]
  %logits = matmul(%flat, @router) : f32[tokens, 4]
  %e, %w = route(%logits, k=2, mode=softmax_topk, renorm=true) : i32[tokens, 2], f32[tokens, 2]
  %y = moe(%flat, %e, %w, @experts.gate, @experts.up, @experts.down, act=swiglu) : f32[tokens, 16]
  %t = transpose(%y, perm=[1, 0]) : f32[16, tokens]
  %c = cache(%y, key="enc \"é\" \u{1F600}", refresh=4) : f32[tokens, 16]
  return %c, %e
}

func decode(%k: f32[kv_len, 4]) -> (f32[kv_len, 4]) {
  %s = const(value=inf) : f32[]
  %z = mul(%k, %s) : f32[kv_len, 4]
  return %z
}
"#;

#[test]
fn every_truncation_is_an_error_or_a_model() {
    parse_and_verify("medium.seam", MEDIUM).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let bytes = MEDIUM.as_bytes();
    let mut models = 0;
    for cut in 0..=bytes.len() {
        let prefix = &bytes[..cut];
        match parse_bytes(prefix) {
            Ok((m, map)) => {
                models += 1;
                // Whatever parsed also prints and re-parses to itself.
                assert_eq!(parse(&seam_ir::text::print(&m)).unwrap().0, m);
                let text = std::str::from_utf8(prefix).unwrap();
                if let Err(e) = verify(&m) {
                    let _ =
                        Diagnostic::from_verify_error("cut.seam", text, &m, &map, &e).render(false);
                }
            }
            Err(e) => {
                assert!(
                    e.span().end <= cut,
                    "cut {cut}: span {:?} past the end",
                    e.span()
                );
                if let Ok(text) = std::str::from_utf8(prefix) {
                    let r = Diagnostic::from_parse_error("cut.seam", text, &e).render(false);
                    assert!(r.starts_with("error: "), "{r}");
                } else {
                    assert!(
                        matches!(e, ParseError::InvalidUtf8 { .. }),
                        "cut {cut}: {e}"
                    );
                }
            }
        }
    }
    // The header alone, after each function, and the whole text (plus their
    // trailing whitespace and comments) parse.
    assert!(models >= 4, "only {models} prefixes parsed");
}

#[test]
fn every_line_deletion_is_handled() {
    let lines: Vec<&str> = MEDIUM.lines().collect();
    for skip in 0..lines.len() {
        let text: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        match parse_and_verify("cut.seam", &text) {
            Ok(_) => {}
            Err(d) => {
                let _ = d.render(false);
                assert!(d.line_col().is_some(), "line {skip}: {d}");
            }
        }
    }
}

// ----- rendering ------------------------------------------------------------

#[test]
fn rendering_shows_file_line_and_carets() {
    let text = src(&[
        "model m",
        "param w: f32[4, 4]",
        "func f(%x: f32[2, 4]) -> (f32[2, 4]) {",
        "  %y = matmull(%x, @w) : f32[2, 4]",
        "  return %y",
        "}",
    ]);
    let d = parse_and_verify("name.seam", &text).unwrap_err();
    assert_eq!(
        d.to_string(),
        "name.seam:4:8: unknown op `matmull` (did you mean `matmul`?)"
    );
    let r = d.render(false);
    assert_eq!(
        r,
        "error: unknown op `matmull` (did you mean `matmul`?)\n  \
         --> name.seam:4:8\n  \
         |\n\
         4 |   %y = matmull(%x, @w) : f32[2, 4]\n  \
         |        ^^^^^^^\n\n"
    );
    let colored = d.render(true);
    assert!(colored.contains("\u{1b}["), "{colored:?}");
    assert!(colored.contains("name.seam:4:8"));
}

#[test]
fn rendering_verifier_error() {
    let text = src(&[
        "model m",
        "param w: f32[4, 8]",
        "func f(%x: f32[2, 4]) -> (f32[2, 4]) {",
        "  %y = matmul(%x, @w) : f32[2, 4]",
        "  return %x",
        "}",
    ]);
    let d = parse_and_verify("v.seam", &text).unwrap_err();
    let r = d.render(false);
    assert!(r.contains("--> v.seam:4:25"), "{r}");
    assert!(r.contains("4 |   %y = matmul(%x, @w) : f32[2, 4]"), "{r}");
    assert!(r.contains("^^^^^^^^^"), "{r}");
}

#[test]
fn rendering_redefinition_shows_first_definition() {
    let text = src(&[
        "model m",
        "func f(%x: f32[2]) -> (f32[2]) {",
        "  %x = neg(%x) : f32[2]",
        "  return %x",
        "}",
    ]);
    let d = parse_and_verify("r.seam", &text).unwrap_err();
    let r = d.render(false);
    assert!(r.contains("--> r.seam:3:3"), "{r}");
    assert!(r.contains("first defined here"), "{r}");
    assert!(r.contains("2 | func f(%x: f32[2]) -> (f32[2]) {"), "{r}");
}

#[test]
fn rendering_at_end_of_file() {
    let d = parse_and_verify("eof.seam", "model m\nparam w:").unwrap_err();
    let r = d.render(false);
    assert!(r.contains("--> eof.seam:2:9"), "{r}");
    assert!(r.contains("2 | param w:"), "{r}");
    // A span that does not fit the source (a stale map) degrades gracefully.
    let mut d = d;
    d.span = Some(Span::new(500, 600));
    let r = d.render(false);
    assert!(r.starts_with("error: expected a type"), "{r}");
}
