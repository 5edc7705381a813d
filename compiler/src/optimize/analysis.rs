//! Shape and dtype analysis: every e-class knows the type of the value it
//! computes, inferred with [`seam_ir::infer::infer`], so rules can check legality.

use egg::{Analysis, DidMerge, EGraph, Id};
use seam_ir::infer::infer;
use seam_ir::{DType, Shape, TensorType};

use crate::optimize::language::{Leaf, SeamLang};

/// The e-graph type used by the optimizer.
pub type SeamGraph = EGraph<SeamLang, TypeAnalysis>;

/// What an e-class holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassType {
    /// A metadata leaf (attributes, declared type, result index).
    Meta,
    /// One tensor.
    Tensor(TensorType),
    /// The results of a multi-result op (`route`, `topk`), or a function's outputs.
    Tuple(Vec<TensorType>),
    /// A node whose types do not check; rules never create one, so seeing it is a bug.
    Invalid,
}

impl ClassType {
    /// The tensor type, if the class is a tensor.
    pub fn tensor(&self) -> Option<&TensorType> {
        match self {
            ClassType::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

/// The analysis: types of params and inputs of the function being optimized.
#[derive(Clone, Debug, Default)]
pub struct TypeAnalysis {
    /// Type of each model param, by index.
    pub params: Vec<TensorType>,
    /// Type of each function input, by index.
    pub inputs: Vec<TensorType>,
}

/// The leaf node of class `id`, if the class is a leaf.
pub fn leaf(egraph: &SeamGraph, id: Id) -> Option<&Leaf> {
    egraph[id].nodes.iter().find_map(|n| match n {
        SeamLang::Leaf(l) => Some(l),
        _ => None,
    })
}

/// The tensor type of class `id`, if it holds a tensor.
pub fn tensor_type(egraph: &SeamGraph, id: Id) -> Option<&TensorType> {
    egraph[id].data.tensor()
}

/// The type `enode` computes, from its children's types.
fn node_type(egraph: &SeamGraph, enode: &SeamLang) -> ClassType {
    let a = &egraph.analysis;
    match enode {
        SeamLang::Leaf(Leaf::Param(i)) => a
            .params
            .get(*i as usize)
            .map_or(ClassType::Invalid, |t| ClassType::Tensor(t.clone())),
        SeamLang::Leaf(Leaf::Input(i)) => a
            .inputs
            .get(*i as usize)
            .map_or(ClassType::Invalid, |t| ClassType::Tensor(t.clone())),
        SeamLang::Leaf(_) => ClassType::Meta,
        SeamLang::Get([index, tuple]) => match (leaf(egraph, *index), &egraph[*tuple].data) {
            (Some(Leaf::Index(i)), ClassType::Tuple(ts)) => ts
                .get(*i as usize)
                .map_or(ClassType::Invalid, |t| ClassType::Tensor(t.clone())),
            _ => ClassType::Invalid,
        },
        SeamLang::Outputs(children) => {
            let types: Option<Vec<TensorType>> = children
                .iter()
                .map(|&c| tensor_type(egraph, c).cloned())
                .collect();
            types.map_or(ClassType::Invalid, ClassType::Tuple)
        }
        _ => ir_type(egraph, enode).unwrap_or(ClassType::Invalid),
    }
}

fn ir_type(egraph: &SeamGraph, enode: &SeamLang) -> Option<ClassType> {
    let node = enode.ir_node(|c| leaf(egraph, c))?;
    let operands: Option<Vec<&TensorType>> = node
        .operands
        .iter()
        .map(|&c| tensor_type(egraph, c))
        .collect();
    let placeholder = TensorType {
        dtype: DType::F32,
        shape: Shape::scalar(),
    };
    let declared = vec![node.declared.unwrap_or(placeholder); node.op.num_results()];
    let mut types = infer(&node.op, &operands?, &declared).ok()?;
    Some(if types.len() == 1 {
        ClassType::Tensor(types.pop()?)
    } else {
        ClassType::Tuple(types)
    })
}

impl Analysis<SeamLang> for TypeAnalysis {
    type Data = ClassType;

    fn make(egraph: &mut SeamGraph, enode: &SeamLang, _id: Id) -> ClassType {
        let ty = node_type(egraph, enode);
        debug_assert!(ty != ClassType::Invalid, "ill-typed e-node {enode}");
        ty
    }

    fn merge(&mut self, a: &mut ClassType, b: ClassType) -> DidMerge {
        // Rules only union classes of equal type; an invalid side takes the valid one.
        if *a == ClassType::Invalid && b != ClassType::Invalid {
            *a = b;
            DidMerge(true, false)
        } else {
            debug_assert!(
                b == ClassType::Invalid || *a == b,
                "union of different types"
            );
            DidMerge(false, *a != b)
        }
    }
}
