//! The subgroup-broadcast variant of the row-blocked matrix product, for CPU
//! implementations such as lavapipe where every storage load whose address is
//! not a compile-time constant runs as a per-lane loop (so a "uniform" load of
//! the left operand costs as much as a divergent one): the lanes of a subgroup
//! load *different* `a` elements — lane `l` reads a `vec4` of row `l % rows` at
//! k-offset `4·(l / rows)` — and `subgroupBroadcast` with a constant lane hands
//! each value to all lanes (an extract and a splat). One `vec4` load thus feeds
//! `rows × 4·S/rows` values, and `b` is read as `vec4`s. No barriers, no
//! workgroup memory.
//!
//! Layouts: with a row-major `b[K, N]` each invocation owns `cols` `vec4`
//! column groups (`n4 = n4_0 + l + W·j`); with a transposed `b[N, K]` it owns
//! `cols` scalar columns and reads `vec4`s along k. Requires K ≡ 0 (mod 4) and,
//! for a row-major `b`, N ≡ 0 (mod 4) (checked), and a device whose subgroups
//! are exactly `subgroup` consecutive invocations.

use std::fmt::Write as _;

use crate::error::ShaderError;
use crate::kernel::{Dim, Grid, GridDim, Kernel};
use crate::wgsl::{KernelBuilder, ScalarType, ACTIVATIONS};

use super::matmul::{BLayout, Epilogue, SubgroupTile};
use super::rowblock::{acc, check_split, val, RowBlockedSpec, RowSource};

fn check(spec: &RowBlockedSpec, t: &SubgroupTile) -> Result<(), ShaderError> {
    let bad = |r: &str| Err(ShaderError::config(&spec.name, r.to_string()));
    if t.subgroup == 0 || t.rows == 0 || t.cols == 0 || t.workgroup == 0 {
        return bad("tile sizes must be positive");
    }
    if t.subgroup % t.rows != 0 && t.rows % t.subgroup != 0 {
        return bad("rows must divide, or be a multiple of, the subgroup size");
    }
    if t.workgroup % t.subgroup != 0 {
        return bad("the workgroup must be a whole number of subgroups");
    }
    let k_ok = matches!(spec.k, Dim::Fixed(k) if k % 4 == 0);
    if !k_ok {
        return bad("the subgroup variant needs a fixed K that is a multiple of 4");
    }
    if spec.b.layout == BLayout::RowMajor && !matches!(spec.n, Dim::Fixed(n) if n % 4 == 0) {
        return bad(
            "the subgroup variant with a row-major b needs a fixed N that is a multiple of 4",
        );
    }
    check_split(spec, t.workgroup * t.cols, 4)
}

