//! Matrix products `a[M, K] · b[K, N]` (optionally batched), with the variant
//! chosen per device: for CPU-like devices barrier-free register blocks — fed by
//! subgroup broadcasts where the device has fixed-size subgroups
//! ([`MatmulVariant::SubgroupBlocked`]), else by scalar loads
//! ([`MatmulVariant::RowBlocked`]) — and shared-memory tiles for GPUs
//! ([`MatmulVariant::Tiled`]). GEMV shapes (few rows) use a row-blocked variant
//! with a few-row tile ([`MatmulConfig::gemv`]) and a transposed weight.
//!
//! Measured on lavapipe (Mesa 25.0.7, 2-core AVX2, see the bench): the
//! subgroup variant with a transposed `b` is the fastest at every shape; the
//! scalar row-blocked variant is 3–10× slower, because this Mesa runs every
//! storage load whose address is not a constant as a per-lane loop with a
//! bounds check per element, so loads, not arithmetic, set the speed.
//!
//! Bindings, in order: `a` (f32, `[batch?, M, K]`), `b` — or `b_0 … b_{P-1}` when
//! the weight is split ([`crate::WeightSplit`]) — (f32, `[batch?, K, N]`, or
//! `[batch?, N, K]` when [`BLayout::Transposed`]); with a gated [`Epilogue`]
//! `b_gate…` then `b_up…` (each like `b`) instead; with an add epilogue `r`
//! (f32, `[N]` or `[batch?, M, N]`); `out` (f32, `[batch?, M, N]`), then
//! `params`. Sizes: `m`, `n`, `k`, and `batch` when batched. Accumulation in f32.

use crate::error::ShaderError;
use crate::kernel::{Dim, Kernel};
use crate::limits::{DeviceLimits, KernelProfile};
use crate::split::WeightSplit;

use super::rowblock::{self, BSpec, BlockTile, RowBlockedSpec, RowSource};
use super::tiled;
use super::GatedAct;

/// What a product does with its accumulators before storing them.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// Store `a·b`.
    #[default]
    None,
    /// Two right operands: store `act(a·b_gate) * (a·b_up)`.
    Gated(GatedAct),
    /// Store `a·b + r[n]` (a bias of `N` values, binding `r`).
    AddBias,
    /// Store `a·b + r[batch?, m, n]` (a residual of the output's shape, binding `r`).
    AddResidual,
}

impl Epilogue {
    /// The gated activation, for a gated epilogue.
    pub fn gated(self) -> Option<GatedAct> {
        match self {
            Epilogue::Gated(act) => Some(act),
            _ => None,
        }
    }

    /// Whether the epilogue reads the addend binding `r`.
    pub fn adds(self) -> bool {
        matches!(self, Epilogue::AddBias | Epilogue::AddResidual)
    }

    /// The right-operand binding names (before any split suffix).
    pub(crate) fn mats(self) -> &'static [&'static str] {
        if self.gated().is_some() {
            &["b_gate", "b_up"]
        } else {
            &["b"]
        }
    }

    /// The kernel-name suffix.
    pub(crate) fn tag(self) -> String {
        match self {
            Epilogue::None => String::new(),
            Epilogue::Gated(act) => format!("_{act:?}").to_lowercase(),
            Epilogue::AddBias => "_bias".into(),
            Epilogue::AddResidual => "_res".into(),
        }
    }

    /// The value stored for one output (a `vec4` of four outputs when `vec4`):
    /// `acc_of(mat)` names the accumulator of right operand `mat`, `r_index` the
    /// addend element (or `vec4`) of this output.
    pub(crate) fn value(
        self,
        acc_of: impl Fn(&str) -> String,
        vec4: bool,
        r_index: &str,
    ) -> String {
        match self {
            Epilogue::None => acc_of("b"),
            Epilogue::Gated(act) => {
                let (g, u, f) = (acc_of("b_gate"), acc_of("b_up"), act.wgsl_fn());
                if vec4 {
                    format!("vec4<f32>({f}({g}.x), {f}({g}.y), {f}({g}.z), {f}({g}.w)) * {u}")
                } else {
                    format!("{f}({g}) * {u}")
                }
            }
            Epilogue::AddBias | Epilogue::AddResidual => format!("{} + r[{r_index}]", acc_of("b")),
        }
    }
}
/// How the right operand is stored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BLayout {
    /// `b[K, N]`, row-major (the IR's layout).
    RowMajor,
    /// `b[N, K]`: each output column's weights are contiguous. The compiler may
    /// repack a weight this way at compile time; GEMV prefers it.
    Transposed,
}

/// Tile of the barrier-free row-blocked variant.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowTile {
    /// Output rows per workgroup (held by every invocation).
    pub rows: u32,
    /// Output columns per invocation (strided by the workgroup size).
    pub cols: u32,
    /// Invocations per workgroup (along the columns).
    pub workgroup: u32,
    /// K-loop unroll factor.
    pub unroll: u32,
}

impl RowTile {
    /// The tile measured fastest for large products on lavapipe (see the bench).
    pub fn large() -> Self {
        RowTile {
            rows: 8,
            cols: 2,
            workgroup: 64,
            unroll: 4,
        }
    }

