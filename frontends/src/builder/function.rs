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
}

impl<'m> FunctionBuilder<'m> {
    pub(super) fn new(model: &'m mut Model, name: String) -> Self {
        FunctionBuilder {
            model,
            func: Function::new(name),
        }
    }

    /// Declares an input of the function.
    pub fn input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let id = self.func.add_value(name, ty);
        self.func.inputs.push(id);
        id
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

    /// Sets the outputs and adds the function to the model.
    pub fn finish(mut self, outputs: &[ValueId]) {
        self.func.outputs = outputs.to_vec();
        self.model.functions.push(self.func);
    }
}
