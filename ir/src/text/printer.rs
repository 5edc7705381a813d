//! The printer: writes a model in the canonical text form.

use std::fmt::Write;

use crate::model::{Function, Instr, Model, Operand, ValueId};
use seam_core::WeightFormat;

/// Writes `model` in canonical text form: the header, a blank line, the `dim`
/// declarations, the `param` declarations and the functions, each group
/// separated by a blank line; 2-space indentation; attributes in
/// [`crate::Op::attrs`] order.
///
/// The output parses back to an equal model (`parse(&print(&m)) == m`) when
/// the model's names follow the text format's rules and each function's values
/// are numbered in definition order (inputs, then results in body order, with
/// no unused entries), as the parser and a straightforward builder produce
/// them; float attributes round-trip bit-exactly except NaN payloads (NaN never
/// compares equal). Otherwise the parsed model is the renumbered equivalent,
/// and whenever the printed text parses, printing the parsed model gives the
/// same text again.
///
/// Ids that point nowhere (a malformed model) are printed as
/// `%__invalid_value_N` / `@__invalid_param_N` rather than panicking.
pub fn print(model: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model {}", model.name);
    if !model.dims.is_empty() {
        out.push('\n');
        for d in &model.dims {
            let _ = writeln!(out, "dim {} <= {}", d.name, d.max);
        }
    }
    if !model.params.is_empty() {
        out.push('\n');
        for p in &model.params {
            let _ = match p.format {
                WeightFormat::F32 => writeln!(out, "param {}: {}", p.name, p.ty),
                format => writeln!(out, "param {}: {} as {format}", p.name, p.ty),
            };
        }
    }
    for f in &model.functions {
        out.push('\n');
        print_function(&mut out, model, f);
    }
    out
}

fn value_name(f: &Function, id: ValueId) -> String {
    match f.values.get(id.index()) {
        Some(v) => format!("%{}", v.name),
        None => format!("%__invalid_value_{}", id.0),
    }
}

fn value_type(f: &Function, id: ValueId) -> String {
    match f.values.get(id.index()) {
        Some(v) => v.ty.to_string(),
        None => "?".to_string(),
    }
}

fn operand(model: &Model, f: &Function, o: Operand) -> String {
    match o {
        Operand::Value(v) => value_name(f, v),
        Operand::Param(p) => match model.params.get(p.index()) {
            Some(decl) => format!("@{}", decl.name),
            None => format!("@__invalid_param_{}", p.0),
        },
    }
}

fn print_function(out: &mut String, model: &Model, f: &Function) {
    let state = |is: bool| if is { "state " } else { "" };
    let inputs: Vec<String> = f
        .inputs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = state(f.is_state_input(i));
            format!("{s}{}: {}", value_name(f, v), value_type(f, v))
        })
        .collect();
    let results: Vec<String> = f
        .outputs
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{}{}", state(f.is_state_output(i)), value_type(f, v)))
        .collect();
    let _ = writeln!(
        out,
        "func {}({}) -> ({}) {{",
        f.name,
        inputs.join(", "),
        results.join(", ")
    );
    for instr in &f.body {
        print_instr(out, model, f, instr);
    }
    let outputs: Vec<String> = f.outputs.iter().map(|&v| value_name(f, v)).collect();
    if outputs.is_empty() {
        out.push_str("  return\n}\n");
    } else {
        let _ = writeln!(out, "  return {}\n}}", outputs.join(", "));
    }
}

fn print_instr(out: &mut String, model: &Model, f: &Function, instr: &Instr) {
    let results: Vec<String> = instr.results.iter().map(|&v| value_name(f, v)).collect();
    let mut args: Vec<String> = instr
        .operands
        .iter()
        .map(|&o| operand(model, f, o))
        .collect();
    args.extend(
        instr
            .op
            .attrs()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    let types: Vec<String> = instr.results.iter().map(|&v| value_type(f, v)).collect();
    let _ = writeln!(
        out,
        "  {} = {}({}) : {}",
        results.join(", "),
        instr.op.name(),
        args.join(", "),
        types.join(", ")
    );
}