    /// A tile for a GEMV-like product with at most `rows` rows (clamped to 1..=8).
    pub fn gemv(rows: u32) -> Self {
        RowTile {
            rows: rows.clamp(1, 8),
            cols: 2,
            workgroup: 64,
            unroll: 4,
        }
    }
}

/// Tile of the subgroup-broadcast variant ([`MatmulVariant::SubgroupBlocked`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubgroupTile {
    /// Output rows per workgroup; divides `subgroup`.
    pub rows: u32,
    /// Per invocation: `vec4` column groups (row-major `b`) or scalar columns
    /// (transposed `b`).
    pub cols: u32,
    /// The device's subgroup size (every subgroup exactly this many consecutive
    /// invocations).
    pub subgroup: u32,
    /// Invocations per workgroup, a multiple of `subgroup`.
    pub workgroup: u32,
}

impl SubgroupTile {
    /// The default tile for `rows` rows (clamped to a divisor of the subgroup).
    pub fn new(rows: u32, subgroup: u32) -> Self {
        let mut r = rows.clamp(1, subgroup.max(1));
        while subgroup % r != 0 {
            r -= 1;
        }
        SubgroupTile {
            rows: r,
            cols: 2,
            subgroup,
            workgroup: subgroup * 8,
        }
    }
}

/// Tile of the shared-memory variant.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TiledTile {
    /// Output tile edge per workgroup (rows and columns), a multiple of 16.
    pub block: u32,
    /// K depth of one shared-memory step.
    pub depth: u32,
}

impl Default for TiledTile {
    fn default() -> Self {
        TiledTile {
            block: 64,
            depth: 16,
        }
    }
}

/// Which implementation to generate.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    /// Barrier-free register blocks with workgroup-uniform `a` loads.
    RowBlocked(RowTile),
    /// Barrier-free register blocks fed by subgroup broadcasts of `a` and `vec4`
    /// loads (CPU devices with subgroups; K and, for a row-major `b`, N fixed
    /// multiples of 4).
    SubgroupBlocked(SubgroupTile),
    /// 16×16 invocations, shared-memory tiles, 4×4 (block/16 squared) outputs each.
    Tiled(TiledTile),
}

impl MatmulVariant {
    /// The variant suited to the device and shape: on a CPU device with fixed
    /// subgroups and K (and, for a row-major `b`, N) fixed multiples of 4, the
    /// subgroup-broadcast variant; on other CPU devices the scalar row-blocked
    /// one; on GPUs the shared-memory tiles.
    pub fn for_device(limits: &DeviceLimits, n: Dim, k: Dim, layout: BLayout) -> Self {
        match limits.profile() {
            KernelProfile::CpuLike => match subgroup_fits(limits, n, k, layout) {
                Some(sg) => MatmulVariant::SubgroupBlocked(match layout {
                    BLayout::Transposed => SubgroupTile {
                        rows: 2 * sg,
                        cols: 2,
                        subgroup: sg,
                        workgroup: 8 * sg,
                    },
                    BLayout::RowMajor => SubgroupTile {
                        rows: sg,
                        cols: 1,
                        subgroup: sg,
                        workgroup: 8 * sg,
                    },
                }),
                None => MatmulVariant::RowBlocked(RowTile::large()),
            },
            KernelProfile::GpuTiled => MatmulVariant::Tiled(TiledTile::default()),
        }
    }

    /// The variant for a GEMV-like product of at most `max_rows` rows.
    pub fn gemv(limits: &DeviceLimits, max_rows: u32, n: Dim, k: Dim, layout: BLayout) -> Self {
        match subgroup_fits(limits, n, k, layout) {
            Some(sg) => {
                let mut t = SubgroupTile::new(max_rows, sg);
                t.cols = if t.rows >= 4 { 2 } else { 1 };
                MatmulVariant::SubgroupBlocked(t)
            }
            None => MatmulVariant::RowBlocked(RowTile::gemv(max_rows)),
        }
    }
}

/// The subgroup size, if the subgroup variant can serve this shape on this device.
fn subgroup_fits(limits: &DeviceLimits, n: Dim, k: Dim, layout: BLayout) -> Option<u32> {
    let sg = limits.subgroup_size.filter(|s| (1..=64).contains(s))?;
    let k_ok = matches!(k, Dim::Fixed(v) if v % 4 == 0);
    let n_ok = layout == BLayout::Transposed || matches!(n, Dim::Fixed(v) if v % 4 == 0);
    let fits_wg = limits.max_invocations_per_workgroup >= 8 * sg;
    (limits.class == crate::limits::DeviceClass::Cpu && k_ok && n_ok && fits_wg).then_some(sg)
}

