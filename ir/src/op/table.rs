//! The op table: each op's text name, operand count, result count and whether
//! its result type is declared. The parser, printer, type inference, verifier
//! and evaluator read ops through it; the element-wise ops take their names
//! from seam-core's function tables.

use std::fmt;

use super::{BinaryFn, Op, RouteMode, UnaryFn};

/// Number of operands an op accepts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exact(usize),
    /// One of these counts.
    OneOf(&'static [usize]),
    /// At least this many.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` operands are accepted.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::OneOf(ks) => ks.contains(&n),
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exact(k) => write!(f, "{k}"),
            Arity::OneOf(ks) => {
                let parts: Vec<String> = ks.iter().map(|k| k.to_string()).collect();
                f.write_str(&parts.join(" or "))
            }
            Arity::AtLeast(k) => write!(f, "at least {k}"),
        }
    }
}

/// Defines the table's accessors from one list per op: `Variant: "name",
/// operands, results, declared` (`declared`: the result type is taken from the
/// instruction's declaration rather than inferred). The ops listed under
/// `leading` come before the element-wise ops in name order, those under
/// `trailing` after.
macro_rules! op_table {
    (
        leading { $($lead:ident: $lead_name:literal, $lead_arity:expr, $lead_results:literal, $lead_declared:literal;)* }
        trailing { $($trail:ident: $trail_name:literal, $trail_arity:expr, $trail_results:literal, $trail_declared:literal;)* }
    ) => {
        /// Names of every op, in the order the docs list them: the element-wise
        /// ops (binary, then unary, in their tables' order) after `matmul_add`.
        pub fn op_names() -> Vec<&'static str> {
            let mut names = vec![$($lead_name),*];
            names.extend(BinaryFn::ALL.iter().map(|f| f.name()));
            for f in UnaryFn::ALL {
                if !names.contains(&f.op_name()) {
                    names.push(f.op_name());
                }
            }
            names.extend([$($trail_name),*]);
            names
        }

        impl Op {
            /// The op's name in the text format.
            pub fn name(&self) -> &'static str {
                match self {
                    Op::Binary(f) => f.name(),
                    Op::Unary(f) => f.op_name(),
                    $(Op::$lead { .. } => $lead_name,)*
                    $(Op::$trail { .. } => $trail_name,)*
                }
            }

            /// How many operands the op takes.
            pub fn arity(&self) -> Arity {
                use Arity::{AtLeast, Exact, OneOf};
                match self {
                    Op::Binary(_) => Exact(2),
                    Op::Unary(_) => Exact(1),
                    // `route` reads the scores as a second operand only to take them.
                    Op::Route {
                        mode: RouteMode::Take,
                        ..
                    } => Exact(2),
                    $(Op::$lead { .. } => $lead_arity,)*
                    $(Op::$trail { .. } => $trail_arity,)*
                }
            }

            /// How many results the op produces.
            pub fn num_results(&self) -> usize {
                match self {
                    Op::Binary(_) | Op::Unary(_) => 1,
                    $(Op::$lead { .. } => $lead_results,)*
                    $(Op::$trail { .. } => $trail_results,)*
                }
            }

            /// Whether the result type is taken from the instruction's
            /// declaration rather than inferred from operands (`const`, `iota`,
            /// `reshape`, `cast`, `tail`).
            pub fn result_type_is_declared(&self) -> bool {
                match self {
                    Op::Binary(_) | Op::Unary(_) => false,
                    $(Op::$lead { .. } => $lead_declared,)*
                    $(Op::$trail { .. } => $trail_declared,)*
                }
            }
        }
    };
}

op_table! {
    leading {
        Const: "const", Exact(0), 1, true;
        Iota: "iota", Exact(0), 1, true;
        MatMul: "matmul", Exact(2), 1, false;
        GatedMatMul: "gated_matmul", Exact(3), 1, false;
        MatMulAdd: "matmul_add", Exact(3), 1, false;
    }
    trailing {
        Fused: "fused", AtLeast(1), 1, false;
        Cast: "cast", Exact(1), 1, true;
        RmsNorm: "rms_norm", Exact(2), 1, false;
        LayerNorm: "layer_norm", Exact(3), 1, false;
        Softmax: "softmax", Exact(1), 1, false;
        ReduceSum: "reduce_sum", Exact(1), 1, false;
        Reshape: "reshape", Exact(1), 1, true;
        Transpose: "transpose", Exact(1), 1, false;
        Concat: "concat", AtLeast(1), 1, false;
        Slice: "slice", Exact(1), 1, false;
        Tail: "tail", Exact(1), 1, true;
        WriteTail: "write_tail", Exact(2), 1, false;
        WriteRows: "write_rows", Exact(4), 1, false;
        Gather: "gather", Exact(2), 1, false;
        Rope: "rope", Exact(2), 1, false;
        Attention: "attention", Exact(3), 1, false;
        PooledAttention: "pooled_attention", Exact(5), 1, false;
        TopK: "topk", Exact(1), 2, false;
        Route: "route", Exact(1), 2, false;
        Moe: "moe", OneOf(&[6, 9]), 1, false;
        GroupedMatMul: "grouped_matmul", Exact(3), 1, false;
        AllReduce: "all_reduce", Exact(1), 1, false;
        AllReduceStart: "all_reduce_start", Exact(1), 1, false;
        AllReduceWait: "all_reduce_wait", Exact(1), 1, false;
        Cache: "cache", Exact(1), 1, false;
    }
}

impl Op {
    /// Whether the op is element-wise: a unary or broadcasting binary
    /// function, or a `fused` expression of them.
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_) | Op::Fused { .. })
    }
}