/// Generates the kernel (same bindings and sizes as the scalar row-blocked one;
/// `a`, `b` and, for a row-major `b`, `out` are bound as `vec4` arrays).
pub(crate) fn generate(spec: &RowBlockedSpec, t: &SubgroupTile) -> Result<Kernel, ShaderError> {
    check(spec, t)?;
    let (rr, cc, wg) = (t.rows, t.cols, t.workgroup);
    let (rs, g, kc) = a_chunk(t, spec.b.layout);
    let parts = spec.b.split.parts;
    let row_major = spec.b.layout == BLayout::RowMajor;
    let mut kb = KernelBuilder::new(&spec.name, wg);
    kb.subgroups();
    match &spec.rows {
        RowSource::Direct { m } => {
            kb.size("m", *m);
        }
        RowSource::MoePairs { topk, tokens } | RowSource::MoePaddedToTokens { topk, tokens } => {
            kb.size("tokens", *tokens).size("topk", *topk);
        }
        RowSource::MoePadded => {}
    }
    kb.size("n", spec.n).size("k", spec.k);
    if let Some(b) = spec.batch {
        kb.size("batch", b);
    }
    if let Some(e) = spec.b.experts {
        kb.size("experts", e);
    }
    let moe = !matches!(spec.rows, RowSource::Direct { .. });
    if moe {
        kb.size("blocks", Dim::Dynamic);
    }
    kb.input_typed("a", "array<vec4<f32>>");
    if moe {
        kb.input("block_expert", ScalarType::U32);
    }
    if spec.rows.reads_pairs() {
        kb.input("pairs", ScalarType::U32);
    }
    let mats = spec.epilogue.mats();
    let pname = |mat: &str, p: u32| {
        if parts == 1 {
            mat.to_string()
        } else {
            format!("{mat}_{p}")
        }
    };
    for mat in mats {
        for p in 0..parts {
            kb.input_typed(&pname(mat, p), "array<vec4<f32>>");
        }
    }
    match (spec.epilogue.adds(), row_major) {
        (true, true) => {
            kb.input_typed("r", "array<vec4<f32>>");
        }
        (true, false) => {
            kb.input("r", ScalarType::F32);
        }
        _ => {}
    }
    if row_major {
        kb.output_typed("out", "array<vec4<f32>>");
    } else {
        kb.output("out", ScalarType::F32);
    }
    if spec.epilogue.gated().is_some() {
        kb.item(ACTIVATIONS);
    }

    let mut s = String::new();
    let _ = writeln!(s, "let rb = wid.y;");
    let _ = writeln!(s, "let my_r = sgid % {rs}u;");
    let _ = writeln!(s, "let my_k = min(sgid / {rs}u, {}u) * 4u;", kc / 4 - 1);
    let batched = spec.batch.is_some();
    let _ = writeln!(s, "let bat = {};", if batched { "wid.z" } else { "0u" });
    // Rows: this lane's a row, and per output row r whether it is stored.
    match &spec.rows {
        RowSource::Direct { .. } => {
            let _ = writeln!(s, "if (M == 0u) {{ return; }}");
            let _ = writeln!(s, "let m0 = rb * {rr}u;");
            for i in 0..g {
                let _ = writeln!(
                    s,
                    "let a_base{i} = (bat * M + min(m0 + my_r + {}u, M - 1u)) * K;",
                    i * rs
                );
            }
            for r in 0..rr {
                let _ = writeln!(s, "let ok_{r} = m0 + {r}u < M;");
                let _ = writeln!(s, "let o_{r} = (bat * M + m0 + {r}u) * N;");
            }
        }
        RowSource::MoePairs { .. } => {
            let _ = writeln!(s, "if (rb >= BLOCKS) {{ return; }}");
            let _ = writeln!(s, "let e = block_expert[rb];");
            let _ = writeln!(s, "if (e >= EXPERTS) {{ return; }}");
            for i in 0..g {
                let _ = writeln!(s, "let my_p{i} = pairs[rb * {rr}u + my_r + {}u];", i * rs);
                let _ = writeln!(s, "let my_ok{i} = my_p{i} < TOKENS * TOPK;");
                let _ = writeln!(
                    s,
                    "let a_base{i} = select(0u, my_p{i} / TOPK, my_ok{i}) * K;"
                );
            }
            for r in 0..rr {
                let _ = writeln!(
                    s,
                    "let ok_{r} = subgroupBroadcast(u32(my_ok{}), {}u) != 0u;",
                    r / rs,
                    r % rs
                );
                let _ = writeln!(s, "let o_{r} = (rb * {rr}u + {r}u) * N;");
            }
        }
        RowSource::MoePadded | RowSource::MoePaddedToTokens { .. } => {
            let _ = writeln!(s, "if (rb >= BLOCKS) {{ return; }}");
            let _ = writeln!(s, "let e = block_expert[rb];");
            let _ = writeln!(s, "if (e >= EXPERTS) {{ return; }}");
            for i in 0..g {
                let _ = writeln!(s, "let a_base{i} = (rb * {rr}u + my_r + {}u) * K;", i * rs);
            }
            for r in 0..rr {
                if spec.rows.reads_pairs() {
                    let _ = writeln!(s, "let p_{r} = pairs[rb * {rr}u + {r}u];");
                    let _ = writeln!(s, "let ok_{r} = p_{r} < TOKENS * TOPK;");
                    let _ = writeln!(s, "let o_{r} = select(0u, p_{r} / TOPK, ok_{r}) * N;");
                } else {
                    let _ = writeln!(s, "let ok_{r} = true;");
                    let _ = writeln!(s, "let o_{r} = (rb * {rr}u + {r}u) * N;");
                }
            }
        }
    }
    let base_row = if spec.b.experts.is_some() {
        "e"
    } else if spec.b.batched {
        "bat"
    } else {
        "0u"
    };
    // Columns and accumulators.
    let acc_ty = if row_major { "vec4<f32>" } else { "f32" };
    let zero = if row_major { "vec4<f32>(0.0)" } else { "0.0" };
    if row_major {
        let _ = writeln!(s, "let N4 = N / 4u;");
        let _ = writeln!(s, "let c0 = wid.x * {}u + lidx;", wg * cc);
        for j in 0..cc {
            let _ = writeln!(s, "let n_{j} = c0 + {}u;", j * wg);
            let _ = writeln!(s, "let nc_{j} = min(n_{j}, N4 - 1u);");
        }
    } else {
        let _ = writeln!(s, "let c0 = wid.x * {}u + lidx;", wg * cc);
        for j in 0..cc {
            let _ = writeln!(s, "let n_{j} = c0 + {}u;", j * wg);
            let _ = writeln!(s, "let nc_{j} = min(n_{j}, N - 1u);");
        }
    }
    for mat in mats {
        for r in 0..rr {
            for j in 0..cc {
                let _ = writeln!(s, "var {}: {acc_ty} = {zero};", acc(mat, r, j));
            }
        }
    }
    // The k loop, part by part.
    let rp = u64::from(spec.b.split.rows_per_part);
    for p in 0..parts {
        let part = if parts == 1 {
            String::new()
        } else {
            format!("_{p}")
        };
        let lo = (u64::from(p) * rp).min(u64::from(u32::MAX));
        let hi = (lo + rp).min(u64::from(u32::MAX));
        if row_major {
            let _ = writeln!(s, "{{");
            let _ = writeln!(s, "let row0 = {base_row} * K;");
            if parts == 1 {
                let _ = writeln!(s, "let k_lo = 0u;\nlet k_hi = K;\nlet prow = row0;");
            } else {
                let _ = writeln!(
                    s,
                    "let k_lo = min(K, max(row0, {lo}u) - row0);\nlet k_hi = min(K, max(row0, {hi}u) - row0);\nlet prow = row0 - {lo}u;"
                );
            }
        } else {
            if p == 0 {
                let _ = writeln!(s, "let nrow0 = {base_row} * N;");
            }
            if parts == 1 {
                let _ = writeln!(s, "{{");
            } else {
                let _ = writeln!(
                    s,
                    "if (nrow0 + wid.x * {blk}u >= {lo}u && nrow0 + wid.x * {blk}u < {hi}u) {{",
                    blk = wg * cc
                );
            }
            let _ = writeln!(s, "let k_lo = 0u;\nlet k_hi = K;");
            for j in 0..cc {
                let _ = writeln!(s, "let bt_{j} = ((nrow0 + nc_{j} - {lo}u) * K) / 4u;");
            }
        }
        let _ = writeln!(s, "var k = k_lo;");
        let _ = writeln!(s, "for (; k + {kc}u <= k_hi; k += {kc}u) {{");
        s.push_str(&chunk(spec, t, mats, &part, Chunk::Unrolled));
        let _ = writeln!(s, "}}");
        if kc > 4 {
            // K ≡ 0 (mod 4): only a chunk of more than 4 values can be partial.
            let _ = writeln!(s, "if (k < k_hi) {{");
            s.push_str(&chunk(spec, t, mats, &part, Chunk::Tail));
            let _ = writeln!(s, "}}");
        }
        let _ = writeln!(s, "}}");
    }
    // Stores.
    let pad_zero = matches!(spec.rows, RowSource::MoePairs { .. });
    for r in 0..rr {
        for j in 0..cc {
            let (idx, lim) = if row_major {
                (format!("o_{r} / 4u + n_{j}"), "N4")
            } else {
                (format!("o_{r} + n_{j}"), "N")
            };
            let r_index = match spec.epilogue {
                Epilogue::AddResidual => idx.clone(),
                _ => format!("n_{j}"),
            };
            let v = spec
                .epilogue
                .value(|mat| acc(mat, r, j), row_major, &r_index);
            if pad_zero {
                let _ = writeln!(
                    s,
                    "if (n_{j} < {lim}) {{ out[{idx}] = select({zero}, {v}, ok_{r}); }}"
                );
            } else {
                let _ = writeln!(s, "if (ok_{r} && n_{j} < {lim}) {{ out[{idx}] = {v}; }}");
            }
        }
    }
    let col_block = if row_major { 4 * wg * cc } else { wg * cc };
    let x = GridDim::ceil("n", col_block);
    let y = match spec.rows {
        RowSource::Direct { .. } => GridDim::ceil("m", rr),
        _ => GridDim::ceil("blocks", 1),
    };
    let z = if batched {
        GridDim::ceil("batch", 1)
    } else {
        GridDim::one()
    };
    Ok(kb.finish(&s, Grid::xyz(x, y, z)))
}

