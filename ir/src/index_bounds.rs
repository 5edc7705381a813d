//! Bounds on integer inputs that index a table: an id given to `gather` must
//! name a row of the table (and one given to `grouped_matmul` one of its
//! matrices), so every caller (the evaluator's CLI, a GPU run)
//! can refuse an out-of-range token id before running anything — the GPU
//! kernel would otherwise read a clamped row silently.

use crate::model::{Function, Model, Operand};
use crate::op::Op;

/// For each input of `func` (in signature order), the exclusive upper bound on
/// its values when it is read directly as the ids of a `gather` from a table
/// with a static number of rows, or of a `grouped_matmul` over a static number
/// of matrices (the smallest such bound); `None` otherwise.
pub fn index_bounds(model: &Model, func: &Function) -> Vec<Option<u64>> {
    let mut bounds = vec![None; func.inputs.len()];
    for instr in &func.body {
        let (table, ids) = match (&instr.op, instr.operands.as_slice()) {
            (Op::Gather, [table, Operand::Value(ids)]) => (table, ids),
            (Op::GroupedMatMul, [_, Operand::Value(ids), stack]) => (stack, ids),
            _ => continue,
        };
        let Some(input) = func.inputs.iter().position(|v| *v == *ids) else {
            continue;
        };
        let rows = model
            .operand_type(func, *table)
            .shape
            .0
            .first()
            .and_then(|d| d.as_static());
        if let Some(rows) = rows {
            let bound: &mut Option<u64> = &mut bounds[input];
            *bound = Some(bound.map_or(rows, |b: u64| b.min(rows)));
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;

    #[test]
    fn gather_ids_are_bounded_by_the_table_rows() {
        let (m, _) = text::parse(
            "model t\ndim tokens <= 8\nparam embed: f32[10, 4]\nparam small: f32[6, 4]\n\
             func forward(%ids: i32[tokens], %other: i32[tokens]) -> (f32[tokens, 4]) {\n\
               %a = gather(@embed, %ids) : f32[tokens, 4]\n\
               %b = gather(@small, %ids) : f32[tokens, 4]\n\
               %c = add(%a, %b) : f32[tokens, 4]\n\
               return %c\n}\n",
        )
        .expect("parses");
        let f = &m.functions[0];
        assert_eq!(index_bounds(&m, f), vec![Some(6), None]);
    }

    #[test]
    fn grouped_matmul_ids_are_bounded_by_the_matrices() {
        let (m, _) = text::parse(
            "model t\ndim tokens <= 8\nparam w: f32[3, 4, 2]\n\
             func forward(%x: f32[tokens, 4], %m: i32[tokens]) -> (f32[tokens, 2]) {\n\
               %y = grouped_matmul(%x, %m, @w) : f32[tokens, 2]\n\
               return %y\n}\n",
        )
        .expect("parses");
        let f = &m.functions[0];
        assert_eq!(index_bounds(&m, f), vec![None, Some(3)]);
    }
}
