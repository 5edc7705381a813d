//! Round trips of hand-written models through the text format:
//! `parse(print(m)) == m` and `print(parse(print(m))) == print(m)`.

use std::collections::HashSet;

use seam_ir::op::op_names;
use seam_ir::text::{parse, parse_and_verify, print, ParseError};
use seam_ir::{
    verify, AttrValue, DType, Dim, Function, Instr, Model, Op, Operand, Shape, TensorType,
};

/// Parses `text`, verifies it, and checks both round-trip properties.
fn round_trip(text: &str) -> Model {
    let (m, _) =
        parse_and_verify("test.seam", text).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let printed = print(&m);
    let (m2, _) = parse(&printed).unwrap_or_else(|e| panic!("{e} at {:?}\n{printed}", e.span()));
    assert_eq!(m2, m, "parse(print(m)) != m\n{printed}");
    assert_eq!(print(&m2), printed);
    m
}

const EVERY_OP: &str = r#"
# Every op of the IR, with attributes (defaults omitted in places).
model every_op   # trailing comment

dim tokens <= 2048
dim kv_len <= 4096

param embed: f32[64, 16]
param wq: f32[16, 16]
param norm.w: f32[16]
param norm.b: f32[16]
param router: f32[16, 4]
param experts.gate: f32[4, 16, 32]
param experts.up: f32[4, 16, 32]
param experts.down: f32[4, 32, 16]
param shared.gate: f32[16, 8]
param shared.up: f32[16, 8]
param shared.down: f32[8, 16]
param 0.bias: f32[16]

func forward(%ids: i32[tokens], %pos: i32[tokens]) -> (f32[tokens, 16], i32[tokens, 2]) {
  %x = gather(@embed, %ids) : f32[tokens, 16]
  %h = rms_norm(%x, @norm.w, eps=1e-5) : f32[tokens, 16]
  %ln = layer_norm(%h, @norm.w, @norm.b) : f32[tokens, 16]
  %q = matmul(%ln, @wq) : f32[tokens, 16]
  %k1 = const(value=2.0) : f32[tokens, 1]
  %q3 = reshape(%q) : f32[tokens, 2, 8]
  %r = rope(%q3, %pos, theta=500000.0) : f32[tokens, 2, 8]
  %kv = slice(%r, axis=1, start=0, end=1) : f32[tokens, 1, 8]
  %a = attention(%r, %kv, %kv, causal=true, scale=0.125) : f32[tokens, 2, 8]
  %a2 = attention(%r, %kv, %kv, causal=false) : f32[tokens, 2, 8]
  %at = transpose(%a, perm=[1, 0, 2]) : f32[2, tokens, 8]
  %att = transpose(%at, perm=[1, 0, 2]) : f32[tokens, 2, 8]
  %s = add(%att, %a2) : f32[tokens, 2, 8]
  %flat = reshape(%s) : f32[tokens, 16]
  %c = concat(%flat, %x, axis=1) : f32[tokens, 32]
  %sl = slice(%c, axis=1, start=8, end=24) : f32[tokens, 16]
  %logits = matmul(%sl, @router) : f32[tokens, 4]
  %e, %w = route(%logits, k=2, mode=softmax_topk, renorm=true) : i32[tokens, 2], f32[tokens, 2]
  %sc = sigmoid(%logits) : f32[tokens, 4]
  %e1, %w1 = route(%logits, %sc, k=1, mode=take) : i32[tokens, 1], f32[tokens, 1]
  %e2, %w2 = route(%logits, k=4, mode=topk_softmax, renorm=false) : i32[tokens, 4], f32[tokens, 4]
  %y = moe(%sl, %e, %w, @experts.gate, @experts.up, @experts.down, @shared.gate, @shared.up, @shared.down, act=swiglu) : f32[tokens, 16]
  %y2 = moe(%sl, %e1, %w1, @experts.gate, @experts.up, @experts.down, act=geglu) : f32[tokens, 16]
  %y3 = moe(%sl, %e2, %w2, @experts.gate, @experts.up, @experts.down) : f32[tokens, 16]
  %gh = grouped_matmul(%sl, %ids, @experts.gate) : f32[tokens, 32]
  %g3 = grouped_matmul(%gh, %pos, @experts.down) : f32[tokens, 16]
  %gy = add(%y2, %g3) : f32[tokens, 16]
  %d0 = sub(%y, %gy) : f32[tokens, 16]
  %d1 = mul(%d0, @0.bias) : f32[tokens, 16]
  %d2 = div(%d1, %y3) : f32[tokens, 16]
  %d3 = eq(%d2, %d1) : f32[tokens, 16]
  %d4 = neg(%d3) : f32[tokens, 16]
  %d5 = exp(%d4) : f32[tokens, 16]
  %d6 = silu(%d5) : f32[tokens, 16]
  %d7 = gelu(%d6) : f32[tokens, 16]
  %d8 = gelu(%d7, approx=tanh) : f32[tokens, 16]
  %d9 = tanh(%d8) : f32[tokens, 16]
  %u0 = sqrt(%d9) : f32[tokens, 16]
  %u1 = recip(%u0) : f32[tokens, 16]
  %u2 = max(%u1, %d9) : f32[tokens, 16]
  %u3 = min(%u2, %d9) : f32[tokens, 16]
  %u4 = relu2(%u3) : f32[tokens, 16]
  %gm = gated_matmul(%u4, @wq, @wq, act=geglu) : f32[tokens, 16]
  %gm2 = gated_matmul(%gm, @wq, @wq) : f32[tokens, 16]
  %ma = matmul_add(%gm2, @wq, @0.bias) : f32[tokens, 16]
  %ma2 = matmul_add(%ma, @wq, %d9) : f32[tokens, 16]
  %fu = fused(%ma2, @0.bias, %k1, expr="add(mul(silu($0), $1), div(-0.5, $2))") : f32[tokens, 16]
  %sm = softmax(%fu) : f32[tokens, 16]
  %rs = reduce_sum(%sm) : f32[tokens]
  %ar0 = all_reduce(%sm, reduce=sum) : f32[tokens, 16]
  %as = all_reduce_start(%ar0, reduce=sum) : f32[tokens, 16]
  %ar = all_reduce_wait(%as) : f32[tokens, 16]
  %ca = cache(%ar, key="enc \"0\" \\ layer", refresh=4) : f32[tokens, 16]
  %ca2 = cache(%ca, key="") : f32[tokens, 16]
  %vals, %idx = topk(%ca2, k=2) : f32[tokens, 2], i32[tokens, 2]
  %ci = cast(%vals) : i32[tokens, 2]
  %io = iota(axis=1) : i32[tokens, 2]
  %sum = add(%ci, %io) : i32[tokens, 2]
  return %ca2, %sum
}