/// How the `a` loads are spread over a subgroup: each covers `rs` rows (lane
/// `l` reads row `l % rs`) and `kc` k values (at k-offset `4·(l / rs)`); `g`
/// loads cover all rows. A row-major `b` takes chunks of 4 k values (lanes past
/// `rs` repeat rows): each k of a longer chunk would add `cols` unrolled
/// per-lane `b` loads, which makes lavapipe's compile time explode.
fn a_chunk(t: &SubgroupTile, layout: BLayout) -> (u32, u32, u32) {
    let rs = t.rows.min(t.subgroup);
    let kc = match layout {
        BLayout::RowMajor => 4,
        BLayout::Transposed => 4 * t.subgroup / rs,
    };
    (rs, t.rows / rs, kc)
}

/// How a chunk of k values is emitted.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Chunk {
    /// Fully unrolled, `a` values handed out by constant-lane broadcasts.
    Unrolled,
    /// The last, partial chunk: a loop over its remaining groups of 4 k values,
    /// reading `a` with `subgroupShuffle` (the lane is not a constant there).
    Tail,
}

/// One chunk of `4·S/rows` k values starting at `k` (a multiple of 4).
fn chunk(
    spec: &RowBlockedSpec,
    t: &SubgroupTile,
    mats: &[&str],
    part: &str,
    mode: Chunk,
) -> String {
    let guarded = mode == Chunk::Tail;
    let looped = guarded;
    let (rr, cc) = (t.rows, t.cols);
    let (rs, g, kc) = a_chunk(t, spec.b.layout);
    let row_major = spec.b.layout == BLayout::RowMajor;
    let mut x = String::from("{\n");
    for i in 0..g {
        if guarded {
            // Lanes past the end load a valid vec4 whose values are never used.
            let _ = writeln!(
                x,
                "let av{i} = a[(a_base{i} + min(k + my_k, k_hi - 4u)) / 4u];"
            );
        } else {
            let _ = writeln!(x, "let av{i} = a[(a_base{i} + k + my_k) / 4u];");
        }
    }
    let comp = ["x", "y", "z", "w"];
    // (group of 4 k values, its WGSL index expression, lane expression for row r)
    // Groups of 4 k values: each is (its WGSL index, a constant group or the loop's).
    let groups: Vec<(String, Option<u32>)> = if looped {
        let _ = writeln!(x, "for (var q = 0u; k + 4u * q < k_hi; q += 1u) {{");
        vec![("q".to_string(), None)]
    } else {
        (0..kc / 4).map(|q| (format!("{q}u"), Some(q))).collect()
    };
    // The lane holding row r's `a` values of group q, and how to read them.
    let lane = |r: u32, q: Option<u32>| match q {
        Some(q) => format!("{}u", r % rs + rs * q),
        None => format!("{}u + {rs}u * q", r % rs),
    };
    let bcast = |v: &str, lane: &str| {
        if looped {
            format!("subgroupShuffle({v}, {lane})")
        } else {
            format!("subgroupBroadcast({v}, {lane})")
        }
    };
    for (q, qc) in &groups {
        if row_major {
            for (c, comp_c) in comp.iter().enumerate() {
                let _ = writeln!(x, "{{");
                let _ = writeln!(x, "let brow = (prow + k + 4u * {q} + {c}u) * N4;");
                for mat in mats {
                    for j in 0..cc {
                        let _ = writeln!(x, "let {}_{j} = {mat}{part}[brow + nc_{j}];", val(mat));
                    }
                }
                for r in 0..rr {
                    let v = format!("av{}.{comp_c}", r / rs);
                    let _ = writeln!(x, "let x_{r} = vec4<f32>({});", bcast(&v, &lane(r, *qc)));
                    for mat in mats {
                        for j in 0..cc {
                            let ac = acc(mat, r, j);
                            let _ = writeln!(x, "{ac} = fma(x_{r}, {}_{j}, {ac});", val(mat));
                        }
                    }
                }
                let _ = writeln!(x, "}}");
            }
        } else {
            let _ = writeln!(x, "{{");
            for mat in mats {
                for j in 0..cc {
                    let _ = writeln!(
                        x,
                        "let {}_{j} = {mat}{part}[bt_{j} + k / 4u + {q}];",
                        val(mat)
                    );
                }
            }
            for r in 0..rr {
                let l = lane(r, *qc);
                let i = r / rs;
                let _ = writeln!(
                    x,
                    "let x_{r} = vec4<f32>({}, {}, {}, {});",
                    bcast(&format!("av{i}.x"), &l),
                    bcast(&format!("av{i}.y"), &l),
                    bcast(&format!("av{i}.z"), &l),
                    bcast(&format!("av{i}.w"), &l)
                );
                for mat in mats {
                    for j in 0..cc {
                        let ac = acc(mat, r, j);
                        let _ = writeln!(x, "{ac} = {ac} + dot(x_{r}, {}_{j});", val(mat));
                    }
                }
            }
            let _ = writeln!(x, "}}");
        }
    }
    if looped {
        x.push_str("}\n");
    }
    x.push_str("}\n");
    x
}
