//! IR function ⇄ e-graph.
//!
//! [`encode`] adds a function to a fresh e-graph (identical instructions share an
//! e-class); [`decode`] rebuilds a function from one chosen node per e-class,
//! instructions in post-order from the outputs. A value keeps its original name
//! when its e-class holds exactly one original value; other values get fresh,
//! deterministic names (`opt0`, `opt1`, … in emission order).

use std::collections::{BTreeMap, HashMap, HashSet};

use egg::{Id, Language};
use seam_ir::{Function, Instr, Model, Operand, ParamId, ValueId};
use thiserror::Error;

use crate::optimize::analysis::{leaf, ClassType, SeamGraph, TypeAnalysis};
use crate::optimize::language::{meta_leaves, Leaf, SeamLang};

/// Why a function could not be converted.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConvertError {
    /// An instruction's types do not check in the e-graph.
    #[error("`%{value}` in `{function}` does not type-check in the e-graph")]
    IllTyped {
        /// The function.
        function: String,
        /// The value.
        value: String,
    },
    /// The chosen nodes do not form a well-formed graph (an optimizer bug).
    #[error("extraction from `{function}` is malformed: {detail}")]
    Malformed {
        /// The function.
        function: String,
        /// What is wrong.
        detail: String,
    },
}

/// A function in an e-graph.
pub struct Encoded {
    /// The e-graph.
    pub egraph: SeamGraph,
    /// The `outputs` class.
    pub root: Id,
    /// The class of each original value (indexed by [`ValueId`]), as added.
    pub values: Vec<Option<Id>>,
}

/// Adds `func` of `model` to a fresh e-graph.
pub fn encode(model: &Model, func: &Function) -> Result<Encoded, ConvertError> {
    let analysis = TypeAnalysis {
        params: model.params.iter().map(|p| p.ty.clone()).collect(),
        inputs: func
            .inputs
            .iter()
            .map(|&v| func.value(v).ty.clone())
            .collect(),
    };
    let mut egraph = SeamGraph::new(analysis);
    let mut values: Vec<Option<Id>> = vec![None; func.values.len()];
    let ill_typed = |v: ValueId| ConvertError::IllTyped {
        function: func.name.clone(),
        value: func.value(v).name.clone(),
    };
    for (i, &v) in func.inputs.iter().enumerate() {
        values[v.index()] = Some(egraph.add(SeamLang::Leaf(Leaf::Input(i as u32))));
    }
    for instr in &func.body {
        let first = *instr
            .results
            .first()
            .ok_or_else(|| ConvertError::Malformed {
                function: func.name.clone(),
                detail: format!("`{}` without results", instr.op),
            })?;
        let meta: Vec<Id> = meta_leaves(&instr.op, &func.value(first).ty)
            .into_iter()
            .map(|l| egraph.add(SeamLang::Leaf(l)))
            .collect();
        let mut operands = Vec::with_capacity(instr.operands.len());
        for &o in &instr.operands {
            operands.push(match o {
                Operand::Value(v) => values[v.index()].ok_or_else(|| ill_typed(v))?,
                Operand::Param(p) => egraph.add(SeamLang::Leaf(Leaf::Param(p.0))),
            });
        }
        let node =
            SeamLang::from_ir(&instr.op, &meta, &operands).ok_or_else(|| ill_typed(first))?;
        let id = egraph.add(node);
        if egraph[id].data == ClassType::Invalid {
            return Err(ill_typed(first));
        }
        if instr.results.len() == 1 {
            values[first.index()] = Some(id);
        } else {
            for (i, &r) in instr.results.iter().enumerate() {
                let index = egraph.add(SeamLang::Leaf(Leaf::Index(i as u32)));
                values[r.index()] = Some(egraph.add(SeamLang::Get([index, id])));
            }
        }
    }
    let outputs: Vec<Id> = func
        .outputs
        .iter()
        .map(|&v| values[v.index()].ok_or_else(|| ill_typed(v)))
        .collect::<Result<_, _>>()?;
    let root = egraph.add(SeamLang::Outputs(outputs.into()));
    egraph.rebuild();
    Ok(Encoded {
        egraph,
        root,
        values,
    })
}