/// A matrix product to generate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatmulConfig {
    /// Rows of `a` and `out`.
    pub m: Dim,
    /// Columns of `b` and `out`.
    pub n: Dim,
    /// The contracted dimension.
    pub k: Dim,
    /// Batch count when `a` and `out` are batched (`[batch, M, …]`).
    pub batch: Option<Dim>,
    /// Whether `b` is batched too (`[batch, K, N]`); otherwise shared.
    pub b_batched: bool,
    /// How `b` is stored.
    pub b_layout: BLayout,
    /// How `b` is cut across bindings.
    pub b_split: WeightSplit,
    /// The implementation.
    pub variant: MatmulVariant,
    /// What is stored.
    pub epilogue: Epilogue,
}

impl MatmulConfig {
    /// An unbatched product with a row-major `b` in one binding, variant chosen
    /// for `limits`.
    pub fn new(m: Dim, n: Dim, k: Dim, limits: &DeviceLimits) -> Self {
        MatmulConfig {
            m,
            n,
            k,
            batch: None,
            b_batched: false,
            b_layout: BLayout::RowMajor,
            b_split: WeightSplit::whole(u32::MAX),
            variant: MatmulVariant::for_device(limits, n, k, BLayout::RowMajor),
            epilogue: Epilogue::None,
        }
    }

    /// The same product with `epilogue`. A batched right operand takes no gated
    /// epilogue (checked when generating).
    pub fn with_epilogue(mut self, epilogue: Epilogue) -> Self {
        self.epilogue = epilogue;
        self
    }

    /// The same product with `b` stored as `layout`, the variant re-chosen.
    /// On CPU devices a transposed weight (`[N, K]`) is markedly faster.
    pub fn with_layout(mut self, layout: BLayout, limits: &DeviceLimits) -> Self {
        self.b_layout = layout;
        self.variant = MatmulVariant::for_device(limits, self.n, self.k, layout);
        self
    }

    /// A GEMV-style product for at most `max_rows` (≤ 8) rows with `b` stored
    /// transposed (`[N, K]`), split across bindings as `limits` require
    /// (`offset_align`: the device's storage-offset alignment, for sub-range
    /// binding of one buffer).
    pub fn gemv(
        max_rows: u32,
        n: u32,
        k: u32,
        limits: &DeviceLimits,
        offset_align: u64,
    ) -> Result<Self, ShaderError> {
        let variant = MatmulVariant::gemv(
            limits,
            max_rows,
            Dim::Fixed(n),
            Dim::Fixed(k),
            BLayout::Transposed,
        );
        let col_block = match variant {
            MatmulVariant::RowBlocked(t) => t.workgroup * t.cols,
            MatmulVariant::SubgroupBlocked(t) => t.workgroup * t.cols,
            MatmulVariant::Tiled(t) => t.block,
        };
        let split = WeightSplit::plan(
            n,
            u64::from(k) * 4,
            limits.max_storage_buffer_binding_size,
            col_block,
            offset_align,
        )?;
        Ok(MatmulConfig {
            m: Dim::Dynamic,
            n: Dim::Fixed(n),
            k: Dim::Fixed(k),
            batch: None,
            b_batched: false,
            b_layout: BLayout::Transposed,
            b_split: split,
            variant,
            epilogue: Epilogue::None,
        })
    }
}

/// Generates the matrix-product kernel.
pub fn matmul(cfg: &MatmulConfig) -> Result<Kernel, ShaderError> {
    if cfg.b_batched && cfg.batch.is_none() {
        return Err(ShaderError::config(
            "matmul",
            "b_batched needs a batch size",
        ));
    }
    if cfg.b_batched && cfg.epilogue.gated().is_some() {
        return Err(ShaderError::config(
            "matmul",
            "a gated epilogue needs an unbatched right operand",
        ));
    }
    match cfg.variant {
        MatmulVariant::RowBlocked(tile) => row_blocked(
            cfg,
            format!("rb{}x{}_w{}", tile.rows, tile.cols, tile.workgroup),
            BlockTile::Scalar(tile),
        ),
        MatmulVariant::SubgroupBlocked(tile) => row_blocked(
            cfg,
            format!("sg{}x{}_w{}", tile.rows, tile.cols, tile.workgroup),
            BlockTile::Subgroup(tile),
        ),
        MatmulVariant::Tiled(tile) => tiled::generate(cfg, tile),
    }
}

/// A row-blocked product (scalar or subgroup tile) named `matmul_{tag}` plus the
/// weight layout and split.
fn row_blocked(cfg: &MatmulConfig, tag: String, tile: BlockTile) -> Result<Kernel, ShaderError> {
    let layout = if cfg.b_layout == BLayout::Transposed {
        "_bt"
    } else {
        ""
    };
    let split = if cfg.b_split.parts > 1 {
        format!("_p{}", cfg.b_split.parts)
    } else {
        String::new()
    };
    rowblock::generate(&RowBlockedSpec {
        name: format!("matmul_{tag}{layout}{split}{}", cfg.epilogue.tag()),
        tile,
        rows: RowSource::Direct { m: cfg.m },
        n: cfg.n,
        k: cfg.k,
        batch: cfg.batch,
        b: BSpec {
            layout: cfg.b_layout,
            split: cfg.b_split,
            batched: cfg.b_batched,
            experts: None,
        },
        epilogue: cfg.epilogue,
    })
}
