//! Building one function: inputs, instructions with inferred types, outputs.

use seam_ir::infer::{infer, infer_from_operands};
use seam_ir::{Function, Instr, Model, Op, Operand, TensorType, ValueId};

use super::BuildError;

/// Builds one function of a model. Instructions get their result types by
/// inference (or from the caller, for `const`, `iota`, `reshape` and `cast`),
/// so a type error surfaces at the call that caused it.
#[derive(Debug)]
pub struct FunctionBuilder<'m> {
    model: &'m mut Model,
    func: Function,
    /// Each state input (by input index) and its updated value, once appended to.
    states: Vec<(usize, Option<ValueId>)>,
}

impl<'m> FunctionBuilder<'m> {
    pub(super) fn new(model: &'m mut Model, name: String) -> Self {
        FunctionBuilder {
            model,
            func: Function::new(name),
            states: Vec::new(),
        }
    }

    /// Declares an input of the function.
    pub fn input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let id = self.func.add_value(name, ty);
        self.func.inputs.push(id);
        id
    }

    /// Declares a state input (see [`seam_ir::StateBinding`]): its leading dim
    /// is the length dim, or it is a pool of static shape. Declare states
    /// before any instruction, then update each once with
    /// [`FunctionBuilder::append_state`] or, for a pool,
    /// [`FunctionBuilder::write_pool_state`].
    pub fn state_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let id = self.input(name, ty);
        self.states.push((self.func.inputs.len() - 1, None));
        id
    }

    /// Appends `rows` to `state` (a `write_tail`); the result is the updated
    /// state, returned by the function after its other outputs.
    pub fn append_state(
        &mut self,
        name: &str,
        state: ValueId,
        rows: impl Into<Operand>,
    ) -> Result<ValueId, BuildError> {
        let updated = self.write_tail(name, state, rows)?;
        self.updated_state(state, updated)
    }

    /// Writes each token's row into the pool `state` at `(slot[t], pos[t])`
    /// (a `write_rows`); the result is the updated pool, returned by the
    /// function after its other outputs.
    pub fn write_pool_state(
        &mut self,
        name: &str,
        state: ValueId,
        slot_pos: [Operand; 2],
        rows: impl Into<Operand>,
    ) -> Result<ValueId, BuildError> {
        let updated = self.write_rows(name, state, slot_pos, rows)?;
        self.updated_state(state, updated)
    }

    /// Records `updated` as the new value of state input `state` (once).
    fn updated_state(&mut self, state: ValueId, updated: ValueId) -> Result<ValueId, BuildError> {
        let input = self.func.inputs.iter().position(|&v| v == state);
        match self.states.iter_mut().find(|(i, _)| Some(*i) == input) {
            Some((_, slot @ None)) => *slot = Some(updated),
            _ => return Err(BuildError::NotAState(self.func.value(state).name.clone())),
        }
        Ok(updated)
    }

    /// The type of an operand.
    pub fn type_of(&self, operand: impl Into<Operand>) -> &TensorType {
        self.model.operand_type(&self.func, operand.into())
    }

    /// Appends an instruction whose result types are inferred from its operands.
    pub fn op(
        &mut self,
        names: &[&str],
        op: Op,
        operands: &[Operand],
    ) -> Result<Vec<ValueId>, BuildError> {
        let types = self.infer_types(names, &op, operands, None)?;
        self.push(names, op, operands, types)
    }

    /// Appends an instruction with declared result types (checked by inference).
    pub fn op_declared(
        &mut self,
        names: &[&str],
        op: Op,
        operands: &[Operand],
        declared: Vec<TensorType>,
    ) -> Result<Vec<ValueId>, BuildError> {
        let types = self.infer_types(names, &op, operands, Some(&declared))?;
        self.push(names, op, operands, types)
    }

    fn infer_types(
        &self,
        names: &[&str],
        op: &Op,
        operands: &[Operand],
        declared: Option<&[TensorType]>,
    ) -> Result<Vec<TensorType>, BuildError> {
        let operand_types: Vec<&TensorType> = operands.iter().map(|&o| self.type_of(o)).collect();
        match declared {
            Some(d) => infer(op, &operand_types, d),
            None => infer_from_operands(op, &operand_types),
        }
        .map_err(|error| BuildError::Type {
            value: names.first().copied().unwrap_or_default().to_string(),
            error,
        })
    }

    fn push(
        &mut self,
        names: &[&str],
        op: Op,
        operands: &[Operand],
        types: Vec<TensorType>,
    ) -> Result<Vec<ValueId>, BuildError> {
        if names.len() != types.len() {
            return Err(BuildError::ResultNames {
                op: op.name(),
                expected: types.len(),
                found: names.len(),
            });
        }
        for name in names {
            if self.func.value_by_name(name).is_some() {
                return Err(BuildError::DuplicateValue(name.to_string()));
            }
        }
        let results: Vec<ValueId> = names
            .iter()
            .zip(types)
            .map(|(name, ty)| self.func.add_value(*name, ty))
            .collect();
        self.func.body.push(Instr {
            op,
            operands: operands.to_vec(),
            results: results.clone(),
        });
        Ok(results)
    }

    /// Sets the outputs and adds the function to the model. Updated states are
    /// returned after `outputs`; a state never appended to is returned as it came
    /// in, which the verifier rejects.
    pub fn finish(mut self, outputs: &[ValueId]) {
        self.func.outputs = outputs.to_vec();
        for (input, updated) in std::mem::take(&mut self.states) {
            self.func.states.push(seam_ir::StateBinding {
                input,
                output: self.func.outputs.len(),
            });
            let value = updated.unwrap_or(self.func.inputs[input]);
            self.func.outputs.push(value);
        }
        self.model.functions.push(self.func);
    }
}
