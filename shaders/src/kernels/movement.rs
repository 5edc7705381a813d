//! Data movement: concat, slice, split (several slices at once), slice update (e.g. appending to a KV cache) and
//! gather (embedding lookup). Transposes are strided element-wise copies
//! ([`super::elementwise::transpose`]).
//!
//! Tensors are viewed as `[outer, axis, inner]` around the concatenated or
//! sliced axis. One invocation per output element; the grid folds.

use std::fmt::Write as _;

use crate::error::ShaderError;
use crate::kernel::{Dim, Grid, Kernel};
use crate::limits::DeviceLimits;
use crate::wgsl::{KernelBuilder, ScalarType};

fn wg(limits: &DeviceLimits) -> u32 {
    limits.clamp_workgroup(256)
}

/// Concatenation of `parts` inputs along the middle axis of `[outer, a_j, inner]`.
/// Bindings `in0…`, `out`. Sizes `outer`, `inner`, `a0…` (each input's axis
/// length), `n` (output elements).
pub fn concat(
    parts: usize,
    dtype: ScalarType,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    if parts == 0 {
        return Err(ShaderError::config("concat", "needs at least one input"));
    }
    let w = wg(limits);
    let mut kb = KernelBuilder::new(format!("concat{parts}_{}", dtype.wgsl()), w);
    kb.size("n", Dim::Dynamic)
        .size("outer", Dim::Dynamic)
        .size("inner", Dim::Dynamic);
    for j in 0..parts {
        kb.size(&format!("a{j}"), Dim::Dynamic);
    }
    for j in 0..parts {
        kb.input(&format!("in{j}"), dtype);
    }
    kb.output("out", dtype);
    let mut s = String::new();
    let _ = writeln!(s, "let i = group * {w}u + lidx;");
    let _ = writeln!(s, "if (i >= N) {{ return; }}");
    let total: Vec<String> = (0..parts).map(|j| format!("A{j}")).collect();
    let _ = writeln!(s, "let at = {};", total.join(" + "));
    let _ = writeln!(s, "let r = i % INNER;");
    let _ = writeln!(s, "let a = (i / INNER) % at;");
    let _ = writeln!(s, "let o = i / (INNER * at);");
    let _ = writeln!(s, "var off = 0u;");
    for j in 0..parts {
        let _ = writeln!(
            s,
            "if (a >= off && a < off + A{j}) {{ out[i] = in{j}[(o * A{j} + a - off) * INNER + r]; return; }}"
        );
        let _ = writeln!(s, "off += A{j};");
    }
    Ok(kb.finish(&s, Grid::linear(&["n"], w)))
}

/// `out[o, j, r] = in[o, start + j, r]` for `j < len`. Bindings `x`, `out`.
/// Sizes `n` (output elements), `inner`, `a` (input axis length), `start`, `len`.
pub fn slice(dtype: ScalarType, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let w = wg(limits);
    let mut kb = KernelBuilder::new(format!("slice_{}", dtype.wgsl()), w);
    for s in ["n", "inner", "a", "start", "len"] {
        kb.size(s, Dim::Dynamic);
    }
    kb.input("x", dtype).output("out", dtype);
    let body = format!(
        "let i = group * {w}u + lidx;\n\
         if (i >= N) {{ return; }}\n\
         let r = i % INNER;\n\
         let j = (i / INNER) % LEN;\n\
         let o = i / (INNER * LEN);\n\
         out[i] = x[(o * A + START + j) * INNER + r];\n"
    );
    Ok(kb.finish(&body, Grid::linear(&["n"], w)))
}

