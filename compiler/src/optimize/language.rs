//! The optimizer's e-graph language: the IR's coarse ops as egg e-nodes.
//!
//! Every IR op is one node kind named as in the text format (`matmul`, `slice`,
//! `route`, `moe`, …), except the element-wise ops: [`SeamLang::Binary`] and
//! [`SeamLang::Unary`] carry their function and are named by it (`add`,
//! `silu`, `gelu_tanh`), so every function of seam-core's tables is a node kind
//! without an edit here. Its children are, in order:
//!
//! 1. when the op has attributes, a leaf holding them: the attribute itself
//!    where it means the same for every op that has it — the reduction of
//!    `all_reduce`/`all_reduce_start` ([`Leaf::Reduce`], written `sum`) and the
//!    gated activation of `gated_matmul`/`moe` ([`Leaf::Act`], written `swiglu`)
//!    — so rules can move it between ops in a plain pattern; otherwise an
//!    [`Leaf::Attrs`] leaf holding the whole op (`slice`, `route`, `const`, …).
//!    Two nodes with different attributes never unify;
//! 2. a [`Leaf::Type`] leaf with the declared result type for the ops whose type is
//!    declared (`const`, `iota`, `reshape`, `cast`);
//! 3. the operands.
//!
//! Params and function inputs are leaves ([`Leaf::Param`], [`Leaf::Input`]).
//! Multi-result ops (`route`, `topk`) are one tuple node; `get` projects result `i`.
//! The single root of a function is an `outputs` node over its returned values.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::Discriminant;
use std::str::FromStr;

use egg::{FromOp, FromOpError, Id, Language};
use seam_ir::{BinaryFn, GatedAct, Op, ReduceOp, TensorType, UnaryFn};

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
    /// The reduction of `all_reduce` and `all_reduce_start` (written `sum`): an
    /// attribute that does not depend on the op, so one leaf serves both and
    /// `all_reduce → all_reduce_wait(all_reduce_start)` is a plain rewrite.
    Reduce(ReduceOp),
    /// The gated activation of `gated_matmul` and `moe` (written `swiglu`,
    /// `geglu`), likewise shared.
    Act(GatedAct),
    /// The attributes of any other op with attributes (the whole op).
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
            Leaf::Reduce(ReduceOp::Sum) => f.write_str(REDUCE_SUM),
            Leaf::Act(a) => f.write_str(a.name()),
            Leaf::Attrs(a) => f.write_str(&a.key.replace(' ', "")),
        }
    }
}

/// The name of [`ReduceOp::Sum`] as patterns write it.
const REDUCE_SUM: &str = "sum";

/// Params, inputs, indices, reductions and gated activations can be written in
/// a pattern; other attributes and types are bound by pattern variables.
impl FromStr for Leaf {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let num = |rest: &str| rest.parse::<u32>().map_err(|e| e.to_string());
        match s.split_at_checked(1) {
            Some(("@", rest)) => num(rest).map(Leaf::Param),
            Some(("$", rest)) => num(rest).map(Leaf::Input),
            Some(("#", rest)) => num(rest).map(Leaf::Index),
            _ if s == REDUCE_SUM => Ok(Leaf::Reduce(ReduceOp::Sum)),
            _ => GatedAct::ALL
                .into_iter()
                .find(|a| a.name() == s)
                .map(Leaf::Act)
                .ok_or_else(|| format!("`{s}` is not a leaf")),
        }
    }
}

