//! Errors of the builder API.

use seam_ir::infer::TypeError;
use seam_ir::VerifyError;
use thiserror::Error;

/// Why a builder call failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BuildError {
    /// The instruction's operand types do not fit the op.
    #[error("cannot build `%{value}`: {error}")]
    Type {
        /// The (first) result name of the instruction.
        value: String,
        /// What does not fit.
        error: TypeError,
    },
    /// A value name is already used in this function.
    #[error("value `%{0}` is already defined in this function")]
    DuplicateValue(String),
    /// The wrong number of result names was given.
    #[error("`{op}` produces {expected} result(s), {found} name(s) given")]
    ResultNames {
        /// The op.
        op: &'static str,
        /// Results it produces.
        expected: usize,
        /// Names given.
        found: usize,
    },
    /// A Mixture-of-Transformers model declared with no modality.
    #[error("a Mixture-of-Transformers model needs at least one modality")]
    NoModalities,
    /// A MoE layer has neither an in-layer router nor a decoupled decision.
    #[error("layer {0} has no routing decision")]
    MissingRouting(usize),
    /// Writing MoE layers as per-expert dense blocks failed.
    #[error("expanding the MoE layers: {0}")]
    Expand(Box<seam_ir::ExpandError>),
    /// `append_state` on a value that is not a state input, or twice on one.
    #[error("`%{0}` is not a state input of this function, or was appended to already")]
    NotAState(String),
    /// The finished model does not verify.
    #[error("model does not verify: {0}")]
    Verify(VerifyError),
}
