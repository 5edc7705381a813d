//! An attention layer's split of a merged q‖k‖v product, its RoPEs and its
//! KV-cache writes lower as one `rotary_split` dispatch at every optimisation
//! level, writing k and v straight into the states' buffers; separate q, k, v
//! products fuse each rope with its write; a value read elsewhere stays
//! materialised and a group whose value is read before its last instruction
//! is not formed. (The GPU test `gpu_rotary_split` checks the numbers.)

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{random_weights, text};

/// A model with one function `f` of `body` over the merged-product inputs.
fn model(signature: &str, body: &str) -> seam_ir::Model {
    let src = format!(
        "model m\ndim t <= 8\ndim kv_len <= 16\nparam wqkv: f32[16, 32]\nfunc f({signature} {{\n\
         \x20 %qkv = matmul(%x, @wqkv) : f32[t, 32]\n\
         \x20 %q = slice(%qkv, axis=1, start=0, end=16) : f32[t, 16]\n\
         \x20 %k = slice(%qkv, axis=1, start=16, end=24) : f32[t, 8]\n\
         \x20 %v = slice(%qkv, axis=1, start=24, end=32) : f32[t, 8]\n\
         \x20 %qh = reshape(%q) : f32[t, 2, 8]\n\
         \x20 %kh = reshape(%k) : f32[t, 1, 8]\n\
         \x20 %vh = reshape(%v) : f32[t, 1, 8]\n{body}}}\n"
    );
    text::parse_and_verify("m.seam", &src)
        .unwrap_or_else(|d| panic!("{}", d.render(false)))
        .0
}

const DECODE_SIG: &str = "%x: f32[t, 16], state %kc: f32[kv_len, 1, 8], state %vc: f32[kv_len, 1, 8]) -> (f32[t, 2, 8], state f32[kv_len, 1, 8], state f32[kv_len, 1, 8])";

const DECODE: &str = "  %pa = iota(axis=0) : i32[kv_len]
  %p = tail(%pa) : i32[t]
  %qr = rope(%qh, %p, theta=10000.0) : f32[t, 2, 8]
  %kr = rope(%kh, %p, theta=10000.0) : f32[t, 1, 8]
  %k2 = write_tail(%kc, %kr) : f32[kv_len, 1, 8]
  %v2 = write_tail(%vc, %vh) : f32[kv_len, 1, 8]
  %a = attention(%qr, %k2, %v2, causal=true) : f32[t, 2, 8]
  return %a, %k2, %v2
";

/// Kernel names of `f`'s dispatches and, per dispatch, its bound buffers.
fn dispatches(model: &seam_ir::Model, level: OptLevel) -> (Vec<String>, Vec<Vec<u32>>, Vec<u32>) {
    let weights = random_weights(model, 1);
    let options = CompileOptions::new(Target::lavapipe(), level);
    let compiled = compile(model, &weights, &options).unwrap();
    let m = &compiled.bundle.manifest;
    let entry = &m.entry_points[0];
    let names = entry
        .dispatches
        .iter()
        .map(|d| m.kernels[d.kernel as usize].kernel.name.clone())
        .collect();
    let buffers = entry
        .dispatches
        .iter()
        .map(|d| d.buffers.iter().map(|b| b.buffer).collect())
        .collect();
    let states = entry
        .states
        .iter()
        .map(|&s| m.states[s as usize].buffer)
        .collect();
    (names, buffers, states)
}

fn count(names: &[String], prefix: &str) -> usize {
    names.iter().filter(|n| n.starts_with(prefix)).count()
}

#[test]
fn merged_qkv_rope_and_cache_writes_are_one_dispatch_into_the_states() {
    let serve_sig = "%x: f32[t, 16], %slot: i32[t], %pos: i32[t], state %kp: f32[3, 4, 1, 8], state %vp: f32[3, 4, 1, 8]) -> (f32[t, 2, 8], state f32[3, 4, 1, 8], state f32[3, 4, 1, 8])";
    let serve = "  %qr = rope(%qh, %pos, theta=10000.0) : f32[t, 2, 8]
  %kr = rope(%kh, %pos, theta=10000.0) : f32[t, 1, 8]
  %k2 = write_rows(%kp, %slot, %pos, %kr) : f32[3, 4, 1, 8]
  %v2 = write_rows(%vp, %slot, %pos, %vh) : f32[3, 4, 1, 8]
  %a = pooled_attention(%qr, %k2, %v2, %slot, %pos) : f32[t, 2, 8]
  return %a, %k2, %v2
";
    for (what, m) in [
        ("cache", model(DECODE_SIG, DECODE)),
        ("pool", model(serve_sig, serve)),
    ] {
        for level in [OptLevel::O0, OptLevel::O2] {
            let (names, buffers, states) = dispatches(&m, level);
            assert_eq!(
                count(&names, "rotary_split3"),
                1,
                "{what} -O{level}: {names:?}"
            );
            for gone in ["rope", "split", "slice_update", "write_rows"] {
                assert_eq!(count(&names, gone), 0, "{what} -O{level}: {names:?}");
            }
            // Bound last: out0 (q), out1 (k state), out2 (v state).
            let fused = names.iter().position(|n| n == "rotary_split3").unwrap();
            let b = &buffers[fused];
            assert_eq!(b[b.len() - 2..], states[..], "{what} -O{level}: in place");
        }
    }
}

