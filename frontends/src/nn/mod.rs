//! Transformer building blocks: each type holds the parameters of one block
//! and emits its instructions. The example model families and the checkpoint
//! importer both build their models from these; each declares the parameters
//! under its own names, so only the instructions are shared.

mod ada_ln_block;
mod attention;
mod decoder_layer;
mod decoder_model;
mod gated_mlp;
mod kv_cache;
mod linear;
mod mlp;
mod modality;
mod moe;
mod pregating_router;
mod residual;
mod rms_norm;
mod routing;
mod tokens;

pub(crate) use ada_ln_block::{chunks, modulate, AdaLnBlock, ADA_LN_EPS};
pub(crate) use attention::{Attention, AttentionShape, QkNorm};
pub(crate) use decoder_layer::DecoderLayer;
pub(crate) use decoder_model::{DecoderModel, StepShape};
pub(crate) use gated_mlp::GatedMlp;
pub(crate) use kv_cache::{KvCache, PoolShape};
pub(crate) use linear::{Linear, Project};
pub(crate) use mlp::Mlp;
pub(crate) use modality::{ModalityLinear, ModalityNorm, ModalitySelect};
pub(crate) use moe::{ExpertChoice, MoeMlp, SharedExpert};
pub(crate) use pregating_router::PreGatingRouter;
pub(crate) use residual::{add_residual, pre_norm};
pub(crate) use rms_norm::RmsNorm;
pub(crate) use routing::{Decision, TopK};
pub(crate) use tokens::Tokens;

use seam_ir::ValueId;

use crate::builder::BuildError;

/// Result of emitting one value.
type Built = Result<ValueId, BuildError>;
