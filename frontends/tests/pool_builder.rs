//! The builder's pool methods (`write_pool_state`, `write_rows`,
//! `pooled_attention`) build the model the text format describes, and refuse
//! a pool write to a value that is not a state.

use seam_frontends::builder::{BuildError, ModelBuilder};
use seam_ir::{text, DType, Dim, Operand, TensorType};

const SERVE: &str = "model pool
dim t <= 8
func serve(%q: f32[t, 4, 8], %kn: f32[t, 2, 8], %vn: f32[t, 2, 8], %slot: i32[t], %pos: i32[t], state %kp: f32[3, 6, 2, 8], state %vp: f32[3, 6, 2, 8]) -> (f32[t, 4, 8], f32[t, 4, 8], state f32[3, 6, 2, 8], state f32[3, 6, 2, 8]) {
  %k2 = write_rows(%kp, %slot, %pos, %kn) : f32[3, 6, 2, 8]
  %v2 = write_rows(%vp, %slot, %pos, %vn) : f32[3, 6, 2, 8]
  %a = pooled_attention(%q, %k2, %v2, %slot, %pos) : f32[t, 4, 8]
  %b = pooled_attention(%q, %k2, %v2, %slot, %pos, scale=0.5) : f32[t, 4, 8]
  return %a, %b, %k2, %v2
}
";

fn f32t(dims: &[Dim]) -> TensorType {
    TensorType::new(DType::F32, dims.to_vec())
}

#[test]
fn the_builder_writes_and_attends_over_pool_states() {
    let mut m = ModelBuilder::new("pool");
    let t = m.dim("t", 8);
    let s = |n: u64| Dim::Static(n);
    let mut f = m.function("serve");
    let q = f.input("q", f32t(&[t.clone(), s(4), s(8)]));
    let kn = f.input("kn", f32t(&[t.clone(), s(2), s(8)]));
    let vn = f.input("vn", f32t(&[t.clone(), s(2), s(8)]));
    let slot = f.input("slot", TensorType::new(DType::I32, [t.clone()]));
    let pos = f.input("pos", TensorType::new(DType::I32, [t.clone()]));
    let pool = f32t(&[s(3), s(6), s(2), s(8)]);
    let kp = f.state_input("kp", pool.clone());
    let vp = f.state_input("vp", pool);
    let rows = [Operand::Value(slot), Operand::Value(pos)];
    let k2 = f.write_pool_state("k2", kp, rows, kn).unwrap();
    let v2 = f.write_pool_state("v2", vp, rows, vn).unwrap();
    let qkv = [q, k2, v2].map(Operand::Value);
    let a = f.pooled_attention("a", qkv, rows, None).unwrap();
    let b = f.pooled_attention("b", qkv, rows, Some(0.5)).unwrap();
    f.finish(&[a, b]);
    let built = m.finish().unwrap();
    let (parsed, _) = text::parse_and_verify("pool", SERVE).unwrap();
    assert_eq!(text::print(&built), text::print(&parsed));
}

#[test]
fn pool_writes_to_plain_values_and_bad_types_are_build_errors() {
    let mut m = ModelBuilder::new("pool");
    let mut f = m.function("f");
    let pool = f.input(
        "pool",
        f32t(&[Dim::Static(2), Dim::Static(4), Dim::Static(3)]),
    );
    let idx = f.input("idx", TensorType::new(DType::I32, [1u64]));
    let new = f.input("new", f32t(&[Dim::Static(1), Dim::Static(3)]));
    let rows = [Operand::Value(idx), Operand::Value(idx)];
    let e = f.write_pool_state("w", pool, rows, new).unwrap_err();
    assert!(
        matches!(e, BuildError::NotAState(ref n) if n == "pool"),
        "{e}"
    );
    let wide = f.input("wide", f32t(&[Dim::Static(1), Dim::Static(5)]));
    let e = f.write_rows("w2", pool, rows, wide).unwrap_err();
    assert!(
        e.to_string()
            .contains("dim 1 of the new rows differs from dim 2 of the pool: 5 vs 3"),
        "{e}"
    );
}
