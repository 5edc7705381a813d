//! Summing the partial dot products of the invocations that share an output
//! column: subgroup butterflies (`subgroupShuffleXor`) when the column's
//! invocations lie in one subgroup, else a tree through workgroup memory.

use crate::wgsl::{wgsl, WgslWriter};

use super::config::QuantTile;

/// How the partial sums of a column are combined.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reduction {
    /// One invocation per column: nothing to combine.
    None,
    /// `log2(threads)` subgroup shuffles.
    Subgroup,
    /// A tree in a workgroup array of `accumulators × workgroup` floats.
    Workgroup,
}

impl Reduction {
    /// The reduction `tile` takes.
    pub(crate) fn of(tile: &QuantTile) -> Self {
        match tile.subgroup {
            _ if tile.threads == 1 => Reduction::None,
            Some(sg) if tile.threads <= sg => Reduction::Subgroup,
            _ => Reduction::Workgroup,
        }
    }

    /// Bytes of workgroup memory it needs for `accs` accumulators per invocation.
    pub(crate) fn workgroup_bytes(self, tile: &QuantTile, accs: u32) -> u64 {
        match self {
            Reduction::Workgroup => 4 * u64::from(accs) * u64::from(tile.workgroup()),
            _ => 0,
        }
    }

    /// The module-scope array it needs, if any.
    pub(crate) fn item(self, tile: &QuantTile, accs: u32) -> Option<String> {
        (self == Reduction::Workgroup).then(|| {
            format!(
                "var<workgroup> qm_red: array<f32, {}>;",
                accs * tile.workgroup()
            )
        })
    }

    /// Adds to each of `accs` (in every invocation, uniform control flow) the
    /// partial sums of the column's other invocations; afterwards the column's
    /// invocation `t == 0` holds the totals.
    pub(crate) fn write(self, w: &mut WgslWriter, tile: &QuantTile, accs: &[String]) {
        let threads = tile.threads;
        match self {
            Reduction::None => {}
            Reduction::Subgroup => {
                let mut off = threads / 2;
                while off > 0 {
                    for acc in accs {
                        wgsl!(w, "{acc} += subgroupShuffleXor({acc}, {off}u);");
                    }
                    off /= 2;
                }
            }
            Reduction::Workgroup => {
                let wg = tile.workgroup();
                for (i, acc) in accs.iter().enumerate() {
                    wgsl!(w, "qm_red[{}u + lidx] = {acc};", i as u32 * wg);
                }
                wgsl!(w, "workgroupBarrier();");
                w.open(format_args!(
                    "for (var s = {}u; s > 0u; s = s >> 1u) {{",
                    threads / 2
                ));
                w.open("if (t < s) {");
                for i in 0..accs.len() as u32 {
                    let at = format!("{}u + lidx", i * wg);
                    wgsl!(w, "qm_red[{at}] += qm_red[{at} + s];");
                }
                w.close();
                wgsl!(w, "workgroupBarrier();");
                w.close();
                for (i, acc) in accs.iter().enumerate() {
                    wgsl!(w, "{acc} = qm_red[{}u + lidx];", i as u32 * wg);
                }
            }
        }
    }
}