#[test]
fn separate_products_fuse_each_rope_with_its_write() {
    let src = "model m\ndim t <= 8\ndim kv_len <= 16\nparam wk: f32[16, 8]\n\
        func f(%x: f32[t, 16], state %kc: f32[kv_len, 1, 8]) -> (state f32[kv_len, 1, 8]) {\n\
        \x20 %k = matmul(%x, @wk) : f32[t, 8]\n\
        \x20 %kh = reshape(%k) : f32[t, 1, 8]\n\
        \x20 %pa = iota(axis=0) : i32[kv_len]\n\
        \x20 %p = tail(%pa) : i32[t]\n\
        \x20 %kr = rope(%kh, %p, theta=10000.0) : f32[t, 1, 8]\n\
        \x20 %k2 = write_tail(%kc, %kr) : f32[kv_len, 1, 8]\n\
        \x20 return %k2\n}\n";
    let m = text::parse_and_verify("m.seam", src).unwrap().0;
    let (names, _, _) = dispatches(&m, OptLevel::O0);
    assert_eq!(count(&names, "rotary_split1"), 1, "{names:?}");
    assert_eq!(
        count(&names, "rope") + count(&names, "slice_update"),
        0,
        "{names:?}"
    );
}

#[test]
fn a_value_read_elsewhere_stays_and_an_early_reader_keeps_the_ops_apart() {
    // The rotated q is also returned: the group still forms and writes it.
    let sig = "%x: f32[t, 16], state %kc: f32[kv_len, 1, 8], state %vc: f32[kv_len, 1, 8]) -> (f32[t, 2, 8], f32[t, 2, 8], state f32[kv_len, 1, 8], state f32[kv_len, 1, 8])";
    let body = DECODE.replace("return %a, %k2", "return %a, %qr, %k2");
    let (names, _, _) = dispatches(&model(sig, &body), OptLevel::O0);
    assert_eq!(count(&names, "rotary_split3"), 1, "{names:?}");
    // The rotated k is also returned: its cache write (before v's) reads it,
    // so the chain stops there and that write would come before the group's
    // last instruction: no group, every op apart.
    let sig = "%x: f32[t, 16], state %kc: f32[kv_len, 1, 8], state %vc: f32[kv_len, 1, 8]) -> (f32[t, 2, 8], f32[t, 1, 8], state f32[kv_len, 1, 8], state f32[kv_len, 1, 8])";
    let body = DECODE.replace("return %a, %k2", "return %a, %kr, %k2");
    let (names, _, _) = dispatches(&model(sig, &body), OptLevel::O0);
    assert_eq!(count(&names, "rotary_split"), 0, "{names:?}");
    assert_eq!(count(&names, "slice_update"), 2, "{names:?}");
    // The rotated q is read (by an add) before v's cache write: lowering the
    // group at that write would be too late: the slices stay a split, q its
    // own rope, and k's rope fuses with its write alone.
    let body = DECODE.replace(
        "  %v2 = write_tail",
        "  %q2 = add(%qr, %qr) : f32[t, 2, 8]\n  %v2 = write_tail",
    );
    let body = body.replace("attention(%qr", "attention(%q2");
    let (names, _, _) = dispatches(&model(DECODE_SIG, &body), OptLevel::O0);
    assert_eq!(count(&names, "rotary_split3"), 0, "{names:?}");
    assert_eq!(count(&names, "rotary_split1"), 1, "{names:?}");
    assert_eq!(count(&names, "split3"), 1, "{names:?}");
    assert_eq!(count(&names, "rope"), 1, "{names:?}");
}