# A second function with scalars, u32, f16 and an unused input.
func decode(%0: f16[kv_len, 4], %unused: u32[]) -> (f32[], f16[kv_len, 4], u32[3]) {
  %k = const(value=0.5) : f32[]
  %k2 = const(value=-3) : f32[]
  %k3 = mul(%k, %k2) : f32[]
  %i = iota() : u32[3]
  %n = neg(%0) : f16[kv_len, 4]
  return %k3, %n, %i
}

# Session state: appended to by write_tail; tail takes the new rows' positions.
func step(%t: i32[tokens], state %kc: f32[kv_len, 4]) -> (i32[tokens], state f32[kv_len, 4]) {
  %all = iota(axis=0) : i32[kv_len]
  %p = tail(%all) : i32[tokens]
  %row = const(value=1) : f32[tokens, 4]
  %kn = write_tail(%kc, %row) : f32[kv_len, 4]
  return %p, %kn
}

# Pool states of batched serving: written by write_rows, read by pooled_attention.
func serve(%q: f32[tokens, 4, 2], %kv: f32[tokens, 2, 2], %slot: i32[tokens], %pos: i32[tokens], state %kp: f32[3, 8, 2, 2], state %vp: f32[3, 8, 2, 2]) -> (f32[tokens, 4, 2], f32[tokens, 4, 2], state f32[3, 8, 2, 2], state f32[3, 8, 2, 2]) {
  %k2 = write_rows(%kp, %slot, %pos, %kv) : f32[3, 8, 2, 2]
  %v2 = write_rows(%vp, %slot, %pos, %kv) : f32[3, 8, 2, 2]
  %a = pooled_attention(%q, %k2, %v2, %slot, %pos) : f32[tokens, 4, 2]
  %b = pooled_attention(%q, %k2, %v2, %slot, %pos, scale=0.25) : f32[tokens, 4, 2]
  return %a, %b, %k2, %v2
}
"#;

