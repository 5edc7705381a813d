//! [`QuantMatmulConfig`] and its [`QuantTile`]: one product with a weight in a
//! [`WeightFormat`] to generate, and how its work is spread over a workgroup.

use seam_core::{DeviceClass, DeviceLimits, Dim, WeightFormat};

use crate::kernels::matmul::Epilogue;

/// The most rows of `a` one pass over the weights dots: 16 on a CPU device
/// (lavapipe), where the accumulators live in ordinary memory and each
/// decoded weight then serves a whole batched step of 16 sequences; 8 on a
/// GPU, where they are registers.
pub(crate) const MAX_ROWS: u32 = 16;

/// Output columns per invocation on a CPU device (see
/// [`QuantTile::for_device`]): 4 at one row, except for `q8_0` and `q4_k`,
/// whose larger chunks (8 decoded groups, 16 for `q4_k`) then run out of
/// registers.
fn cpu_col_reps(format: WeightFormat, rows: u32) -> u32 {
    match format {
        _ if rows > 1 => 1,
        WeightFormat::Q8_0 | WeightFormat::Q4K => 1,
        _ => 4,
    }
}

/// The most output columns one invocation computes ([`QuantTile::col_reps`]).
pub(crate) const MAX_COL_REPS: u32 = 8;

/// How the work of one workgroup is laid out.
///
/// A workgroup of `threads · cols` invocations owns `cols · col_reps` output
/// columns and `rows` output rows; the `threads` invocations of a column
/// split its weight row's chunks (consecutive invocations read consecutive
/// words) and their partial sums are reduced at the end — with subgroup
/// shuffles when `subgroup` is set, through workgroup memory otherwise.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuantTile {
    /// Rows of `a` dotted per pass over the weights (1 to 16 on a CPU
    /// device, to 8 on a GPU); more rows are further workgroups along y,
    /// each streaming the weights again.
    pub rows: u32,
    /// Invocations per output column (a power of two).
    pub threads: u32,
    /// Columns of invocations per workgroup.
    pub cols: u32,
    /// Output columns each column of invocations computes, `cols` apart: the
    /// values of `a` it loads for a chunk serve them all (1 to
    /// 8; more than 1 only with one row).
    pub col_reps: u32,
    /// With more than one row and one invocation per column: when `M` is 1
    /// at run time (one sequence decoding through a batched entry point), the
    /// kernel takes the one-row path of [`QuantTile::one_row`], whose
    /// invocations each compute this many columns. 1: no such path.
    pub one_row_reps: u32,
    /// The device's subgroup size (every subgroup exactly this many
    /// consecutive invocations). With `threads > 1` the column's partial sums
    /// are reduced with subgroup shuffles when `threads` does not exceed it,
    /// else through a workgroup-memory tree; with `threads == 1` the lanes of
    /// a subgroup share `a`'s loads by broadcasts. `None`: no subgroup
    /// operations.
    pub subgroup: Option<u32>,
}

impl QuantTile {
    /// The tile for at most `max_rows` rows of `format` on this device.
    ///
    /// A CPU device (lavapipe) takes one invocation per output column, the
    /// lanes of a subgroup sharing `a`'s loads by broadcasts: Mesa 25.0's
    /// lavapipe runs every storage load whose address is not a constant as a
    /// per-lane loop (a constant address is one scalar load, 3–4× cheaper
    /// measured: `a` indexed by the loop counter instead of broadcasts took
    /// the q4_0 GEMV below from 6.6 to 22.5 ms), so loads, not bytes, set the
    /// speed. At one row each invocation also computes 4 columns 32 apart
    /// (128 per workgroup), so each `a` load serves four weight rows (a tile
    /// of several rows keeps that as its one-row path: 16 invocations of its
    /// 64 compute its 64 columns when `M` is 1), except
    /// for `q8_0` and `q4_k`, whose larger decoded chunks then run out of
    /// registers (`q8_0` 3.1 → 2.3–2.9 GB/s, `q4_k` 1.9 → 1.3 GB/s). Measured
    /// with `SEAM_BENCH_SWEEP=1 cargo bench -p seam-runtime --bench kernels`
    /// (Mesa 25.0.7, LLVM 15, 2-core AVX-512 Xeon shared with other work, so
    /// runs vary up to 2× and only ratios within a run count), GEMV M = 1:
    /// K = 4096, N = 11008 q4_0 1.85 → 2.31 GB/s (4 columns, 64 apart) and
    /// 3.15 → 5.39 (32 apart) in two runs; f16 2.60 → 3.64, bf16 2.99 → 4.45.
    /// Texture loads (`textureLoad` on an `rgba32uint` texture, through
    /// lavapipe's sampling functions) were measured too and were slower
    /// (3.9 against 5.3 GB/s). The earlier choice among one invocation per
    /// column without broadcasts, 4 or 8 invocations per column reduced by
    /// subgroup shuffles and 32 through workgroup memory: 4–7× slower.
    ///
    /// A GPU takes llama.cpp's shape (not measured here: no GPU on the
    /// development machines): a subgroup (or 32 invocations) per column, so
    /// consecutive lanes read consecutive chunks of one row, and 128
    /// invocations per workgroup. Lane `t` of a column reads chunk `t` of a
    /// pass, so a subgroup's loads of one pass are consecutive 16-byte
    /// vectors of one row (`f32`, `f16`, `bf16`, `q4_0`, `q4_1`: one per lane,
    /// 512 contiguous bytes over 32 lanes; `q8_0` two; `q4_k` two plus the
    /// super-block's header vector, shared by four lanes) — coalesced as
    /// llama.cpp's kernels read them.
    pub fn for_device(limits: &DeviceLimits, format: WeightFormat, max_rows: u32) -> Self {
        let subgroup = limits.subgroup_size.filter(|s| s.is_power_of_two());
        match limits.class {
            DeviceClass::Cpu => {
                let rows = max_rows.clamp(1, MAX_ROWS);
                let reps = cpu_col_reps(format, rows);
                QuantTile {
                    rows,
                    threads: 1,
                    cols: if reps > 1 { 32 } else { 64 },
                    col_reps: reps,
                    one_row_reps: if rows > 1 { cpu_col_reps(format, 1) } else { 1 },
                    subgroup,
                }
            }
            _ => {
                let threads = subgroup.unwrap_or(32).min(64);
                QuantTile {
                    rows: max_rows.clamp(1, 8),
                    threads,
                    cols: (128 / threads).max(1),
                    col_reps: 1,
                    one_row_reps: 1,
                    subgroup,
                }
            }
        }
    }

