//! The verifier: checks a whole model — declarations, SSA order, and every
//! instruction's types — and reports the first problem with its location.

use std::collections::HashSet;
use std::fmt;

use thiserror::Error;

use crate::infer::{infer, TypeError};
use crate::model::{Function, Model, Operand, ParamDecl, ValueId};
use crate::shape::{Dim, TensorType};
use seam_core::WeightFormat;

/// Where in a model a problem is. The text format's source map turns this into a
/// line and column.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// The model as a whole.
    Model,
    /// A symbolic dim declaration.
    Dim(usize),
    /// A parameter declaration.
    Param(usize),
    /// A function's signature.
    Function(usize),
    /// An input of a function.
    Input {
        /// Function index.
        func: usize,
        /// Input index.
        input: usize,
    },
    /// An instruction.
    Instr {
        /// Function index.
        func: usize,
        /// Instruction index in the body.
        instr: usize,
    },
    /// One operand of an instruction.
    Operand {
        /// Function index.
        func: usize,
        /// Instruction index in the body.
        instr: usize,
        /// Operand index.
        operand: usize,
    },
    /// A declared result type of an instruction.
    ResultType {
        /// Function index.
        func: usize,
        /// Instruction index in the body.
        instr: usize,
        /// Result index.
        result: usize,
    },
    /// A returned value.
    Output {
        /// Function index.
        func: usize,
        /// Output index.
        output: usize,
    },
}

