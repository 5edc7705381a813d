//! Example model families, built from a configuration with the builder API.
//!
//! The files `examples/*.seam` in the repository are these models printed in the
//! text format (with comments added); a test checks that parsing each file gives
//! exactly the model built here.

mod ddt;
mod ladder;
mod moe_transformer;
mod mot;
mod params;

pub use ddt::{ddt_tiny, DdtConfig};
pub use ladder::{ladder_residual, TensorParallelConfig};
pub use moe_transformer::{
    adamoe, mixtral_tiny, pregated_dense, pregated_topk, readme_moe, MoeTransformerConfig,
    RouterConfig, Routing, EXAMPLE_MAX_BATCH,
};
pub use mot::{mot, mot_dense, mot_masked, MotConfig, MotForm};
