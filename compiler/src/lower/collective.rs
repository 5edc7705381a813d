//! Reductions across tensor-parallel ranks: `all_reduce` and its split
//! `all_reduce_start` / `all_reduce_wait` cost no dispatch when the result
//! can share its operand's storage (reduced in place: the operand has no
//! other use), else one copy; each is recorded with the steps it starts after
//! and is waited for before, for a runtime with several ranks (one device
//! ignores them).

use seam_core::SizeExpr;
use seam_ir::{DType, Instr, Op, Operand, ValueId};

use super::{dims_of, LowerCx, LowerError, TensorId};

/// A lowered reduction (it becomes a `seam_bundle::Collective`).
#[derive(Clone, Debug)]
pub struct LoweredCollective {
    /// The reduced value's name.
    pub name: String,
    /// The tensor reduced in place.
    pub tensor: TensorId,
    /// Its f32 elements.
    pub elements: SizeExpr,
    /// Steps `0..start` run before the reduction starts.
    pub start: usize,
    /// The first step reading the reduced value (`None` until its wait is lowered).
    pub wait: Option<usize>,
    /// The `all_reduce_start` result awaiting its wait.
    pending: Option<ValueId>,
}

impl LowerCx<'_> {
    /// Whether `instr` (`all_reduce` or `all_reduce_start`) may reduce its
    /// operand in place: a value of the function (not an input), read by
    /// `instr` alone.
    pub(crate) fn reduces_in_place(&self, instr: &Instr) -> bool {
        let o = instr.operands[0];
        let Operand::Value(v) = o else {
            return false;
        };
        let reads = self.func.body.iter().flat_map(|i| &i.operands);
        !self.func.inputs.contains(&v)
            && !self.func.outputs.contains(&v)
            && reads.filter(|&&x| x == o).count() == 1
    }

    /// Records the reduction of `instr` (`all_reduce`, `all_reduce_start` or
    /// `all_reduce_wait`) over its result's tensor, lowered already (an alias
    /// of the operand, or its copy).
    pub(crate) fn record_collective(&mut self, instr: &Instr) -> Result<(), LowerError> {
        let t = self.value_tensor(instr.results[0]);
        let here = self.steps.len();
        match (&instr.op, instr.operands[0]) {
            (Op::AllReduceWait, Operand::Value(started)) => {
                let Some(i) = self
                    .collectives
                    .iter()
                    .position(|c| c.pending == Some(started))
                else {
                    return Err(self.unsupported(instr, "a wait without its start"));
                };
                let c = &mut self.collectives[i];
                c.wait = Some(here);
                c.pending = None;
                Ok(())
            }
            (Op::AllReduce { .. } | Op::AllReduceStart { .. }, o) => {
                let ty = self.ty(o);
                if ty.dtype != DType::F32 {
                    return Err(self.unsupported(instr, "only f32 tensors are reduced"));
                }
                let start = matches!(instr.op, Op::AllReduceStart { .. });
                self.collectives.push(LoweredCollective {
                    name: self.result_name(instr),
                    tensor: t,
                    elements: SizeExpr::product(dims_of(ty)),
                    start: here,
                    wait: (!start).then_some(here),
                    pending: start.then_some(instr.results[0]),
                });
                Ok(())
            }
            _ => Err(self.unsupported(instr, "a wait on a parameter")),
        }
    }
}
