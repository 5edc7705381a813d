//! The optimizer's e-graph language: the IR's coarse ops as egg e-nodes.
//!
//! Every IR op is one node kind named as in the text format (`matmul`, `slice`,
//! `route`, `moe`, …). Its children are, in order:
//!
//! 1. an [`Leaf::Attrs`] leaf holding the whole op when the op has attributes
//!    (`slice`, `route`, `moe`, `const`, …), so two nodes with different attributes
//!    never unify;
//! 2. a [`Leaf::Type`] leaf with the declared result type for the ops whose type is
//!    declared (`const`, `iota`, `reshape`, `cast`);
//! 3. the operands.
//!
//! Params and function inputs are leaves ([`Leaf::Param`], [`Leaf::Input`]).
//! Multi-result ops (`route`, `topk`) are one tuple node; `get` projects result `i`.
//! The single root of a function is an `outputs` node over its returned values.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use egg::{define_language, FromOp, Id, Language};
use seam_ir::{Op, TensorType};

/// An op together with its attributes, usable as an e-node leaf: equality,
/// hashing and order go through a canonical text key (name and attributes as
/// the printer writes them), so they are total and deterministic even for floats.
#[derive(Clone, Debug)]
pub struct OpAttrs {
    key: String,
    op: Op,
}

impl OpAttrs {
    /// Wraps an op.
    pub fn new(op: Op) -> Self {
        let attrs: Vec<String> = op
            .attrs()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        OpAttrs {
            key: format!("{}{{{}}}", op.name(), attrs.join(",")),
            op,
        }
    }

    /// The op.
    pub fn op(&self) -> &Op {
        &self.op
    }
}

impl PartialEq for OpAttrs {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for OpAttrs {}

impl Hash for OpAttrs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for OpAttrs {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OpAttrs {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// A leaf of the language: a tensor source (param, input) or a piece of
/// metadata (attributes, declared type, result index).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leaf {
    /// Model parameter `i` (written `@i`).
    Param(u32),
    /// Function input `i` (written `$i`).
    Input(u32),
    /// Result index of a `get` (written `#i`).
    Index(u32),
    /// A declared result type.
    Type(TensorType),
    /// An op's attributes.
    Attrs(OpAttrs),
}

impl Leaf {
    /// Whether the leaf is metadata (attributes, type, index) rather than a tensor.
    pub fn is_meta(&self) -> bool {
        !matches!(self, Leaf::Param(_) | Leaf::Input(_))
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Param(i) => write!(f, "@{i}"),
            Leaf::Input(i) => write!(f, "${i}"),
            Leaf::Index(i) => write!(f, "#{i}"),
            Leaf::Type(t) => f.write_str(&t.to_string().replace(' ', "")),
            Leaf::Attrs(a) => f.write_str(&a.key.replace(' ', "")),
        }
    }
}

/// Only params, inputs and indices can be written in a pattern; attributes and
/// types are bound by pattern variables.
impl FromStr for Leaf {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let num = |rest: &str| rest.parse::<u32>().map_err(|e| e.to_string());
        match s.split_at_checked(1) {
            Some(("@", rest)) => num(rest).map(Leaf::Param),
            Some(("$", rest)) => num(rest).map(Leaf::Input),
            Some(("#", rest)) => num(rest).map(Leaf::Index),
            _ => Err(format!("`{s}` is not a leaf")),
        }
    }
}