/// Defines [`SeamLang`] from the names of the coarse (not element-wise) IR
/// ops: those under `leading` come before the element-wise nodes in the
/// node order, those under `trailing` after (the order extraction breaks cost
/// ties by).
macro_rules! seam_lang {
    (
        leading { $($lead_name:literal = $lead:ident,)* }
        trailing { $($trail_name:literal = $trail:ident,)* }
    ) => {
        /// The e-graph language: one node kind per coarse IR op and per
        /// element-wise function (children as in the module docs), plus `get`,
        /// `outputs` and leaves.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SeamLang {
            $(#[doc = concat!("`", $lead_name, "`.")] $lead(Box<[Id]>),)*
            /// An element-wise binary function, named by it (`add`).
            Binary(BinaryFn, Box<[Id]>),
            /// An element-wise unary function, named by it (`silu`, `gelu_erf`).
            Unary(UnaryFn, Box<[Id]>),
            $(#[doc = concat!("`", $trail_name, "`.")] $trail(Box<[Id]>),)*
            /// `get`: result `#i` of a multi-result node.
            Get([Id; 2]),
            /// `outputs`: a function's returned values.
            Outputs(Box<[Id]>),
            /// A leaf.
            Leaf(Leaf),
        }

        impl SeamLang {
            /// The node's name as patterns write it; `None` for a leaf.
            pub fn kind_name(&self) -> Option<&'static str> {
                Some(match self {
                    $(SeamLang::$lead(_) => $lead_name,)*
                    SeamLang::Binary(f, _) => f.name(),
                    SeamLang::Unary(f, _) => f.name(),
                    $(SeamLang::$trail(_) => $trail_name,)*
                    SeamLang::Get(_) => "get",
                    SeamLang::Outputs(_) => "outputs",
                    SeamLang::Leaf(_) => return None,
                })
            }

            /// The coarse node kind named `name` over `children`.
            fn coarse(name: &str, children: Vec<Id>) -> Option<SeamLang> {
                let children = children.into_boxed_slice();
                Some(match name {
                    $($lead_name => SeamLang::$lead(children),)*
                    $($trail_name => SeamLang::$trail(children),)*
                    "outputs" => SeamLang::Outputs(children),
                    _ => return None,
                })
            }
        }

        impl Language for SeamLang {
            type Discriminant = (Discriminant<SeamLang>, Option<BinaryFn>, Option<UnaryFn>);

            fn discriminant(&self) -> Self::Discriminant {
                let (binary, unary) = match self {
                    SeamLang::Binary(f, _) => (Some(*f), None),
                    SeamLang::Unary(f, _) => (None, Some(*f)),
                    _ => (None, None),
                };
                (std::mem::discriminant(self), binary, unary)
            }

            fn matches(&self, other: &Self) -> bool {
                self.discriminant() == other.discriminant()
                    && match (self, other) {
                        (SeamLang::Leaf(a), SeamLang::Leaf(b)) => a == b,
                        _ => self.children().len() == other.children().len(),
                    }
            }

            fn children(&self) -> &[Id] {
                match self {
                    $(SeamLang::$lead(c))|* | $(SeamLang::$trail(c))|* => c,
                    SeamLang::Binary(_, c) | SeamLang::Unary(_, c) | SeamLang::Outputs(c) => c,
                    SeamLang::Get(c) => c,
                    SeamLang::Leaf(_) => &[],
                }
            }

            fn children_mut(&mut self) -> &mut [Id] {
                match self {
                    $(SeamLang::$lead(c))|* | $(SeamLang::$trail(c))|* => c,
                    SeamLang::Binary(_, c) | SeamLang::Unary(_, c) | SeamLang::Outputs(c) => c,
                    SeamLang::Get(c) => c,
                    SeamLang::Leaf(_) => &mut [],
                }
            }
        }
    };
}