    /// The tile for `n` output columns: a one-row CPU tile computing 4
    /// columns per invocation (128 per workgroup) takes 3 or 2 instead where
    /// that leaves fewer columns in a partly empty last workgroup (ties keep
    /// more): SmolLM2's N = 576 and 960 are whole workgroups of 96 but 4.5 and
    /// 7.5 of 128, and on lavapipe a workgroup is a task for one of few
    /// threads. Measured on SmolLM2-135M q4_0, `seam bench --entry decode`
    /// side by side (interleaved rounds, this VM's speed drifting up to 2×):
    /// every one-row product at 3 columns per invocation took 0.90–1.06× the
    /// time of 4 (median of eleven runs 0.945×), at 2 columns 0.94–0.98×.
    /// Other tiles, and a dynamic `n`, are kept.
    pub fn fit_columns(self, n: Dim) -> Self {
        let Some(n) = n.fixed() else { return self };
        if self.rows != 1 || self.threads != 1 || self.col_reps != 4 {
            return self;
        }
        let padded = |reps: u32| {
            let per = u64::from(self.cols * reps);
            u64::from(n).div_ceil(per) * per
        };
        let col_reps = [4, 3, 2]
            .into_iter()
            .min_by_key(|&reps| (padded(reps), std::cmp::Reverse(reps)))
            .unwrap_or(self.col_reps);
        QuantTile { col_reps, ..self }
    }

    /// The tile of the one-row path (see [`QuantTile::one_row_reps`]): the
    /// workgroup's columns over `cols / one_row_reps` invocations computing
    /// `one_row_reps` columns each; the other invocations return at once.
    pub fn one_row(&self) -> Option<QuantTile> {
        (self.one_row_reps > 1).then(|| QuantTile {
            rows: 1,
            threads: 1,
            cols: self.cols / self.one_row_reps,
            col_reps: self.one_row_reps,
            one_row_reps: 1,
            subgroup: self.subgroup,
        })
    }

    /// Invocations per workgroup.
    pub fn workgroup(&self) -> u32 {
        self.threads.saturating_mul(self.cols)
    }
}

/// A product `out[M, N] = a[M, K] · W` whose weight `W[K, N]` is stored as
/// `N` rows of `format.row_words(K)` words in the row-plane layout (see
/// [`seam_core::quant`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuantMatmulConfig {
    /// How the weight (each of gate and up when gated) is stored.
    pub format: WeightFormat,
    /// Rows of `a` and `out` (usually the dynamic token count).
    pub m: Dim,
    /// Output columns (weight rows).
    pub n: Dim,
    /// The contracted dimension, a multiple of the format's block and of the
    /// kernel's chunk ([`chunk_elems`](super::chunk_elems)).
    pub k: u32,
    /// What is stored: `AddBias` reads `r[N]`, `AddResidual` `r[M, N]`,
    /// `Gated` two weights (gate, up) in `format`.
    pub epilogue: Epilogue,
    /// How the work is spread.
    pub tile: QuantTile,
    /// The largest storage binding in bytes: a weight larger than this is
    /// refused (quantized weights are not split across bindings).
    pub max_binding_bytes: u64,
}

impl QuantMatmulConfig {
    /// The product with the tile [`QuantTile::for_device`] chooses for
    /// `max_rows` rows, fitted to its `n` ([`QuantTile::fit_columns`]), and no
    /// epilogue.
    pub fn new(
        format: WeightFormat,
        (m, n, k): (Dim, Dim, u32),
        max_rows: u32,
        limits: &DeviceLimits,
    ) -> Self {
        QuantMatmulConfig {
            format,
            m,
            n,
            k,
            epilogue: Epilogue::None,
            tile: QuantTile::for_device(limits, format, max_rows).fit_columns(n),
            max_binding_bytes: limits.max_storage_buffer_binding_size,
        }
    }

    /// The same product with `epilogue`.
    pub fn with_epilogue(mut self, epilogue: Epilogue) -> Self {
        self.epilogue = epilogue;
        self
    }
}
