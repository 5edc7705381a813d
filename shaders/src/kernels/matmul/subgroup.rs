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

use crate::error::ShaderError;
use crate::wgsl::{wgsl, WgslWriter};
use seam_core::{Dim, Kernel};

use super::accumulators::{declare_accumulators, write_accumulate, write_b_loads};
use super::blocked::{
    check_split, declare, grid, open_transposed_part, write_block_start, write_columns,
    write_padded_row_output, write_part_k_range, write_stores, BindingTypes, OutputStore,
    RowBlockedSpec, RowSource, SCALARS, VEC4S,
};
use super::layout::BLayout;
use super::parts::part_rows;
use super::tile::SubgroupTile;

/// Generates the kernel (same bindings and sizes as the scalar row-blocked one;
/// `a`, `b` and, for a row-major `b`, `r` and `out` are bound as `vec4` arrays).
pub(crate) fn generate(spec: &RowBlockedSpec, tile: SubgroupTile) -> Result<Kernel, ShaderError> {
    check(spec, &tile)?;
    let core = SubgroupCore::new(spec, tile);
    let mut kb = declare(spec, tile.workgroup, &core.binding_types());
    kb.subgroups();
    let mut w = WgslWriter::new();
    core.write_row_offsets(&mut w);
    core.write_columns_and_accumulators(&mut w);
    for part in 0..spec.b.split.parts {
        core.write_part(&mut w, part);
    }
    core.write_stores(&mut w);
    Ok(kb.finish(&w.finish(), grid(spec, core.col_block(), tile.rows)))
}

