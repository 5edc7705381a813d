//! The tiles of the three variants: [`RowTile`], [`SubgroupTile`] and [`TiledTile`].

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

/// Tile of the subgroup-broadcast variant ([`MatmulVariant::SubgroupBlocked`](super::MatmulVariant::SubgroupBlocked)).
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