#[test]
fn every_op_round_trips() {
    let m = round_trip(EVERY_OP);
    let used: HashSet<&str> = m
        .functions
        .iter()
        .flat_map(|f| f.body.iter().map(|i| i.op.name()))
        .collect();
    let all: HashSet<&str> = op_names().into_iter().collect();
    assert_eq!(used, all, "the hand-written model must use every op");
    assert_eq!(m.functions.len(), 4);
    assert_eq!(m.dims.len(), 2);
    let step = &m.functions[2];
    assert_eq!(
        step.states,
        [seam_ir::StateBinding {
            input: 1,
            output: 1
        }]
    );
    let serve = &m.functions[3];
    assert_eq!(
        serve.states,
        [
            seam_ir::StateBinding {
                input: 4,
                output: 2
            },
            seam_ir::StateBinding {
                input: 5,
                output: 3
            }
        ]
    );
    assert_eq!(serve.body[2].op, Op::PooledAttention { scale: None });
    assert_eq!(serve.body[3].op, Op::PooledAttention { scale: Some(0.25) });
    assert_eq!(m.params.len(), 12);
    assert_eq!(m.params[11].name, "0.bias");
    // Defaults were filled in.
    let f = &m.functions[0];
    assert_eq!(f.body[2].op, Op::LayerNorm { eps: 1e-5 });
    assert_eq!(
        f.body
            .iter()
            .find(|i| i.op.name() == "cache")
            .map(|i| &i.op),
        Some(&Op::Cache {
            key: "enc \"0\" \\ layer".into(),
            refresh: 4
        })
    );
    let fused = f
        .body
        .iter()
        .find(|i| i.op.name() == "fused")
        .map(|i| &i.op);
    assert_eq!(
        fused.map(ToString::to_string).as_deref(),
        Some("fused"),
        "the fused op is present"
    );
    match fused {
        Some(Op::Fused { expr }) => {
            assert_eq!(expr.to_string(), "add(mul(silu($0), $1), div(-0.5, $2))")
        }
        other => panic!("expected a fused op, found {other:?}"),
    }
    let d = &m.functions[1];
    assert_eq!(d.values[0].name, "0");
    assert_eq!(
        d.values[0].ty,
        TensorType {
            dtype: DType::F16,
            shape: Shape(vec![Dim::Sym("kv_len".into()), Dim::Static(4)])
        }
    );
    assert_eq!(d.body[1].op, Op::Const { value: -3.0 });
}