/// What the verifier found wrong.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum VerifyErrorKind {
    /// Two declarations share a name.
    #[error("{what} `{name}` is declared twice")]
    Duplicate {
        /// `dim`, `param`, `function` or `value`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A symbolic dim's bound is zero.
    #[error("dim `{0}` must have a bound of at least 1")]
    ZeroBound(String),
    /// A type names a symbolic dim the model does not declare.
    #[error("unknown dim `{0}` (declare it with `dim {0} <= N`)")]
    UnknownDim(String),
    /// A parameter's shape is not static.
    #[error("param `{name}` must have a static shape, found {ty}")]
    SymbolicParam {
        /// The parameter.
        name: String,
        /// Its type.
        ty: TensorType,
    },
    /// A parameter's weight format does not fit its type.
    #[error(
        "param `{name}`: {ty} cannot be stored as {format} (a float `[.., K, N]` with K a multiple of {} is needed)",
        format.block_elems()
    )]
    Format {
        /// The parameter.
        name: String,
        /// Its type.
        ty: TensorType,
        /// The format it declares.
        format: WeightFormat,
    },
    /// An operand refers to a value not defined before it.
    #[error("value `%{0}` is used before it is defined")]
    UseBeforeDef(String),
    /// An operand refers to a parameter or value id that does not exist.
    #[error("operand refers to a nonexistent {0}")]
    Dangling(&'static str),
    /// A function returns nothing.
    #[error("function `{0}` returns no values")]
    NoOutputs(String),
    /// The model has no function.
    #[error("model has no function")]
    NoFunctions,
    /// A function's states break a rule of [`crate::StateBinding`].
    #[error("{0}")]
    State(String),
    /// An instruction's types do not check.
    #[error(transparent)]
    Type(#[from] TypeError),
}

/// A verifier error with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyError {
    /// Where it is.
    pub location: Location,
    /// What is wrong.
    pub kind: VerifyErrorKind,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for VerifyError {}

fn err(location: Location, kind: VerifyErrorKind) -> VerifyError {
    VerifyError { location, kind }
}

/// Verifies a model: unique names, declared dims, static params, SSA order and
/// the types of every instruction.
pub fn verify(model: &Model) -> Result<(), VerifyError> {
    let mut names = HashSet::new();
    for (i, d) in model.dims.iter().enumerate() {
        if !names.insert(d.name.as_str()) {
            return Err(err(Location::Dim(i), dup("dim", &d.name)));
        }
        if d.max == 0 {
            return Err(err(
                Location::Dim(i),
                VerifyErrorKind::ZeroBound(d.name.clone()),
            ));
        }
    }
    let mut names = HashSet::new();
    for (i, p) in model.params.iter().enumerate() {
        if !names.insert(p.name.as_str()) {
            return Err(err(Location::Param(i), dup("param", &p.name)));
        }
        if !p.ty.shape.is_static() {
            return Err(err(
                Location::Param(i),
                VerifyErrorKind::SymbolicParam {
                    name: p.name.clone(),
                    ty: p.ty.clone(),
                },
            ));
        }
        check_format(p).map_err(|kind| err(Location::Param(i), kind))?;
    }
    if model.functions.is_empty() {
        return Err(err(Location::Model, VerifyErrorKind::NoFunctions));
    }
    let mut names = HashSet::new();
    for (fi, f) in model.functions.iter().enumerate() {
        if !names.insert(f.name.as_str()) {
            return Err(err(Location::Function(fi), dup("function", &f.name)));
        }
        verify_function(model, fi, f)?;
        crate::state::verify_states(model, fi, f)?;
    }
    crate::state::verify_shared_states(model)
}

/// A param stored in a weight format other than `f32` is a float `[.., K, N]`
/// whose `K` is a multiple of the format's block.
fn check_format(p: &ParamDecl) -> Result<(), VerifyErrorKind> {
    if p.format == WeightFormat::F32 {
        return Ok(());
    }
    let dims = p.ty.shape.static_sizes().unwrap_or_default();
    let k = dims.len().checked_sub(2).map(|i| dims[i]);
    match k {
        Some(k) if p.ty.dtype.is_float() && p.format.fits(k) => Ok(()),
        _ => Err(VerifyErrorKind::Format {
            name: p.name.clone(),
            ty: p.ty.clone(),
            format: p.format,
        }),
    }
}

fn dup(what: &'static str, name: &str) -> VerifyErrorKind {
    VerifyErrorKind::Duplicate {
        what,
        name: name.to_string(),
    }
}

fn check_dims(model: &Model, ty: &TensorType, location: Location) -> Result<(), VerifyError> {
    for d in ty.shape.dims() {
        if let Dim::Sym(s) = d {
            if model.dim(s).is_none() {
                return Err(err(location, VerifyErrorKind::UnknownDim(s.clone())));
            }
        }
    }
    Ok(())
}

fn verify_function(model: &Model, fi: usize, f: &Function) -> Result<(), VerifyError> {
    let mut names = HashSet::new();
    for (vi, v) in f.values.iter().enumerate() {
        if !names.insert(v.name.as_str()) {
            let loc = value_location(fi, f, Some(ValueId(vi as u32)));
            return Err(err(loc, dup("value", &v.name)));
        }
    }
    let mut defined = vec![false; f.values.len()];
    for (i, &v) in f.inputs.iter().enumerate() {
        let loc = Location::Input { func: fi, input: i };
        let value = f
            .values
            .get(v.index())
            .ok_or_else(|| err(loc, VerifyErrorKind::Dangling("value")))?;
        check_dims(model, &value.ty, loc)?;
        if std::mem::replace(&mut defined[v.index()], true) {
            return Err(err(loc, dup("value", &value.name)));
        }
    }
    for (ii, instr) in f.body.iter().enumerate() {
        let mut operand_types = Vec::with_capacity(instr.operands.len());
        for (oi, &o) in instr.operands.iter().enumerate() {
            let loc = Location::Operand {
                func: fi,
                instr: ii,
                operand: oi,
            };
            match o {
                Operand::Value(v) => match defined.get(v.index()) {
                    Some(true) => {}
                    Some(false) => {
                        return Err(err(
                            loc,
                            VerifyErrorKind::UseBeforeDef(f.value(v).name.clone()),
                        ))
                    }
                    None => return Err(err(loc, VerifyErrorKind::Dangling("value"))),
                },
                Operand::Param(p) if p.index() >= model.params.len() => {
                    return Err(err(loc, VerifyErrorKind::Dangling("param")))
                }
                Operand::Param(_) => {}
            }
            operand_types.push(model.operand_type(f, o));
        }
        let mut declared = Vec::with_capacity(instr.results.len());
        for (ri, &r) in instr.results.iter().enumerate() {
            let loc = Location::ResultType {
                func: fi,
                instr: ii,
                result: ri,
            };
            let value = f
                .values
                .get(r.index())
                .ok_or_else(|| err(loc, VerifyErrorKind::Dangling("value")))?;
            check_dims(model, &value.ty, loc)?;
            declared.push(value.ty.clone());
        }
        let inferred = infer(&instr.op, &operand_types, &declared).map_err(|e| {
            let loc = match e.operand() {
                Some(operand) if operand < instr.operands.len() => Location::Operand {
                    func: fi,
                    instr: ii,
                    operand,
                },
                _ => Location::Instr {
                    func: fi,
                    instr: ii,
                },
            };
            err(loc, e.into())
        })?;
        for (ri, (d, inf)) in declared.iter().zip(&inferred).enumerate() {
            if d != inf {
                return Err(err(
                    Location::ResultType {
                        func: fi,
                        instr: ii,
                        result: ri,
                    },
                    TypeError::ResultType {
                        op: instr.op.name(),
                        index: ri,
                        declared: d.clone(),
                        inferred: inf.clone(),
                    }
                    .into(),
                ));
            }
        }
        for (ri, &r) in instr.results.iter().enumerate() {
            // SSA: a value is defined once (as an input or by one result).
            if std::mem::replace(&mut defined[r.index()], true) {
                let loc = Location::ResultType {
                    func: fi,
                    instr: ii,
                    result: ri,
                };
                return Err(err(loc, dup("value", &f.value(r).name)));
            }
        }
    }
    if f.outputs.is_empty() {
        return Err(err(
            Location::Function(fi),
            VerifyErrorKind::NoOutputs(f.name.clone()),
        ));
    }
    for (oi, &o) in f.outputs.iter().enumerate() {
        let loc = Location::Output {
            func: fi,
            output: oi,
        };
        match defined.get(o.index()) {
            Some(true) => {}
            Some(false) => {
                return Err(err(
                    loc,
                    VerifyErrorKind::UseBeforeDef(f.value(o).name.clone()),
                ))
            }
            None => return Err(err(loc, VerifyErrorKind::Dangling("value"))),
        }
    }
    Ok(())
}

/// The location where a value is defined (an input or an instruction result).
fn value_location(fi: usize, f: &Function, v: Option<ValueId>) -> Location {
    let Some(v) = v else {
        return Location::Function(fi);
    };
    if let Some(input) = f.inputs.iter().position(|&i| i == v) {
        return Location::Input { func: fi, input };
    }
    for (ii, instr) in f.body.iter().enumerate() {
        if let Some(result) = instr.results.iter().position(|&r| r == v) {
            return Location::ResultType {
                func: fi,
                instr: ii,
                result,
            };
        }
    }
    Location::Function(fi)
}