/// Rebuilds `original` (the function that was encoded) from the node `choose`
/// picks in each e-class reachable from `root`.
pub fn decode<'a>(
    original: &Function,
    encoded: &'a Encoded,
    choose: impl Fn(Id) -> Option<&'a SeamLang>,
) -> Result<Function, ConvertError> {
    let egraph = &encoded.egraph;
    let malformed = |detail: String| ConvertError::Malformed {
        function: original.name.clone(),
        detail,
    };
    let mut func = Function::new(original.name.clone());
    let mut memo: HashMap<Id, Operand> = HashMap::new();
    let mut tuples: HashMap<Id, Vec<ValueId>> = HashMap::new();
    // Original values by class, and names to keep clear of fresh ones.
    let mut originals: BTreeMap<Id, Vec<ValueId>> = BTreeMap::new();
    for (i, class) in encoded.values.iter().enumerate() {
        if let Some(c) = class {
            originals
                .entry(egraph.find(*c))
                .or_default()
                .push(ValueId(i as u32));
        }
    }
    let mut used: HashSet<String> = original.values.iter().map(|v| v.name.clone()).collect();
    let mut fresh = 0usize;
    let mut name_for = |class: Id| -> String {
        if let Some([v]) = originals.get(&class).map(Vec::as_slice) {
            if !original.inputs.contains(v) {
                return original.value(*v).name.clone();
            }
        }
        loop {
            let name = format!("opt{fresh}");
            fresh += 1;
            if used.insert(name.clone()) {
                return name;
            }
        }
    };
    for (i, &v) in original.inputs.iter().enumerate() {
        let val = original.value(v);
        let id = func.add_value(val.name.clone(), val.ty.clone());
        func.inputs.push(id);
        let class = egraph.lookup(SeamLang::Leaf(Leaf::Input(i as u32)));
        if let Some(c) = class {
            memo.insert(egraph.find(c), Operand::Value(id));
        }
    }
    enum Frame {
        Enter(Id),
        Exit(Id),
    }
    let mut in_progress: HashSet<Id> = HashSet::new();
    let mut stack = vec![Frame::Enter(egraph.find(encoded.root))];
    while let Some(frame) = stack.pop() {
        match frame {
            Frame::Enter(c) => {
                if memo.contains_key(&c) || tuples.contains_key(&c) {
                    continue;
                }
                if !in_progress.insert(c) {
                    return Err(malformed(format!("cycle through e-class {c}")));
                }
                stack.push(Frame::Exit(c));
                let node =
                    choose(c).ok_or_else(|| malformed(format!("no choice for e-class {c}")))?;
                for &child in node.children().iter().rev() {
                    let child = egraph.find(child);
                    if egraph[child].data != ClassType::Meta {
                        stack.push(Frame::Enter(child));
                    }
                }
            }
            Frame::Exit(c) => {
                in_progress.remove(&c);
                let node =
                    choose(c).ok_or_else(|| malformed(format!("no choice for e-class {c}")))?;
                let operand = |id: Id| -> Result<Operand, ConvertError> {
                    memo.get(&egraph.find(id))
                        .copied()
                        .ok_or_else(|| malformed(format!("e-class {id} used before defined")))
                };
                match node {
                    SeamLang::Leaf(Leaf::Param(p)) => {
                        memo.insert(c, Operand::Param(ParamId(*p)));
                    }
                    SeamLang::Leaf(other) => {
                        return Err(malformed(format!("leaf {other} chosen for a tensor")));
                    }
                    SeamLang::Get([index, tuple]) => {
                        let i = match leaf(egraph, *index) {
                            Some(Leaf::Index(i)) => *i as usize,
                            _ => return Err(malformed("get without an index".into())),
                        };
                        let v = tuples
                            .get(&egraph.find(*tuple))
                            .and_then(|vs| vs.get(i))
                            .ok_or_else(|| malformed(format!("get #{i} of a non-tuple")))?;
                        memo.insert(c, Operand::Value(*v));
                    }
                    SeamLang::Outputs(children) => {
                        for &child in children.iter() {
                            match operand(child)? {
                                Operand::Value(v) => func.outputs.push(v),
                                Operand::Param(_) => {
                                    return Err(malformed("a param as an output".into()))
                                }
                            }
                        }
                    }
                    _ => {
                        let ir = node
                            .ir_node(|id| leaf(egraph, id))
                            .ok_or_else(|| malformed(format!("malformed node {node}")))?;
                        let operands = ir.operands.iter().map(|&id| operand(id)).collect::<Result<
                            Vec<_>,
                            _,
                        >>(
                        )?;
                        let results = match &egraph[c].data {
                            ClassType::Tensor(t) => {
                                let v = func.add_value(name_for(c), t.clone());
                                memo.insert(c, Operand::Value(v));
                                vec![v]
                            }
                            ClassType::Tuple(ts) => {
                                let mut vs = Vec::with_capacity(ts.len());
                                for (i, t) in ts.iter().enumerate() {
                                    let named = projection(egraph, c, i).unwrap_or(c);
                                    vs.push(func.add_value(name_for(named), t.clone()));
                                }
                                tuples.insert(c, vs.clone());
                                vs
                            }
                            other => return Err(malformed(format!("{node} has type {other:?}"))),
                        };
                        func.body.push(Instr {
                            op: ir.op,
                            operands,
                            results,
                        });
                    }
                }
            }
        }
    }
    // Inputs and outputs keep their order, so the state pairs carry over.
    func.states = original.states.clone();
    Ok(func)
}

/// The class of `get #i` of tuple class `tuple`, if the e-graph has one.
fn projection(egraph: &SeamGraph, tuple: Id, i: usize) -> Option<Id> {
    let index = egraph.lookup(SeamLang::Leaf(Leaf::Index(i as u32)))?;
    egraph
        .lookup(SeamLang::Get([index, tuple]))
        .map(|c| egraph.find(c))
}