#[test]
fn canonical_text_is_printed_exactly() {
    let text = "\
model tiny

dim tokens <= 2048

param embed: f32[1024, 256]
param layers.0.wq: f32[256, 256]
param embed.row: f32[256]

func forward(%ids: i32[tokens], %pos: i32[tokens]) -> (f32[tokens, 256], i32[tokens, 2]) {
  %x = gather(@embed, %ids) : f32[tokens, 256]
  %q = matmul(%x, @layers.0.wq) : f32[tokens, 256]
  %vals, %idx = topk(%q, k=2) : f32[tokens, 2], i32[tokens, 2]
  %p = iota(axis=0) : i32[tokens]
  %c = const(value=0.5) : f32[]
  %t = transpose(%q, perm=[1, 0]) : f32[256, tokens]
  %h = cache(%x, key=\"enc\", refresh=4) : f32[tokens, 256]
  %n = rms_norm(%h, @embed.row, eps=1e-5) : f32[tokens, 256]
  %g = gelu(%n, approx=erf) : f32[tokens, 256]
  %a = attention(%g, %g, %g, causal=true) : f32[tokens, 256]
  return %q, %idx
}

func empty() -> () {
  return
}
";
    // Already canonical: the printed form is byte-identical to the input.
    let (m, _) = parse(text).unwrap();
    assert_eq!(print(&m), text);
}

#[test]
fn readme_example_parses_once_its_signature_is_fixed() {
    // The example from the design brief declares `-> (f32[tokens, 1024])` but
    // returns `%q : f32[tokens, 256]`: a parse error at the return.
    let text = r#"# Comments start with # and run to end of line. Blank lines are free.
model readme_moe

dim tokens <= 2048
dim kv_len <= 4096

param embed: f32[1024, 256]
param layers.0.wq: f32[256, 256]

func forward(%ids: i32[tokens], %pos: i32[tokens]) -> (f32[tokens, 1024]) {
  %x = gather(@embed, %ids) : f32[tokens, 256]
  %q = matmul(%x, @layers.0.wq) : f32[tokens, 256]
  %vals, %idx = topk(%q, k=2) : f32[tokens, 2], i32[tokens, 2]
  %p = iota(axis=0) : i32[tokens]
  %c = const(value=0.5) : f32[]
  %t = transpose(%q, perm=[1, 0]) : f32[256, tokens]
  %h = cache(%x, key="enc", refresh=4) : f32[tokens, 256]
  return %q
}
"#;
    let err = parse(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "returned value `%q` has type f32[tokens, 256] but the signature declares f32[tokens, 1024]"
    );
    assert!(matches!(err, ParseError::ReturnType { .. }));
    let fixed = text.replace("-> (f32[tokens, 1024])", "-> (f32[tokens, 256])");
    let m = round_trip(&fixed);
    assert_eq!(m.name, "readme_moe");
    assert_eq!(m.functions[0].body.len(), 7);
}

#[test]
fn single_result_type_without_parentheses() {
    let text = "model m\nfunc f(%x: f32[2]) -> f32[2] {\n  %y = neg(%x) : f32[2]\n  return %y\n}\n";
    let m = round_trip(text);
    assert!(print(&m).contains("-> (f32[2])"));
}

/// A one-instruction model whose only attribute-bearing op is `op`.
fn model_with_op(op: Op, operand_ty: Option<TensorType>, result_ty: TensorType) -> Model {
    let mut m = Model::new("attrs");
    let mut f = Function::new("f");
    let mut operands = Vec::new();
    if let Some(t) = operand_ty {
        operands.push(Operand::Value(f.add_value("x", t)));
        f.inputs = vec![seam_ir::ValueId(0)];
    }
    let r = f.add_value("r", result_ty);
    f.body.push(Instr {
        op,
        operands,
        results: vec![r],
    });
    f.outputs = vec![r];
    m.functions.push(f);
    m
}

#[test]
fn float_attributes_round_trip_bit_exactly() {
    let values = [
        0.0,
        -0.0,
        0.5,
        1e-5,
        1e300,
        -1e300,
        5e-324,
        -5e-324,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        1.0 / 3.0,
        0.1 + 0.2,
        1e16,
        1e15,
        123456789012345680.0,
        2.5e-7,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -2.0,
        7.0,
    ];
    for v in values {
        let m = model_with_op(
            Op::Const { value: v },
            None,
            TensorType::new::<u64>(DType::F32, []),
        );
        verify(&m).unwrap();
        let printed = print(&m);
        let (m2, _) = parse(&printed).unwrap_or_else(|e| panic!("{v:e}: {e}\n{printed}"));
        let Op::Const { value } = m2.functions[0].body[0].op else {
            panic!("not a const")
        };
        assert_eq!(value.to_bits(), v.to_bits(), "{v:e} printed as {printed}");
        assert_eq!(print(&m2), printed);
    }
    // f32 attributes print as their shortest decimal and come back bit-exact.
    let ty = TensorType::new(DType::F32, [4u64]);
    for eps in [
        1e-5f32,
        1e-6,
        0.1,
        1e-45,
        f32::MIN_POSITIVE,
        f32::MAX,
        -0.0,
        3.0e-39,
        0.3,
    ] {
        let m = model_with_op(Op::RmsNorm { eps }, Some(ty.clone()), ty.clone());
        let printed = print(&m);
        let (m2, _) = parse(&printed).unwrap();
        let Op::RmsNorm { eps: back } = m2.functions[0].body[0].op else {
            panic!("not rms_norm")
        };
        assert_eq!(
            back.to_bits(),
            eps.to_bits(),
            "{eps:e} printed as {printed}"
        );
    }
    let m = model_with_op(Op::RmsNorm { eps: 1e-5 }, Some(ty.clone()), ty);
    assert!(print(&m).contains("eps=1e-5)"), "{}", print(&m));
}

#[test]
fn nan_attribute_reads_back_as_nan() {
    let m = model_with_op(
        Op::Const { value: f64::NAN },
        None,
        TensorType::new::<u64>(DType::F32, []),
    );
    let printed = print(&m);
    assert!(printed.contains("const(value=nan)"));
    let (m2, _) = parse(&printed).unwrap();
    assert!(matches!(m2.functions[0].body[0].op, Op::Const { value } if value.is_nan()));
    assert_eq!(print(&m2), printed);
}

#[test]
fn string_attributes_round_trip() {
    let ty = TensorType::new(DType::F32, [2u64]);
    for key in [
        "",
        "enc",
        "a\"b",
        "back\\slash",
        "new\nline",
        "tab\t",
        "nul\0",
        "é😀",
        "\u{301}accent",
        "\u{7f}\u{1b}",
    ] {
        let m = model_with_op(
            Op::Cache {
                key: key.to_string(),
                refresh: u32::MAX,
            },
            Some(ty.clone()),
            ty.clone(),
        );
        let printed = print(&m);
        let (m2, _) = parse(&printed).unwrap_or_else(|e| panic!("{key:?}: {e}\n{printed}"));
        assert_eq!(m2, m, "{printed}");
    }
}

#[test]
fn integer_attribute_limits() {
    let text = |v: &str| {
        format!("model m\nfunc f(%x: f32[2]) -> (f32[2]) {{\n  %y = const(value={v}) : f32[2]\n  return %y\n}}\n")
    };
    let (m, _) = parse(&text("-9223372036854775808")).unwrap();
    assert_eq!(
        m.functions[0].body[0].op,
        Op::Const {
            value: -9223372036854775808.0
        }
    );
    let (m, _) = parse(&text("9223372036854775807")).unwrap();
    assert_eq!(
        m.functions[0].body[0].op,
        Op::Const {
            value: 9223372036854775807.0
        }
    );
    // An attribute list of negative integers parses (and `transpose` rejects it).
    let src = "model m\nfunc f(%x: f32[2]) -> (f32[2]) {\n  %y = transpose(%x, perm=[-1]) : f32[2]\n  return %y\n}\n";
    let e = parse(src).unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute `perm` of `transpose` must be a list of non-negative integers, found `[-1]`"
    );
    let v = AttrValue::Ints(vec![-1, 0, i64::MAX]);
    assert_eq!(v.to_string(), "[-1, 0, 9223372036854775807]");
}

