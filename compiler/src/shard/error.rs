//! Why a model cannot be sharded.

use thiserror::Error;

use seam_ir::{EncodingError, TensorError, VerifyError, WeightsError};

/// Why [`super::shard_tensor_parallel`] refused a model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ShardError {
    /// Zero ranks were asked for.
    #[error("a shard set needs at least one rank")]
    NoRanks,
    /// More ranks than a shard set may have (each rank's weights are built
    /// in memory).
    #[error("{ranks} ranks asked for; a shard set has at most {max}")]
    TooManyRanks {
        /// The ranks asked for.
        ranks: usize,
        /// The most allowed.
        max: usize,
    },
    /// A split dimension does not divide over the ranks.
    #[error("cannot split the {size} {what} of `@{param}` over {ranks} ranks: {size} must be {need} {ranks}")]
    Indivisible {
        /// The parameter that would be split.
        param: String,
        /// What is split (`query heads`, `key/value heads`, `FFN hidden units`).
        what: &'static str,
        /// How many there are.
        size: u64,
        /// The ranks asked for.
        ranks: usize,
        /// What the size must be of the ranks (`a multiple of`).
        need: &'static str,
    },
    /// A recognised block is built in a way the pass does not split.
    #[error("`%{value}`: {detail}")]
    Unrecognised {
        /// The value at which recognition stopped.
        value: String,
        /// What was expected there.
        detail: String,
    },
    /// Two blocks split one parameter differently.
    #[error("`@{param}` would be split two different ways (it is shared by two blocks)")]
    Conflict {
        /// The parameter.
        param: String,
    },
    /// A split parameter came as format blocks (GGUF), which are not sliced.
    #[error("`@{param}` is held as {format} blocks; slicing block-format weights is not supported (import it as f32)")]
    BlockFormat {
        /// The parameter.
        param: String,
        /// Its format.
        format: String,
    },
    /// An op meets a split or partial value in a way the pass cannot carry
    /// over to the ranks exactly.
    #[error("`{op}` computing `%{value}` in `{function}`: {detail}")]
    Unsupported {
        /// The function.
        function: String,
        /// The op.
        op: &'static str,
        /// Its (first) result value.
        value: String,
        /// Why it cannot be sharded.
        detail: String,
    },
    /// A whole parameter's format blocks do not fit it (a bug of the pass).
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// A rank tensor could not be built (a bug of the pass).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// The weights do not fit the model.
    #[error("the weights do not fit the model: {0}")]
    Weights(#[from] WeightsError),
    /// The rank model does not verify: a limit of the pass.
    #[error("the rank model does not verify: {0}")]
    Verify(#[from] VerifyError),
}
