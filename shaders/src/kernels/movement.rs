//! Data movement: concat, slice, split (several slices at once), slice update (e.g. appending to a KV cache),
//! row writes into a slot pool and gather (embedding lookup). Transposes are strided element-wise copies
//! ([`super::elementwise::transpose`]).
//!
//! Tensors are viewed as `[outer, axis, inner]` around the concatenated or
//! sliced axis. One invocation per output element; the grid folds.

use crate::error::ShaderError;
use crate::wgsl::{wgsl, KernelBuilder, ScalarType, WgslWriter};
use seam_core::DeviceLimits;
use seam_core::{Dim, Grid, Kernel};

/// Invocations per workgroup on this device.
fn workgroup_for(limits: &DeviceLimits) -> u32 {
    limits.clamp_workgroup(256)
}

/// `i`, this invocation's element, returning past the `N` elements.
fn write_element(w: &mut WgslWriter, workgroup: u32) {
    wgsl!(w, "let i = group * {workgroup}u + lidx;");
    w.line("if (i >= N) { return; }");
}

/// Where element `i` sits in `[outer, axis, inner]` with `axis` elements along
/// the axis: `r` (inner), `axis_index` (along the axis) and `o` (outer).
fn write_position(w: &mut WgslWriter, axis: &str, axis_index: &str) {
    w.line("let r = i % INNER;");
    wgsl!(w, "let {axis_index} = (i / INNER) % {axis};");
    wgsl!(w, "let o = i / (INNER * {axis});");
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
    let workgroup = workgroup_for(limits);
    let mut kb = KernelBuilder::new(format!("concat{parts}_{}", dtype.wgsl()), workgroup);
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
    let mut w = WgslWriter::new();
    write_element(&mut w, workgroup);
    let total: Vec<String> = (0..parts).map(|j| format!("A{j}")).collect();
    wgsl!(w, "let at = {};", total.join(" + "));
    write_position(&mut w, "at", "a");
    w.line("var off = 0u;");
    for j in 0..parts {
        wgsl!(
            w,
            "if (a >= off && a < off + A{j}) {{ out[i] = in{j}[(o * A{j} + a - off) * INNER + r]; return; }}"
        );
        wgsl!(w, "off += A{j};");
    }
    Ok(kb.finish(&w.finish(), Grid::linear(&["n"], workgroup)))
}

/// `out[o, j, r] = in[o, start + j, r]` for `j < len`. Bindings `x`, `out`.
/// Sizes `n` (output elements), `inner`, `a` (input axis length), `start`, `len`.
pub fn slice(dtype: ScalarType, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    slice_copy(
        "slice",
        ("x", "out"),
        "out[i] = x[(o * A + START + j) * INNER + r];",
        dtype,
        limits,
    )
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
    let workgroup = workgroup_for(limits);
    let mut kb = KernelBuilder::new(format!("split{parts}_{}", dtype.wgsl()), workgroup);
    for size in ["n", "inner", "a"] {
        kb.size(size, Dim::Dynamic);
    }
    for j in 0..parts {
        kb.size(&format!("s{j}"), Dim::Dynamic)
            .size(&format!("l{j}"), Dim::Dynamic);
    }
    kb.input("x", dtype);
    for j in 0..parts {
        kb.output(&format!("out{j}"), dtype);
    }
    let mut w = WgslWriter::new();
    write_element(&mut w, workgroup);
    write_position(&mut w, "A", "a");
    w.line("let v = x[i];");
    for j in 0..parts {
        wgsl!(
            w,
            "if (a >= S{j} && a < S{j} + L{j}) {{ out{j}[(o * L{j} + a - S{j}) * INNER + r] = v; }}"
        );
    }
    Ok(kb.finish(&w.finish(), Grid::linear(&["n"], workgroup)))
}