#[test]
fn whitespace_and_comments_are_free() {
    let text = "#c\n\n  model   m#c\n\tdim t<=4 # c\nparam w:f32[4,4]\nfunc f(%x:f32[t,4])->(f32[t,4]){%y=matmul(%x,@w):f32[t,4]\n#c\nreturn %y}";
    let m = round_trip(text);
    assert_eq!(m.functions[0].body.len(), 1);
    // CRLF line endings too.
    let crlf = print(&m).replace('\n', "\r\n");
    assert_eq!(parse(&crlf).unwrap().0, m);
}

#[test]
fn model_without_functions_parses_and_prints() {
    let (m, _) = parse("model m\ndim t <= 3\n").unwrap();
    assert!(m.functions.is_empty());
    assert_eq!(print(&m), "model m\n\ndim t <= 3\n");
    assert_eq!(parse(&print(&m)).unwrap().0, m);
}

#[test]
fn weight_formats_round_trip_and_are_verified() {
    let text = "model q\n\
                param w: f32[64, 8] as q4_0\n\
                param v: f32[256, 8] as q4_k\n\
                func f(%x: f32[1, 64]) -> f32[1, 8] {\n  %y = matmul(%x, @w) : f32[1, 8]\n  return %y\n}\n";
    let m = round_trip(text);
    assert_eq!(m.params[0].format, seam_ir::WeightFormat::Q4_0);
    assert_eq!(m.params[1].format, seam_ir::WeightFormat::Q4K);
    assert!(print(&m).contains("param w: f32[64, 8] as q4_0"));
    // q4_k needs K to be a multiple of 256.
    let bad = text.replace("f32[256, 8] as q4_k", "f32[64, 8] as q4_k");
    let err = parse_and_verify("bad.seam", &bad)
        .unwrap_err()
        .render(false);
    assert!(err.contains("cannot be stored as q4_k"), "{err}");
    // An unknown format names the ones that exist, at its position.
    let bad = text.replace("as q4_0", "as q5_0");
    let err = parse(&bad).unwrap_err();
    assert!(
        err.to_string().contains("expected one of f32, f16"),
        "{err}"
    );
    assert_eq!(&bad[err.span().start..err.span().end], "q5_0");
}
