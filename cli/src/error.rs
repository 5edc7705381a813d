//! Errors of the command line, and how they are shown.

use std::io::IsTerminal;

use seam_ir::eval::EvalError;
use thiserror::Error;

use seam_compiler::load::LoadError;

/// Why a command failed.
#[derive(Debug, Error)]
pub enum CliError {
    /// The model could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A Hugging Face checkpoint could not be imported.
    #[error(transparent)]
    Import(#[from] seam_frontends::hf::HfError),
    /// A GGUF file could not be imported.
    #[error(transparent)]
    Gguf(#[from] seam_frontends::gguf::GgufError),
    /// Evaluation failed.
    #[error("evaluation failed: {0}")]
    Eval(#[from] EvalError),
    /// Compilation failed.
    #[error("compilation failed: {0}")]
    Compile(#[from] seam_compiler::compile::CompileError),
    /// A bundle could not be loaded or run.
    #[error(transparent)]
    Run(#[from] seam_runtime::Error),
    /// A kernel could not be emitted.
    #[error(transparent)]
    Shader(#[from] seam_shaders::ShaderError),
    /// A tensor (an input, an output, a weight) has an inconsistent shape or data.
    #[error(transparent)]
    Tensor(#[from] seam_ir::TensorError),
    /// Weights do not fit the model.
    #[error(transparent)]
    Weights(#[from] seam_ir::WeightsError),
    /// A safetensors weight file could not be read.
    #[error(transparent)]
    WeightFile(#[from] seam_frontends::safetensors_weights::WeightFileError),
    /// A size in a bundle could not be evaluated.
    #[error(transparent)]
    Size(#[from] seam_core::SizeExprError),
    /// An expert-access trace could not be read.
    #[error(transparent)]
    Trace(#[from] crate::experts::trace::TraceError),
    /// An expert cache could not be made or used.
    #[error(transparent)]
    Cache(#[from] seam_runtime::experts::CacheError),
    /// A model could not be sharded over tensor-parallel ranks.
    #[error("tensor-parallel sharding failed: {0}")]
    Shard(#[from] seam_compiler::shard::ShardError),
    /// A shard set does not compute what its model does.
    #[error("the shard set over {ranks} ranks differs from the model in `{function}` by {diff:e} relative (more than {tolerance:e})")]
    ShardMismatch {
        /// The ranks.
        ranks: usize,
        /// The function.
        function: String,
        /// The largest relative difference.
        diff: f32,
        /// The most allowed.
        tolerance: f32,
    },
    /// Input data (tokens, `.npy` inputs) is unusable.
    #[error("{0}")]
    Input(String),
    /// A tokenizer could not be read, parsed or applied.
    #[error("tokenizer {origin}: {reason}")]
    Tokenizer {
        /// Where it came from: a file, or the bundle that embeds it.
        origin: String,
        /// Why.
        reason: String,
    },
    /// An output could not be written.
    #[error("cannot write `{path}`: {reason}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The arguments do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A sampling schedule is unusable, or a sampling step failed.
    #[error(transparent)]
    Flow(#[from] seam_core::flow::FlowError),
}

impl CliError {
    /// The process exit code: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Flow(_) => 2,
            _ => 1,
        }
    }

    /// The error as shown on stderr: rustc-style source excerpts for model errors.
    pub fn render(&self) -> String {
        match self {
            CliError::Load(LoadError::Invalid(d)) => d.render(std::io::stderr().is_terminal()),
            other => format!("error: {other}"),
        }
    }
}