/// The converse of [`slice()`]: `dst[o, start + j, r] = src[o, j, r]` for `j < len`,
/// leaving the rest of `dst` as it is (appending rows to a KV cache). Bindings
/// `src`, `dst` (read-write). Sizes as [`slice()`], with `n` the source elements.
pub fn slice_update(dtype: ScalarType, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    slice_copy(
        "slice_update",
        ("src", "dst"),
        "dst[(o * A + START + j) * INNER + r] = src[i];",
        dtype,
        limits,
    )
}

/// A copy between a tensor and its slice `[outer, start..start + len, inner]`
/// of a larger one: one invocation per element `i` of the slice, at `(o, j, r)`,
/// runs `copy` from binding `input` to binding `output`.
fn slice_copy(
    name: &str,
    (input, output): (&str, &str),
    copy: &str,
    dtype: ScalarType,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    let workgroup = workgroup_for(limits);
    let mut kb = KernelBuilder::new(format!("{name}_{}", dtype.wgsl()), workgroup);
    for size in ["n", "inner", "a", "start", "len"] {
        kb.size(size, Dim::Dynamic);
    }
    kb.input(input, dtype).output(output, dtype);
    let mut w = WgslWriter::new();
    write_element(&mut w, workgroup);
    write_position(&mut w, "LEN", "j");
    w.line(copy);
    Ok(kb.finish(&w.finish(), Grid::linear(&["n"], workgroup)))
}

/// Writes each token's row into a pool of slots `[slots, slot_len, inner]`:
/// `dst[slot[t], pos[t], r] = src[t, r]`, skipping a token whose slot or
/// position lies outside the pool (so never out of bounds), leaving the rest
/// of `dst` as it is. Bindings `slot`, `pos` (i32 `[tokens]`), `src`
/// (`[tokens, inner]`), `dst` (read-write). Sizes `n` (source elements),
/// `inner`, `slots`, `slot_len`.
pub fn write_rows(dtype: ScalarType, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let workgroup = workgroup_for(limits);
    let mut kb = KernelBuilder::new(format!("write_rows_{}", dtype.wgsl()), workgroup);
    for size in ["n", "inner", "slots", "slot_len"] {
        kb.size(size, Dim::Dynamic);
    }
    kb.input("slot", ScalarType::I32)
        .input("pos", ScalarType::I32)
        .input("src", dtype)
        .output("dst", dtype);
    let mut w = WgslWriter::new();
    write_element(&mut w, workgroup);
    w.line("let t = i / INNER;");
    w.line("let s = slot[t];");
    w.line("let p = pos[t];");
    w.line("if (s < 0i || p < 0i || u32(s) >= SLOTS || u32(p) >= SLOT_LEN) { return; }");
    w.line("dst[(u32(s) * SLOT_LEN + u32(p)) * INNER + i % INNER] = src[i];");
    Ok(kb.finish(&w.finish(), Grid::linear(&["n"], workgroup)))
}

/// Embedding lookup: `out[t, c] = table[clamp(ids[t], 0, v − 1), c]`. Bindings
/// `table` (`[v, d]`), `ids` (i32 `[tokens]`), `out` (`[tokens, d]`). Sizes
/// `tokens`, `v`, `d`. Out-of-range ids are clamped.
pub fn gather(dtype: ScalarType, d: Dim, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let workgroup = workgroup_for(limits);
    let mut kb = KernelBuilder::new(format!("gather_{}", dtype.wgsl()), workgroup);
    kb.size("tokens", Dim::Dynamic)
        .size("v", Dim::Dynamic)
        .size("d", d);
    kb.input("table", dtype)
        .input("ids", ScalarType::I32)
        .output("out", dtype);
    let mut w = WgslWriter::new();
    wgsl!(w, "let i = group * {workgroup}u + lidx;");
    w.line("if (i >= TOKENS * D || V == 0u) { return; }");
    w.line("let t = i / D;");
    w.line("let c = i % D;");
    w.line("let id = u32(clamp(ids[t], 0i, i32(V) - 1i));");
    w.line("out[i] = table[id * D + c];");
    Ok(kb.finish(&w.finish(), Grid::linear(&["tokens", "d"], workgroup)))
}