seam_lang! {
    leading {
        "const" = Const,
        "iota" = Iota,
        "matmul" = MatMul,
        "gated_matmul" = GatedMatMul,
        "matmul_add" = MatMulAdd,
    }
    trailing {
        "fused" = Fused,
        "cast" = Cast,
        "rms_norm" = RmsNorm,
        "layer_norm" = LayerNorm,
        "softmax" = Softmax,
        "reduce_sum" = ReduceSum,
        "reshape" = Reshape,
        "transpose" = Transpose,
        "concat" = Concat,
        "slice" = Slice,
        "tail" = Tail,
        "write_tail" = WriteTail,
        "write_rows" = WriteRows,
        "gather" = Gather,
        "rope" = Rope,
        "attention" = Attention,
        "pooled_attention" = PooledAttention,
        "topk" = TopK,
        "route" = Route,
        "moe" = Moe,
        "grouped_matmul" = GroupedMatMul,
        "all_reduce" = AllReduce,
        "all_reduce_start" = AllReduceStart,
        "all_reduce_wait" = AllReduceWait,
        "cache" = Cache,
    }
}

impl fmt::Display for SeamLang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.kind_name()) {
            (SeamLang::Leaf(leaf), _) => leaf.fmt(f),
            (_, name) => f.write_str(name.unwrap_or_default()),
        }
    }
}

/// Parses a node as patterns write it: a coarse op's or an element-wise
/// function's name, `get`, `outputs`, or a leaf.
impl FromOp for SeamLang {
    type Error = FromOpError;

    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        if let Some(f) = BinaryFn::from_name(op) {
            return Ok(SeamLang::Binary(f, children.into_boxed_slice()));
        }
        if let Some(f) = UnaryFn::from_name(op) {
            return Ok(SeamLang::Unary(f, children.into_boxed_slice()));
        }
        if op == "get" {
            return <[Id; 2]>::try_from(children)
                .map(SeamLang::Get)
                .map_err(|children| FromOpError::new(op, children));
        }
        if children.is_empty() {
            if let Ok(leaf) = op.parse::<Leaf>() {
                return Ok(SeamLang::Leaf(leaf));
            }
        }
        SeamLang::coarse(op, children.clone()).ok_or_else(|| FromOpError::new(op, children))
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
        match op {
            Op::Binary(f) => Some(SeamLang::Binary(*f, children.into_boxed_slice())),
            Op::Unary(f) => Some(SeamLang::Unary(*f, children.into_boxed_slice())),
            _ => SeamLang::coarse(op.name(), children),
        }
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
            Some(&Leaf::Reduce(reduce)) => {
                rest = &rest[1..];
                match self {
                    SeamLang::AllReduce(_) => Op::AllReduce { reduce },
                    SeamLang::AllReduceStart(_) => Op::AllReduceStart { reduce },
                    _ => return None,
                }
            }
            Some(&Leaf::Act(act)) => {
                rest = &rest[1..];
                match self {
                    SeamLang::GatedMatMul(_) => Op::GatedMatMul { act },
                    SeamLang::Moe(_) => Op::Moe { act },
                    _ => return None,
                }
            }
            _ => match self {
                SeamLang::Binary(f, _) => Op::Binary(*f),
                SeamLang::Unary(f, _) => Op::Unary(*f),
                _ => Op::from_parts(self.kind_name()?, &[]).ok()?,
            },
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

/// The leaf carrying `op`'s attributes, if it has any: the shared attribute
/// leaves ([`Leaf::Reduce`], [`Leaf::Act`]) where they apply, else the whole op.
pub fn attrs_leaf(op: &Op) -> Option<Leaf> {
    match op {
        Op::AllReduce { reduce } | Op::AllReduceStart { reduce } => Some(Leaf::Reduce(*reduce)),
        Op::GatedMatMul { act } | Op::Moe { act } => Some(Leaf::Act(*act)),
        _ if !op.attrs().is_empty() => Some(Leaf::Attrs(OpAttrs::new(op.clone()))),
        _ => None,
    }
}

/// The metadata leaves an IR op node carries before its operands: its attributes
/// (when it has any) and its declared result type (when the op declares it).
pub fn meta_leaves(op: &Op, result: &TensorType) -> Vec<Leaf> {
    let mut leaves: Vec<Leaf> = attrs_leaf(op).into_iter().collect();
    if op.result_type_is_declared() {
        leaves.push(Leaf::Type(result.clone()));
    }
    leaves
}