/// Refuses tiles that do not fit the subgroup, shapes that are not whole
/// `vec4`s and splits the core cannot read.
fn check(spec: &RowBlockedSpec, tile: &SubgroupTile) -> Result<(), ShaderError> {
    let bad = |r: &str| Err(ShaderError::config(&spec.name, r.to_string()));
    if tile.subgroup == 0 || tile.rows == 0 || tile.cols == 0 || tile.workgroup == 0 {
        return bad("tile sizes must be positive");
    }
    if tile.subgroup % tile.rows != 0 && tile.rows % tile.subgroup != 0 {
        return bad("rows must divide, or be a multiple of, the subgroup size");
    }
    if tile.workgroup % tile.subgroup != 0 {
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
    check_split(spec, tile.workgroup * tile.cols, 4)
}

/// How the `a` loads are spread over a subgroup: each covers `rows_per_load`
/// rows (lane `l` reads row `l % rows_per_load`) and `chunk` k values (at
/// k-offset `4·(l / rows_per_load)`); `loads` loads cover all rows. A row-major
/// `b` takes chunks of 4 k values (lanes past `rows_per_load` repeat rows): each
/// k of a longer chunk would add `cols` unrolled per-lane `b` loads, which makes
/// lavapipe's compile time explode.
#[derive(Copy, Clone, Debug)]
struct LaneSpread {
    /// Rows one `vec4` load of the subgroup covers.
    rows_per_load: u32,
    /// Loads covering all the tile's rows.
    loads: u32,
    /// K values of one chunk.
    chunk: u32,
}

impl LaneSpread {
    /// The spread for `tile` against a `b` stored as `layout`.
    fn new(tile: &SubgroupTile, layout: BLayout) -> Self {
        let rows_per_load = tile.rows.min(tile.subgroup);
        let chunk = match layout {
            BLayout::RowMajor => 4,
            BLayout::Transposed => 4 * tile.subgroup / rows_per_load,
        };
        LaneSpread {
            rows_per_load,
            loads: tile.rows / rows_per_load,
            chunk,
        }
    }
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

/// A group of 4 k values inside a chunk: a constant one of the unrolled chunk,
/// or the tail loop's `q`.
#[derive(Copy, Clone)]
enum KGroup {
    /// Group `q` of an unrolled chunk.
    Constant(u32),
    /// The group the tail loop's `q` is at.
    Looped,
}

impl KGroup {
    /// The group's WGSL index.
    fn index(self) -> String {
        match self {
            KGroup::Constant(q) => format!("{q}u"),
            KGroup::Looped => "q".to_string(),
        }
    }
}

/// One kernel being generated: the spec, its tile and how the loads spread.
struct SubgroupCore<'a> {
    /// What to generate.
    spec: &'a RowBlockedSpec,
    /// The tile.
    tile: SubgroupTile,
    /// How the `a` loads spread over the subgroup.
    spread: LaneSpread,
    /// Whether `b` is row-major (read as `vec4`s of columns).
    row_major: bool,
}

impl<'a> SubgroupCore<'a> {
    /// The kernel of `spec` with `tile`.
    fn new(spec: &'a RowBlockedSpec, tile: SubgroupTile) -> Self {
        SubgroupCore {
            spec,
            tile,
            spread: LaneSpread::new(&tile, spec.b.layout),
            row_major: spec.b.layout == BLayout::RowMajor,
        }
    }

    /// `vec4` bindings for `a` and `b`; for a row-major `b`, for `r` and `out` too.
    fn binding_types(&self) -> BindingTypes {
        let outputs = if self.row_major { VEC4S } else { SCALARS };
        BindingTypes {
            a: VEC4S,
            b: VEC4S,
            addend: outputs,
            out: outputs,
        }
    }

    /// The output columns of one workgroup.
    fn col_block(&self) -> u32 {
        let columns = self.tile.workgroup * self.tile.cols;
        if self.row_major {
            4 * columns
        } else {
            columns
        }
    }

    /// The accumulator type and its zero.
    fn accumulator(&self) -> (&'static str, &'static str) {
        if self.row_major {
            ("vec4<f32>", "vec4<f32>(0.0)")
        } else {
            ("f32", "0.0")
        }
    }

    /// The block `rb`, this lane's `a` row `my_r` and k-offset `my_k` in a load,
    /// the batch entry `bat`, then where the lane's loads start (`a_base{i}`) and,
    /// per output row `r`, whether it is stored (`ok_{r}`) and where (`o_{r}`).
    fn write_row_offsets(&self, w: &mut WgslWriter) {
        let spec = self.spec;
        let (rows, per_load) = (self.tile.rows, self.spread.rows_per_load);
        wgsl!(w, "let rb = wid.y;");
        wgsl!(w, "let my_r = sgid % {per_load}u;");
        let last_k = self.spread.chunk / 4 - 1;
        wgsl!(w, "let my_k = min(sgid / {per_load}u, {last_k}u) * 4u;");
        let batch = if spec.batch.is_some() { "wid.z" } else { "0u" };
        wgsl!(w, "let bat = {batch};");
        write_block_start(w, &spec.rows, rows);
        match &spec.rows {
            RowSource::Direct { .. } => {
                for i in 0..self.spread.loads {
                    let row = format!("min(m0 + my_r + {}u, M - 1u)", i * per_load);
                    wgsl!(w, "let a_base{i} = (bat * M + {row}) * K;");
                }
                for r in 0..rows {
                    wgsl!(w, "let ok_{r} = m0 + {r}u < M;");
                    wgsl!(w, "let o_{r} = (bat * M + m0 + {r}u) * N;");
                }
            }
            RowSource::MoePairs { .. } | RowSource::MoePairsToTokens { .. } => {
                self.write_pair_rows(w)
            }
            RowSource::MoePadded | RowSource::MoePaddedToTokens { .. } => {
                for i in 0..self.spread.loads {
                    wgsl!(
                        w,
                        "let a_base{i} = (rb * {rows}u + my_r + {}u) * K;",
                        i * per_load
                    );
                }
                for r in 0..rows {
                    write_padded_row_output(w, &spec.rows, r, rows, &format!("o_{r}"));
                }
            }
        }
    }

    /// For MoE gate/up and the grouped matmul: each lane reads its own row's
    /// pair (`my_p{i}`, `my_ok{i}`); whether output row `r` is a real pair is
    /// broadcast from the lane that read it. Output rows are padded rows, or
    /// the pairs' tokens for [`RowSource::MoePairsToTokens`].
    fn write_pair_rows(&self, w: &mut WgslWriter) {
        let (rows, per_load) = (self.tile.rows, self.spread.rows_per_load);
        for i in 0..self.spread.loads {
            wgsl!(
                w,
                "let my_p{i} = pairs[rb * {rows}u + my_r + {}u];",
                i * per_load
            );
            wgsl!(w, "let my_ok{i} = my_p{i} < TOKENS * TOPK;");
            wgsl!(
                w,
                "let a_base{i} = select(0u, my_p{i} / TOPK, my_ok{i}) * K;"
            );
        }
        for r in 0..rows {
            let (load, lane) = (r / per_load, r % per_load);
            wgsl!(
                w,
                "let ok_{r} = subgroupBroadcast(u32(my_ok{load}), {lane}u) != 0u;"
            );
            if matches!(self.spec.rows, RowSource::MoePairsToTokens { .. }) {
                wgsl!(
                    w,
                    "let o_{r} = select(0u, pairs[rb * {rows}u + {r}u] / TOPK, ok_{r}) * N;"
                );
            } else {
                wgsl!(w, "let o_{r} = (rb * {rows}u + {r}u) * N;");
            }
        }
    }

    /// The invocation's columns (`vec4` groups of a row-major `b`, counted in
    /// `N4`) and its zeroed accumulators.
    fn write_columns_and_accumulators(&self, w: &mut WgslWriter) {
        let (cols, workgroup) = (self.tile.cols, self.tile.workgroup);
        if self.row_major {
            wgsl!(w, "let N4 = N / 4u;");
        }
        wgsl!(w, "let c0 = wid.x * {}u + lidx;", workgroup * cols);
        let limit = if self.row_major { "N4" } else { "N" };
        write_columns(w, "c0", cols, workgroup, limit);
        let (ty, zero) = self.accumulator();
        let mats = self.spec.epilogue.mats();
        declare_accumulators(w, mats, self.tile.rows, cols, ty, zero);
    }

    /// The k loop over part `part` of the weight: whole chunks, then (when a
    /// chunk spans more than 4 k values) the partial last one.
    fn write_part(&self, w: &mut WgslWriter, part: u32) {
        let split = &self.spec.b.split;
        let b_matrix = self.spec.b_matrix();
        if self.row_major {
            wgsl!(w, "{{");
            wgsl!(w, "let row0 = {b_matrix} * K;");
            write_part_k_range(w, split, part);
        } else {
            if part == 0 {
                wgsl!(w, "let nrow0 = {b_matrix} * N;");
            }
            open_transposed_part(w, split, part, self.tile.workgroup * self.tile.cols);
            wgsl!(w, "let k_lo = 0u;");
            wgsl!(w, "let k_hi = K;");
            let (first_row, _) = part_rows(split, part);
            for j in 0..self.tile.cols {
                wgsl!(
                    w,
                    "let bt_{j} = ((nrow0 + nc_{j} - {first_row}u) * K) / 4u;"
                );
            }
        }
        let chunk = self.spread.chunk;
        wgsl!(w, "var k = k_lo;");
        wgsl!(w, "for (; k + {chunk}u <= k_hi; k += {chunk}u) {{");
        self.write_chunk(w, part, Chunk::Unrolled);
        wgsl!(w, "}}");
        if chunk > 4 {
            // K ≡ 0 (mod 4): only a chunk of more than 4 values can be partial.
            wgsl!(w, "if (k < k_hi) {{");
            self.write_chunk(w, part, Chunk::Tail);
            wgsl!(w, "}}");
        }
        wgsl!(w, "}}");
    }

    /// One chunk of `4·S/rows` k values starting at `k` (a multiple of 4): the
    /// lanes' `a` loads, then every group of 4 k values.
    fn write_chunk(&self, w: &mut WgslWriter, part: u32, mode: Chunk) {
        wgsl!(w, "{{");
        for i in 0..self.spread.loads {
            if mode == Chunk::Tail {
                // Lanes past the end load a valid vec4 whose values are never used.
                wgsl!(
                    w,
                    "let av{i} = a[(a_base{i} + min(k + my_k, k_hi - 4u)) / 4u];"
                );
            } else {
                wgsl!(w, "let av{i} = a[(a_base{i} + k + my_k) / 4u];");
            }
        }
        let groups: Vec<KGroup> = match mode {
            Chunk::Tail => {
                wgsl!(w, "for (var q = 0u; k + 4u * q < k_hi; q += 1u) {{");
                vec![KGroup::Looped]
            }
            Chunk::Unrolled => (0..self.spread.chunk / 4).map(KGroup::Constant).collect(),
        };
        for group in groups {
            if self.row_major {
                self.write_row_major_group(w, part, group);
            } else {
                self.write_transposed_group(w, part, group);
            }
        }
        if mode == Chunk::Tail {
            wgsl!(w, "}}");
        }
        wgsl!(w, "}}");
    }

    /// Component `component` (`x`…`w`) of the `a` value that row `r` takes at
    /// `group`, handed to every lane by the lane that loaded it.
    fn a_value(&self, r: u32, group: KGroup, component: &str) -> String {
        let per_load = self.spread.rows_per_load;
        let value = format!("av{}.{component}", r / per_load);
        match group {
            KGroup::Constant(q) => {
                format!(
                    "subgroupBroadcast({value}, {}u)",
                    r % per_load + per_load * q
                )
            }
            KGroup::Looped => {
                format!(
                    "subgroupShuffle({value}, {}u + {per_load}u * q)",
                    r % per_load
                )
            }
        }
    }

    /// A group of 4 k values against a row-major `b`: per k, a `vec4` of columns
    /// of `b` times the broadcast `a` value of each row.
    fn write_row_major_group(&self, w: &mut WgslWriter, part: u32, group: KGroup) {
        let mats = self.spec.epilogue.mats();
        let parts = (part, self.spec.b.split.parts);
        let q = group.index();
        for (c, component) in ["x", "y", "z", "w"].into_iter().enumerate() {
            wgsl!(w, "{{");
            wgsl!(w, "let brow = (prow + k + 4u * {q} + {c}u) * N4;");
            write_b_loads(w, mats, parts, self.tile.cols, &|j| {
                format!("brow + nc_{j}")
            });
            for r in 0..self.tile.rows {
                wgsl!(
                    w,
                    "let x_{r} = vec4<f32>({});",
                    self.a_value(r, group, component)
                );
                write_accumulate(w, mats, r, self.tile.cols, &|acc, value| {
                    format!("fma(x_{r}, {value}, {acc})")
                });
            }
            wgsl!(w, "}}");
        }
    }

    /// A group of 4 k values against a transposed `b`: a `vec4` along k per
    /// column, dotted with the row's broadcast `vec4` of `a`.
    fn write_transposed_group(&self, w: &mut WgslWriter, part: u32, group: KGroup) {
        let mats = self.spec.epilogue.mats();
        let parts = (part, self.spec.b.split.parts);
        let q = group.index();
        wgsl!(w, "{{");
        let index = |j: u32| format!("bt_{j} + k / 4u + {q}");
        write_b_loads(w, mats, parts, self.tile.cols, &index);
        for r in 0..self.tile.rows {
            let [x, y, z, v] = ["x", "y", "z", "w"].map(|c| self.a_value(r, group, c));
            wgsl!(w, "let x_{r} = vec4<f32>({x}, {y}, {z}, {v});");
            write_accumulate(w, mats, r, self.tile.cols, &|acc, value| {
                format!("{acc} + dot(x_{r}, {value})")
            });
        }
        wgsl!(w, "}}");
    }

    /// Applies the epilogue and stores every output (row-major: `vec4`s of `out`).
    fn write_stores(&self, w: &mut WgslWriter) {
        let row_major = self.row_major;
        let index = |r: u32, j: u32| {
            if row_major {
                format!("o_{r} / 4u + n_{j}")
            } else {
                format!("o_{r} + n_{j}")
            }
        };
        let store = OutputStore {
            index: &index,
            limit: if row_major { "N4" } else { "N" },
            zero: self.accumulator().1,
            vec4: row_major,
        };
        write_stores(w, self.spec, self.tile.rows, self.tile.cols, &store);
    }
}
