//! Shape and dtype inference: the result types of one instruction from its
//! operand types, attributes and (for `const`, `iota`, `reshape`, `cast`,
//! `tail`) its declared result types.
//!
//! [`infer`] checks the operand and result counts, then hands the op to the
//! typing rules of its family, one module each: ops whose result type is
//! declared, matrix products, element-wise ops, row ops over the last axis,
//! data movement, attention, routing and the expert FFN (`moe`).

mod attention;
mod broadcast;
mod checker;
mod declared;
mod elementwise;
mod error;
mod matmul;
mod moe;
mod movement;
mod routing;
mod rows;

pub use broadcast::broadcast;
pub use error::TypeError;

use checker::Checker;

use crate::op::Op;
use crate::shape::{Shape, TensorType};
use seam_core::DType;

/// The result types a typing rule infers, or why the operands do not check.
type Inferred = Result<Vec<TensorType>, TypeError>;

/// Infers the result types of `op` applied to operands of the given types.
///
/// `declared` are the instruction's declared result types; they are the result for
/// ops whose result type is declared ([`Op::result_type_is_declared`]) after a
/// consistency check, and are otherwise only used for the result count.
pub fn infer(
    op: &Op,
    operands: &[&TensorType],
    declared: &[TensorType],
) -> Result<Vec<TensorType>, TypeError> {
    check_counts(op, operands.len(), declared.len())?;
    let c = Checker {
        op: op.name(),
        operands,
    };
    match op {
        Op::Const { .. } => Ok(declared.to_vec()),
        Op::Iota { axis } => declared::iota(&c, *axis, &declared[0]),
        Op::Cast => declared::cast(&c, &declared[0]),
        Op::Reshape => declared::reshape(&c, &declared[0]),
        Op::Tail => declared::tail(&c, &declared[0]),
        Op::MatMul => matmul::matmul(&c),
        Op::GatedMatMul { .. } => matmul::gated_matmul(&c),
        Op::MatMulAdd => matmul::matmul_add(&c),
        Op::Fused { expr } => elementwise::fused(&c, expr),
        Op::Binary(_) => elementwise::binary(&c),
        Op::Unary(f) => elementwise::unary(&c, *f),
        Op::RmsNorm { .. } | Op::LayerNorm { .. } => rows::norm(&c),
        Op::Softmax => rows::softmax(&c),
        Op::ReduceSum => rows::reduce_sum(&c),
        Op::Transpose { perm } => movement::transpose(&c, perm),
        Op::Concat { axis } => movement::concat(&c, *axis),
        Op::Slice { axis, start, end } => movement::slice(&c, *axis, *start, *end),
        Op::WriteTail => movement::write_tail(&c),
        Op::WriteRows => movement::write_rows(&c),
        Op::Gather => movement::gather(&c),
        Op::Rope { .. } => attention::rope(&c),
        Op::Attention { .. } => attention::attention(&c),
        Op::PooledAttention { .. } => attention::pooled_attention(&c),
        Op::TopK { k } => routing::top_k(&c, *k),
        Op::Route { k, mode, renorm } => routing::route(&c, *k, *mode, *renorm),
        Op::Moe { .. } => moe::moe(&c),
        Op::GroupedMatMul => moe::grouped_matmul(&c),
        Op::AllReduce { .. } | Op::AllReduceStart { .. } | Op::AllReduceWait | Op::Cache { .. } => {
            single(c.ty(0).dtype, c.ty(0).shape.clone())
        }
    }
}

/// The op must accept `operands` operands and produce `declared` results.
fn check_counts(op: &Op, operands: usize, declared: usize) -> Result<(), TypeError> {
    if !op.arity().accepts(operands) {
        return Err(TypeError::OperandCount {
            op: op.name(),
            expected: op.arity(),
            found: operands,
        });
    }
    if declared != op.num_results() {
        return Err(TypeError::ResultCount {
            op: op.name(),
            expected: op.num_results(),
            found: declared,
        });
    }
    Ok(())
}

/// The one result, of `dtype` and `shape`, of a single-result op.
fn single(dtype: DType, shape: Shape) -> Inferred {
    Ok(vec![TensorType { dtype, shape }])
}

/// Infers the result types of an op whose results follow from its operands
/// (every op but those with [`Op::result_type_is_declared`], which need
/// [`infer`] with the declared types).
pub fn infer_from_operands(
    op: &Op,
    operands: &[&TensorType],
) -> Result<Vec<TensorType>, TypeError> {
    if op.result_type_is_declared() {
        return Err(TypeError::Attr {
            op: op.name(),
            detail: "the result type must be declared".to_string(),
        });
    }
    let placeholder = TensorType {
        dtype: DType::F32,
        shape: Shape::scalar(),
    };
    infer(op, operands, &vec![placeholder; op.num_results()])
}
