//! The per-invocation registers every variant names the same way — the
//! accumulators and the loaded right-operand values — and the WGSL that
//! declares, loads and updates them.

use crate::wgsl::{wgsl, WgslWriter};

use super::parts::part_binding;

/// The accumulator of output row `r`, column group `j` for right operand `mat`.
pub(crate) fn acc(mat: &str, r: u32, j: u32) -> String {
    match mat {
        "b_gate" => format!("g_{r}_{j}"),
        "b_up" => format!("u_{r}_{j}"),
        _ => format!("c_{r}_{j}"),
    }
}

/// The name of a loaded right-operand value of `mat`.
pub(crate) fn val(mat: &str) -> &'static str {
    match mat {
        "b_gate" => "wg",
        "b_up" => "wu",
        _ => "w",
    }
}

/// Declares the zeroed accumulators of `rows × cols` outputs for every right
/// operand in `mats`, of WGSL type `ty`.
pub(crate) fn declare_accumulators(
    w: &mut WgslWriter,
    mats: &[&str],
    rows: u32,
    cols: u32,
    ty: &str,
    zero: &str,
) {
    for mat in mats {
        for r in 0..rows {
            for j in 0..cols {
                wgsl!(w, "var {}: {ty} = {zero};", acc(mat, r, j));
            }
        }
    }
}

/// Loads `{val}_{j}` of every right operand in `mats` for the columns `j < cols`:
/// element `index(j)` of the operand's part `part` of `parts`.
pub(crate) fn write_b_loads(
    w: &mut WgslWriter,
    mats: &[&str],
    (part, parts): (u32, u32),
    cols: u32,
    index: &dyn Fn(u32) -> String,
) {
    for mat in mats {
        let binding = part_binding(mat, part, parts);
        for j in 0..cols {
            wgsl!(w, "let {}_{j} = {binding}[{}];", val(mat), index(j));
        }
    }
}

/// `acc = update(acc, value)` for every accumulator of output row `r`, where
/// `value` is the loaded right-operand value of its column.
pub(crate) fn write_accumulate(
    w: &mut WgslWriter,
    mats: &[&str],
    r: u32,
    cols: u32,
    update: &dyn Fn(&str, &str) -> String,
) {
    for mat in mats {
        for j in 0..cols {
            let acc = acc(mat, r, j);
            let value = format!("{}_{j}", val(mat));
            wgsl!(w, "{acc} = {};", update(&acc, &value));
        }
    }
}
