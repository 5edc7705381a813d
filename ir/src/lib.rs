//! # seam-ir
//!
//! Seam's typed tensor IR, the middle of the pipeline
//! (`parse → verify → optimize → lower → plan → bundle → run`):
//!
//! - [`dtype`], [`shape`]: element types and shapes mixing static and bounded
//!   symbolic dims;
//! - [`op`]: the op set, including the decoupled-architecture ops `route` and `moe`;
//! - [`model`]: the SSA graph (model → functions → instructions);
//! - [`infer`], [`verify`]: shape/dtype inference and the verifier;
//! - [`text`]: the text format (parser with line/column diagnostics, printer; exact round trip);
//! - [`eval`]: the reference CPU evaluator, the oracle for every kernel and rewrite;
//! - [`expand`]: the dense expansion that defines `moe`;
//! - [`weights`]: seeded random weights, shared by `seam eval` and `seam compile`.

pub mod dtype;
pub mod infer;
pub mod model;
pub mod op;
pub mod shape;
pub mod text;
pub mod verify;

pub use dtype::DType;
pub use model::{DimDecl, Function, Instr, Model, Operand, ParamDecl, ParamId, Value, ValueId};
pub use op::{AttrValue, GatedAct, GeluApprox, Op, ReduceOp, RouteMode};
pub use shape::{Dim, Shape, TensorType};
pub use verify::{verify, Location, VerifyError, VerifyErrorKind};