/// Several slices of one tensor along one axis in one pass:
/// `out_j[o, i, r] = x[o, S_j + i, r]` for `i < L_j`. One invocation per input
/// element, writing it to every slice that holds it. Bindings `x`, `out0…`.
/// Sizes `n` (input elements), `inner`, `a` (input axis length), `s0…`, `l0…`
/// (each slice's start and length).
pub fn split(
    parts: usize,
    dtype: ScalarType,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    if parts == 0 || parts + 1 > limits.max_storage_buffers_per_stage as usize {
        return Err(ShaderError::config(
            "split",
            format!(
                "{parts} outputs (1 to {} on this device)",
                limits.max_storage_buffers_per_stage.saturating_sub(1)
            ),
        ));
    }
    let w = wg(limits);
    let mut kb = KernelBuilder::new(format!("split{parts}_{}", dtype.wgsl()), w);
    for s in ["n", "inner", "a"] {
        kb.size(s, Dim::Dynamic);
    }
    for j in 0..parts {
        kb.size(&format!("s{j}"), Dim::Dynamic)
            .size(&format!("l{j}"), Dim::Dynamic);
    }
    kb.input("x", dtype);
    for j in 0..parts {
        kb.output(&format!("out{j}"), dtype);
    }
    let mut s = String::new();
    let _ = writeln!(s, "let i = group * {w}u + lidx;");
    let _ = writeln!(s, "if (i >= N) {{ return; }}");
    let _ = writeln!(s, "let r = i % INNER;");
    let _ = writeln!(s, "let a = (i / INNER) % A;");
    let _ = writeln!(s, "let o = i / (INNER * A);");
    let _ = writeln!(s, "let v = x[i];");
    for j in 0..parts {
        let _ = writeln!(
            s,
            "if (a >= S{j} && a < S{j} + L{j}) {{ out{j}[(o * L{j} + a - S{j}) * INNER + r] = v; }}"
        );
    }
    Ok(kb.finish(&s, Grid::linear(&["n"], w)))
}

/// The converse of [`slice()`]: `dst[o, start + j, r] = src[o, j, r]` for `j < len`,
/// leaving the rest of `dst` as it is (appending rows to a KV cache). Bindings
/// `src`, `dst` (read-write). Sizes as [`slice()`], with `n` the source elements.
pub fn slice_update(dtype: ScalarType, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let w = wg(limits);
    let mut kb = KernelBuilder::new(format!("slice_update_{}", dtype.wgsl()), w);
    for s in ["n", "inner", "a", "start", "len"] {
        kb.size(s, Dim::Dynamic);
    }
    kb.input("src", dtype).output("dst", dtype);
    let body = format!(
        "let i = group * {w}u + lidx;\n\
         if (i >= N) {{ return; }}\n\
         let r = i % INNER;\n\
         let j = (i / INNER) % LEN;\n\
         let o = i / (INNER * LEN);\n\
         dst[(o * A + START + j) * INNER + r] = src[i];\n"
    );
    Ok(kb.finish(&body, Grid::linear(&["n"], w)))
}

/// Embedding lookup: `out[t, c] = table[clamp(ids[t], 0, v − 1), c]`. Bindings
/// `table` (`[v, d]`), `ids` (i32 `[tokens]`), `out` (`[tokens, d]`). Sizes
/// `tokens`, `v`, `d`. Out-of-range ids are clamped.
pub fn gather(dtype: ScalarType, d: Dim, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let w = wg(limits);
    let mut kb = KernelBuilder::new(format!("gather_{}", dtype.wgsl()), w);
    kb.size("tokens", Dim::Dynamic)
        .size("v", Dim::Dynamic)
        .size("d", d);
    kb.input("table", dtype)
        .input("ids", ScalarType::I32)
        .output("out", dtype);
    let body = format!(
        "let i = group * {w}u + lidx;\n\
         if (i >= TOKENS * D || V == 0u) {{ return; }}\n\
         let t = i / D;\n\
         let c = i % D;\n\
         let id = u32(clamp(ids[t], 0i, i32(V) - 1i));\n\
         out[i] = table[id * D + c];\n"
    );
    Ok(kb.finish(&body, Grid::linear(&["tokens", "d"], w)))
}
