//! The SSA tensor graph: a model holds symbolic dims, parameters and functions;
//! a function holds typed values and a list of instructions in definition order.

use crate::op::Op;
use crate::shape::TensorType;
use seam_core::WeightFormat;

/// Index of a value within its function.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a parameter within its model.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub u32);

impl ParamId {
    /// The index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A symbolic dim declared in the model header: `dim tokens <= 2048`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimDecl {
    /// The dim's name.
    pub name: String,
    /// The largest size it may take at run time (at least 1).
    pub max: u64,
}

/// A model parameter (weight), written `param layers.0.wq: f32[256, 256]` and used as `@layers.0.wq`;
/// `param layers.0.wq: f32[256, 256] as q4_0` stores it in a block format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamDecl {
    /// The parameter's name (letters, digits, `_` and `.`).
    pub name: String,
    /// Its type; parameter shapes are static.
    pub ty: TensorType,
    /// How the device stores it. The type stays the logical one (`f32`): a
    /// parameter in a block format holds exactly the values its blocks decode
    /// to, which is what the evaluator computes with. Only the right operand of
    /// a product (`[.., K, N]`, blocks along `K`) may use a format other than
    /// `f32` (checked by [`crate::verify()`]).
    pub format: WeightFormat,
}

impl ParamDecl {
    /// A parameter stored in `f32`.
    pub fn new(name: impl Into<String>, ty: TensorType) -> Self {
        ParamDecl {
            name: name.into(),
            ty,
            format: WeightFormat::F32,
        }
    }

    /// The parameter's sizes (a verified model's params are static; a
    /// symbolic dim, which verification rejects, counts as 0).
    pub fn sizes(&self) -> Vec<usize> {
        self.ty
            .shape
            .dims()
            .iter()
            .map(|d| d.as_static().unwrap_or(0) as usize)
            .collect()
    }
}

/// A value of a function: an input or an instruction result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The name printed after `%`.
    pub name: String,
    /// Its declared type.
    pub ty: TensorType,
}

/// What an instruction reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A value of the same function (`%x`).
    Value(ValueId),
    /// A model parameter (`@name`).
    Param(ParamId),
}

/// One instruction: `%a, %b = op(operands, attrs) : types`.
#[derive(Clone, Debug, PartialEq)]
pub struct Instr {
    /// The operation and its attributes.
    pub op: Op,
    /// What it reads, in order.
    pub operands: Vec<Operand>,
    /// The values it defines, in order.
    pub results: Vec<ValueId>,
}

/// A session state carried through a function: input `inputs[input]` is the
/// state as it stands before the call, output `outputs[output]` as it stands
/// after. Written `state %k: f32[kv_len, 2, 32]` among the inputs and
/// `state f32[kv_len, 2, 32]` among the result types, paired in order.
///
/// A state is named by its input value; functions of a model that name the
/// same state share it. Its leading dim is its *length dim* (`kv_len`): the
/// state holds a growing sequence of rows, persisted between calls on the
/// device, zero-initialised, with its length dim's bound as capacity. A call
/// appends rows: the state input must be used once, as the buffer of a
/// `write_tail` whose result is the paired output, so a call with `n` new rows
/// sees the state at `length before + n` rows (the length dim is bound so, not
/// from the inputs) and leaves it there.
///
/// Or the state is a *pool* of per-sequence slots (batched serving): of static
/// shape `[S, L, ...]`, used once as the buffer of a `write_rows` whose result
/// is the paired output; it has no length dim (see [`crate::state`]). A
/// function's states are all appended to or all pools.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct StateBinding {
    /// Index into the function's inputs.
    pub input: usize,
    /// Index into the function's outputs.
    pub output: usize,
}

/// A function: typed inputs, instructions in definition order, outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// The function's name (`forward`, later `prefill`, `decode`).
    pub name: String,
    /// Every value; inputs and results index into this.
    pub values: Vec<Value>,
    /// The input values, in signature order.
    pub inputs: Vec<ValueId>,
    /// The instructions, each operand defined before use.
    pub body: Vec<Instr>,
    /// The returned values.
    pub outputs: Vec<ValueId>,
    /// Inputs and outputs that are session state (empty for a pure function).
    pub states: Vec<StateBinding>,
}

impl Function {
    /// An empty function with no inputs, body or outputs.
    pub fn new(name: impl Into<String>) -> Self {
        Function {
            name: name.into(),
            values: Vec::new(),
            inputs: Vec::new(),
            body: Vec::new(),
            outputs: Vec::new(),
            states: Vec::new(),
        }
    }

    /// The value with this id.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    /// Adds a value and returns its id.
    pub fn add_value(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value {
            name: name.into(),
            ty,
        });
        id
    }

    /// Whether input `i` is a state.
    pub fn is_state_input(&self, i: usize) -> bool {
        self.states.iter().any(|s| s.input == i)
    }

    /// Whether output `i` is a state.
    pub fn is_state_output(&self, i: usize) -> bool {
        self.states.iter().any(|s| s.output == i)
    }

    /// Finds a value by name.
    pub fn value_by_name(&self, name: &str) -> Option<ValueId> {
        self.values
            .iter()
            .position(|v| v.name == name)
            .map(|i| ValueId(i as u32))
    }
}

/// A whole model: name, symbolic dims, parameters and functions.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Model {
    /// The model's name (`model readme_moe`).
    pub name: String,
    /// Declared symbolic dims.
    pub dims: Vec<DimDecl>,
    /// Declared parameters.
    pub params: Vec<ParamDecl>,
    /// Functions; the first is the default entry point.
    pub functions: Vec<Function>,
}

impl Model {
    /// An empty model.
    pub fn new(name: impl Into<String>) -> Self {
        Model {
            name: name.into(),
            ..Model::default()
        }
    }

    /// The parameter with this id.
    pub fn param(&self, id: ParamId) -> &ParamDecl {
        &self.params[id.index()]
    }

    /// Finds a parameter by name.
    pub fn param_by_name(&self, name: &str) -> Option<ParamId> {
        self.params
            .iter()
            .position(|p| p.name == name)
            .map(|i| ParamId(i as u32))
    }

    /// Finds a symbolic dim by name.
    pub fn dim(&self, name: &str) -> Option<&DimDecl> {
        self.dims.iter().find(|d| d.name == name)
    }

    /// Finds a function by name.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The type of an operand in function `func`.
    pub fn operand_type<'a>(&'a self, func: &'a Function, operand: Operand) -> &'a TensorType {
        match operand {
            Operand::Value(v) => &func.value(v).ty,
            Operand::Param(p) => &self.param(p).ty,
        }
    }

    /// Total bytes of all parameters (saturating at `u64::MAX`).
    pub fn param_bytes(&self) -> u64 {
        self.params
            .iter()
            .map(|p| {
                let n =
                    p.ty.shape
                        .static_sizes()
                        .map_or(0, |s| s.iter().fold(1u64, |n, &d| n.saturating_mul(d)));
                n.saturating_mul(p.ty.dtype.size_bytes() as u64)
            })
            .fold(0, u64::saturating_add)
    }
}

impl From<ValueId> for Operand {
    fn from(v: ValueId) -> Self {
        Operand::Value(v)
    }
}

impl From<ParamId> for Operand {
    fn from(p: ParamId) -> Self {
        Operand::Param(p)
    }
}