define_language! {
    /// The e-graph language: one node kind per IR op (children as in the module
    /// docs), plus `get`, `outputs` and leaves.
    pub enum SeamLang {
        "const" = Const(Box<[Id]>),
        "iota" = Iota(Box<[Id]>),
        "matmul" = MatMul(Box<[Id]>),
        "gated_matmul" = GatedMatMul(Box<[Id]>),
        "matmul_add" = MatMulAdd(Box<[Id]>),
        "add" = Add(Box<[Id]>),
        "sub" = Sub(Box<[Id]>),
        "mul" = Mul(Box<[Id]>),
        "div" = Div(Box<[Id]>),
        "eq" = Eq(Box<[Id]>),
        "neg" = Neg(Box<[Id]>),
        "exp" = Exp(Box<[Id]>),
        "silu" = Silu(Box<[Id]>),
        "gelu" = Gelu(Box<[Id]>),
        "sigmoid" = Sigmoid(Box<[Id]>),
        "tanh" = Tanh(Box<[Id]>),
        "fused" = Fused(Box<[Id]>),
        "cast" = Cast(Box<[Id]>),
        "rms_norm" = RmsNorm(Box<[Id]>),
        "layer_norm" = LayerNorm(Box<[Id]>),
        "softmax" = Softmax(Box<[Id]>),
        "reduce_sum" = ReduceSum(Box<[Id]>),
        "reshape" = Reshape(Box<[Id]>),
        "transpose" = Transpose(Box<[Id]>),
        "concat" = Concat(Box<[Id]>),
        "slice" = Slice(Box<[Id]>),
        "tail" = Tail(Box<[Id]>),
        "write_tail" = WriteTail(Box<[Id]>),
        "gather" = Gather(Box<[Id]>),
        "rope" = Rope(Box<[Id]>),
        "attention" = Attention(Box<[Id]>),
        "topk" = TopK(Box<[Id]>),
        "route" = Route(Box<[Id]>),
        "moe" = Moe(Box<[Id]>),
        "all_reduce" = AllReduce(Box<[Id]>),
        "all_reduce_start" = AllReduceStart(Box<[Id]>),
        "all_reduce_wait" = AllReduceWait(Box<[Id]>),
        "cache" = Cache(Box<[Id]>),
        "get" = Get([Id; 2]),
        "outputs" = Outputs(Box<[Id]>),
        Leaf(Leaf),
    }
}

/// An IR op node taken apart: the op, its declared result types and its operands.
#[derive(Clone, Debug)]
pub struct IrNode<'a> {
    /// The op with its attributes.
    pub op: Op,
    /// The declared result type, for ops whose type is declared.
    pub declared: Option<TensorType>,
    /// The operand children.
    pub operands: &'a [Id],
}

impl SeamLang {
    /// The node for IR op `op` over `operands`, given the ids of the leaves that
    /// carry its attributes and declared type (see [`meta_leaves`]).
    pub fn from_ir(op: &Op, meta: &[Id], operands: &[Id]) -> Option<SeamLang> {
        let children: Vec<Id> = meta.iter().chain(operands).copied().collect();
        SeamLang::from_op(op.name(), children).ok()
    }

    /// Whether this node is an IR op (not a leaf, `get` or `outputs`).
    pub fn is_ir_op(&self) -> bool {
        !matches!(
            self,
            SeamLang::Leaf(_) | SeamLang::Get(_) | SeamLang::Outputs(_)
        )
    }

    /// Takes an IR op node apart; `leaf` reads the leaf of a child class, if it
    /// is one. `None` for leaves, `get`, `outputs` and malformed nodes.
    pub fn ir_node<'a, 'l>(&'a self, leaf: impl Fn(Id) -> Option<&'l Leaf>) -> Option<IrNode<'a>> {
        if !self.is_ir_op() {
            return None;
        }
        let mut rest = self.children();
        let op = match rest.first().and_then(|&c| leaf(c)) {
            Some(Leaf::Attrs(a)) => {
                rest = &rest[1..];
                a.op().clone()
            }
            _ => Op::from_parts(&self.to_string(), &[]).ok()?,
        };
        let mut declared = None;
        if op.result_type_is_declared() {
            match rest.first().and_then(|&c| leaf(c)) {
                Some(Leaf::Type(t)) => {
                    declared = Some(t.clone());
                    rest = &rest[1..];
                }
                _ => return None,
            }
        }
        Some(IrNode {
            op,
            declared,
            operands: rest,
        })
    }
}

/// The metadata leaves an IR op node carries before its operands: its attributes
/// (when it has any) and its declared result type (when the op declares it).
pub fn meta_leaves(op: &Op, result: &TensorType) -> Vec<Leaf> {
    let mut leaves = Vec::new();
    if !op.attrs().is_empty() {
        leaves.push(Leaf::Attrs(OpAttrs::new(op.clone())));
    }
    if op.result_type_is_declared() {
        leaves.push(Leaf::Type(result.clone()));
    }
    leaves
}
