//! A small dense transformer written for tensor parallelism: an `all_reduce`
//! after every attention and MLP module, in the standard or the Ladder Residual
//! form (arXiv 2501.06589, DESIGN.md §3). On one device `all_reduce` is the
//! identity.
//!
//! Standard: `x_k = x_{k-1} + AR(h_k(x_{k-1}))`. Ladder: each module reads a
//! residual that does not yet hold the previous module's output, which is still
//! being reduced: per layer `x += pa; pa = AR(attn(x)); x += pm; pm = AR(mlp(x))`
//! with `pa`, `pm` the previous layer's pending sums, and both added after the
//! last layer. The two forms compute different functions; a model is ladder
//! because it is written that way.

use seam_ir::{DType, Model, ParamId, TensorType, ValueId};

use super::blocks::{f32_param, AttentionParams, AttentionShape, GatedFfnParams};
use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};

/// Shape and residual form of a tensor-parallel dense transformer.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorParallelConfig {
    /// Model name.
    pub name: String,
    /// Number of layers.
    pub layers: usize,
    /// Hidden size.
    pub d_model: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads.
    pub kv_heads: u64,
    /// SwiGLU hidden size.
    pub ffn: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Upper bound of the `tokens` dim.
    pub max_tokens: u64,
    /// Ladder Residual (`true`) or the standard residual.
    pub ladder: bool,
}

/// The ladder example (`examples/ladder_residual.seam`): 3 layers, d=128,
/// 4 query / 2 kv heads, SwiGLU of 256, vocab 512.
pub fn ladder_residual() -> TensorParallelConfig {
    TensorParallelConfig {
        name: "ladder_residual".into(),
        layers: 3,
        d_model: 128,
        heads: 4,
        kv_heads: 2,
        ffn: 256,
        vocab: 512,
        max_tokens: 2048,
        ladder: true,
    }
}

/// Parameters of one layer.
struct Layer {
    attn: AttentionParams,
    mlp_norm: ParamId,
    mlp: GatedFfnParams,
}

const EPS: f32 = 1e-5;

impl TensorParallelConfig {
    /// Builds the model: one function `forward(%ids: i32[tokens]) -> f32[tokens, vocab]`.
    pub fn build(&self) -> Result<Model, BuildError> {
        let mut m = ModelBuilder::new(&self.name);
        let tokens = m.dim("tokens", self.max_tokens);
        let d = self.d_model;
        let embed = f32_param(&mut m, "embed", &[self.vocab, d]);
        let shape = AttentionShape {
            d_model: d,
            heads: self.heads,
            kv_heads: self.kv_heads,
            rope_theta: 10000.0,
            eps: EPS,
        };
        let layers: Vec<Layer> = (0..self.layers)
            .map(|l| {
                let p = format!("layers.{l}");
                Layer {
                    attn: AttentionParams::declare(&mut m, &p, shape),
                    mlp_norm: f32_param(&mut m, &format!("{p}.mlp_norm"), &[d]),
                    mlp: GatedFfnParams::declare_dense(&mut m, &format!("{p}.mlp"), d, self.ffn),
                }
            })
            .collect();
        let norm = f32_param(&mut m, "norm", &[d]);
        let lm_head = f32_param(&mut m, "lm_head", &[d, self.vocab]);

        let mut f = m.function("forward");
        let ids = f.input("ids", TensorType::new(DType::I32, [tokens.clone()]));
        let pos = f.iota("pos", 0, TensorType::new(DType::I32, [tokens.clone()]))?;
        let mut x = f.gather("x", embed, ids)?;
        // The previous layer's reduced attention and MLP outputs (ladder only).
        let (mut pa, mut pm): (Option<ValueId>, Option<ValueId>) = (None, None);
        for (l, p) in layers.iter().enumerate() {
            let n = |s: &str| format!("l{l}.{s}");
            if let Some(prev) = pa.take() {
                x = f.add(&n("attn_prev_res"), x, prev)?;
            }
            let a = p
                .attn
                .emit_output(&mut f, &format!("l{l}"), &tokens, x, pos, None)?;
            let a = f.all_reduce(&n("attn_reduced"), a)?;
            if self.ladder {
                pa = Some(a);
            } else {
                x = f.add(&n("attn_res"), x, a)?;
            }
            if let Some(prev) = pm.take() {
                x = f.add(&n("mlp_prev_res"), x, prev)?;
            }
            let h = f.rms_norm(&n("mlp_in"), x, p.mlp_norm, EPS)?;
            let y = p.mlp.emit_swiglu(&mut f, &n("mlp"), h)?;
            let y = f.all_reduce(&n("mlp_reduced"), y)?;
            if self.ladder {
                pm = Some(y);
            } else {
                x = f.add(&n("mlp_res"), x, y)?;
            }
        }
        x = finish_ladder(&mut f, x, pa, pm)?;
        let h = f.rms_norm("final_norm", x, norm, EPS)?;
        let logits = f.matmul("logits", h, lm_head)?;
        f.finish(&[logits]);
        m.finish()
    }
}

/// Adds the last layer's pending sums (ladder) to the residual.
fn finish_ladder(
    f: &mut FunctionBuilder<'_>,
    mut x: ValueId,
    pa: Option<ValueId>,
    pm: Option<ValueId>,
) -> Result<ValueId, BuildError> {
    if let Some(a) = pa {
        x = f.add("attn_last_res", x, a)?;
    }
    if let Some(m) = pm {
        x = f.add("mlp_last_res", x, m)?;
    }
    Ok(x)
}
