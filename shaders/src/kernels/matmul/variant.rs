//! [`MatmulVariant`]: which implementation a product gets, chosen per device
//! and shape.

use seam_core::Dim;
use seam_core::{DeviceClass, DeviceLimits, KernelProfile};

use super::layout::BLayout;
use super::tile::{RowTile, SubgroupTile, TiledTile};

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
    (limits.class == DeviceClass::Cpu && k_ok && n_ok && fits_wg).then_some(sg)
}
