//! # seam-ir
//!
//! Seam's typed tensor IR, the middle of the pipeline
//! (`parse → verify → optimize → lower → plan → bundle → run`):
//!
//! - [`shape`]: shapes mixing static and bounded symbolic dims (element types,
//!   [`DType`], and the element-wise functions, [`UnaryFn`]/[`BinaryFn`], come
//!   from `seam-core`);
//! - [`op`]: the op set, including the decoupled-architecture ops `route` and `moe`;
//! - [`model`]: the SSA graph (model → functions → instructions);
//! - [`infer`], [`verify`](mod@verify): shape/dtype inference and the verifier;
//! - [`state`]: session state (KV caches): functions whose `state` inputs and
//!   outputs persist between calls, appended to by `write_tail`, or pools of
//!   per-sequence slots written by `write_rows`;
//! - [`text`]: the text format (parser with line/column diagnostics, printer; exact round trip);
//! - [`eval`]: the reference CPU evaluator, the oracle for every kernel and rewrite
//!   ([`eval::StateSession`] runs functions with states call after call);
//! - [`expand`]: the dense expansion that defines `moe`;
//! - [`weights`]: weights for the evaluator and seeded random weights, shared by
//!   `seam eval` and `seam compile`;
//! - [`npy`]: reading and writing tensors as NumPy `.npy` files;
//! - [`index_bounds()`]: the valid range of id inputs that index a table.

pub mod encoded;
pub mod eval;
pub mod expand;
pub mod fused;
pub mod index_bounds;
pub mod infer;
pub mod model;
pub mod npy;
pub mod op;
pub mod shape;
pub mod state;
pub mod text;
pub mod verify;
pub mod weights;

#[cfg(test)]
mod testutil;

pub use encoded::{EncodedWeight, EncodingError};
pub use eval::{
    evaluate, evaluate_ranks, CacheSession, CollectiveError, EvalError, Tensor, TensorData,
    TensorError,
};
pub use expand::{expand_all_moe, expand_moe, ExpandError};
pub use fused::{FusedExpr, FusedParseError};
pub use index_bounds::index_bounds;
pub use model::{
    DimDecl, Function, Instr, Model, Operand, ParamDecl, ParamId, StateBinding, Value, ValueId,
};
pub use npy::{read_npy, write_npy, NpyError};
pub use op::{AttrValue, BinaryFn, GatedAct, Op, ReduceOp, RouteMode, UnaryFn};
pub use seam_core::{DType, WeightFormat};
pub use shape::{Dim, Shape, TensorType};
pub use state::{set_max_length, state_use, StateUse};
pub use verify::{verify, Location, VerifyError, VerifyErrorKind};
pub use weights::{random_tensor, random_tensor_in, random_weights, Weights, WeightsError};
