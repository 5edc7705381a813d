//! # seam-frontends
//!
//! Ways into Seam's IR:
//! - [`builder`]: the Rust builder API, producing exactly the IR the text format does;
//! - [`examples`]: the example model families (Read-ME-style pre-gated MoE,
//!   Mixtral-style in-layer routing, and the general pre-gated top-k form) built
//!   from a configuration;
//! - [`hf`]: the Hugging Face `config.json` + safetensors importer;
//! - [`gguf`]: the GGUF (llama.cpp) importer, built on the Hugging Face one,
//!   and its tokenizer conversion.
//!
//! The example families and the importer build their models from the same
//! transformer blocks (the crate-private `nn` module).

pub mod builder;
pub mod examples;
pub mod gguf;
pub mod hf;
mod nn;
pub mod safetensors_weights;
