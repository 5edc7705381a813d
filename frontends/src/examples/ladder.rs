//! A small dense transformer written for tensor parallelism: an `all_reduce`
//! after every attention and MLP module, in the standard or the Ladder Residual
//! form (Ladder Residual, arXiv 2501.06589). On one device `all_reduce` is the
//! identity.
//!
//! Standard: `x_k = x_{k-1} + AR(h_k(x_{k-1}))`. Ladder: each module reads a
//! residual that does not yet hold the previous module's output, which is still
//! being reduced: per layer `x += pa; pa = AR(attn(x)); x += pm; pm = AR(mlp(x))`
//! with `pa`, `pm` the previous layer's pending sums, and both added after the
//! last layer. The two forms compute different functions; a model is ladder
//! because it is written that way.

use seam_ir::{DType, Model, TensorType, ValueId};

use super::params::{declare_gated_mlp, declare_layer, declare_norm, f32_param, LayerShape};
use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};
use crate::nn::{add_residual, pre_norm, DecoderLayer, Mlp, RmsNorm, Tokens};

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

/// The RMSNorm epsilon of every norm.
const EPS: f32 = 1e-5;

impl TensorParallelConfig {
    /// Builds the model: one function `forward(%ids: i32[tokens]) -> f32[tokens, vocab]`.
    pub fn build(&self) -> Result<Model, BuildError> {
        let mut m = ModelBuilder::new(&self.name);
        let tokens = m.dim("tokens", self.max_tokens);
        let d = self.d_model;
        let embed = f32_param(&mut m, "embed", &[self.vocab, d]);
        let shape = LayerShape {
            d_model: d,
            heads: self.heads,
            kv_heads: self.kv_heads,
            rope_theta: 10000.0,
            eps: EPS,
        };
        let layers: Vec<DecoderLayer> = (0..self.layers)
            .map(|l| {
                let p = format!("layers.{l}");
                declare_layer(&mut m, &p, format!("l{l}"), l, shape, |m| {
                    Mlp::Dense(declare_gated_mlp(m, &format!("{p}.mlp"), d, self.ffn))
                })
            })
            .collect();
        let norm = declare_norm(&mut m, "norm", d, EPS);
        let lm_head = f32_param(&mut m, "lm_head", &[d, self.vocab]);

        let mut f = m.function("forward");
        let ids = f.input("ids", TensorType::new(DType::I32, [tokens.clone()]));
        let pos = f.iota("pos", 0, TensorType::new(DType::I32, [tokens.clone()]))?;
        let tokens = Tokens { rows: &tokens, pos };
        let mut x = f.gather("x", embed, ids)?;
        let mut attn = ReducedModule::new("attn", self.ladder);
        let mut mlp = ReducedModule::new("mlp", self.ladder);
        for layer in &layers {
            let pre = &layer.prefix;
            x = attn.emit(&mut f, pre, &layer.attn_norm, x, |f, h| {
                layer.attn.emit(f, pre, tokens, h, None)
            })?;
            x = mlp.emit(&mut f, pre, &layer.mlp_norm, x, |f, h| {
                layer.mlp.emit(f, pre, layer.index, h, None)
            })?;
        }
        x = attn.finish(&mut f, x)?;
        x = mlp.finish(&mut f, x)?;
        let h = norm.emit(&mut f, "final_norm", x)?;
        let logits = f.matmul("logits", h, lm_head)?;
        f.finish(&[logits]);
        m.finish()
    }
}

/// One kind of module (attention or MLP) of every layer, its output reduced
/// across devices and added to the residual stream: at once in the standard
/// form, one layer later in the ladder form.
struct ReducedModule<'a> {
    /// `attn` or `mlp`: the stem of the values' names.
    name: &'a str,
    /// Ladder Residual (`true`) or the standard residual.
    ladder: bool,
    /// The previous layer's reduced output, not yet added (ladder only).
    pending: Option<ValueId>,
}

impl<'a> ReducedModule<'a> {
    fn new(name: &'a str, ladder: bool) -> Self {
        ReducedModule {
            name,
            ladder,
            pending: None,
        }
    }

    /// Emits this module of layer `pre` on the residual stream `x`: adds the
    /// pending output (`{pre}.{name}_prev_res`), reduces `module(rms_norm(x))`
    /// (`{pre}.{name}_reduced`), then adds it (`{pre}.{name}_res`) or leaves
    /// it pending; returns the residual stream.
    fn emit(
        &mut self,
        f: &mut FunctionBuilder<'_>,
        pre: &str,
        norm: &RmsNorm,
        mut x: ValueId,
        module: impl FnOnce(&mut FunctionBuilder<'_>, ValueId) -> Result<ValueId, BuildError>,
    ) -> Result<ValueId, BuildError> {
        let name = self.name;
        if let Some(prev) = self.pending.take() {
            x = f.add(&format!("{pre}.{name}_prev_res"), x, prev)?;
        }
        let y = pre_norm(f, pre, name, norm, x, module)?;
        let y = f.all_reduce(&format!("{pre}.{name}_reduced"), y)?;
        if self.ladder {
            self.pending = Some(y);
            Ok(x)
        } else {
            add_residual(f, pre, name, x, y)
        }
    }

    /// Adds the last layer's pending output (`{name}_last_res`), if any.
    fn finish(self, f: &mut FunctionBuilder<'_>, x: ValueId) -> Result<ValueId, BuildError> {
        match self.pending {
            Some(y) => f.add(&format!("{}_last_res", self.name), x, y),
            None => Ok(x),
        }
    }
}
