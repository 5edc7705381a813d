//! How the example models name and shape their parameters.

use seam_ir::{DType, ParamId, TensorType};

use crate::builder::ModelBuilder;
use crate::nn::{Attention, AttentionShape, DecoderLayer, GatedMlp, Linear, Mlp, RmsNorm};

/// Declares an f32 param.
pub(super) fn f32_param(m: &mut ModelBuilder, name: &str, dims: &[u64]) -> ParamId {
    m.param(name, TensorType::new(DType::F32, dims.iter().copied()))
}

/// Declares the RMSNorm weight `name` `[width]`.
pub(super) fn declare_norm(m: &mut ModelBuilder, name: &str, width: u64, eps: f32) -> RmsNorm {
    RmsNorm {
        weight: f32_param(m, name, &[width]),
        eps,
    }
}

/// The shape of an example decoder layer's attention: heads of
/// `d_model / heads`, the `attention` op's default scale.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) struct LayerShape {
    /// Hidden size.
    pub d_model: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads.
    pub kv_heads: u64,
    /// RoPE base.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub eps: f32,
}

impl LayerShape {
    fn attention(&self) -> AttentionShape {
        AttentionShape {
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.d_model / self.heads,
            rope_theta: self.rope_theta,
            scale: None,
        }
    }
}

/// Declares layer `index` (its values named `prefix`), its params named under
/// `params`: `{params}.attn_norm`, `.wq`, `.wk`, `.wv`, `.wo`, `.mlp_norm`,
/// then the MLP's from `declare_mlp`.
pub(super) fn declare_layer(
    m: &mut ModelBuilder,
    params: &str,
    prefix: String,
    index: usize,
    shape: LayerShape,
    declare_mlp: impl FnOnce(&mut ModelBuilder) -> Mlp,
) -> DecoderLayer {
    let n = |suffix: &str| format!("{params}.{suffix}");
    let attn_shape = shape.attention();
    let d = shape.d_model;
    let kv = attn_shape.kv_heads * attn_shape.head_dim;
    let attn_norm = declare_norm(m, &n("attn_norm"), d, shape.eps);
    let mut linear = |name: &str, dims: &[u64]| Linear::unbiased(f32_param(m, &n(name), dims));
    let attn = Attention {
        shape: attn_shape,
        q: linear("wq", &[d, d]),
        k: linear("wk", &[d, kv]),
        v: linear("wv", &[d, kv]),
        o: linear("wo", &[d, d]),
        qk_norm: None,
    };
    let mlp_norm = declare_norm(m, &n("mlp_norm"), d, shape.eps);
    DecoderLayer {
        prefix,
        index,
        attn_norm,
        attn,
        mlp_norm,
        mlp: declare_mlp(m),
    }
}

/// Declares `{prefix}.w_gate`, `{prefix}.w_up` `[..stack, d, ffn]` and
/// `{prefix}.w_down` `[..stack, ffn, d]` (`stack` is `[experts]` for stacked
/// expert weights, empty for one MLP).
pub(super) fn declare_gated_weights(
    m: &mut ModelBuilder,
    prefix: &str,
    stack: &[u64],
    d: u64,
    ffn: u64,
) -> [ParamId; 3] {
    let dims = |tail: [u64; 2]| [stack, &tail].concat();
    [
        f32_param(m, &format!("{prefix}.w_gate"), &dims([d, ffn])),
        f32_param(m, &format!("{prefix}.w_up"), &dims([d, ffn])),
        f32_param(m, &format!("{prefix}.w_down"), &dims([ffn, d])),
    ]
}

/// Declares a SwiGLU MLP's weights ([`declare_gated_weights`], no biases).
pub(super) fn declare_gated_mlp(m: &mut ModelBuilder, prefix: &str, d: u64, ffn: u64) -> GatedMlp {
    let [gate, up, down] = declare_gated_weights(m, prefix, &[], d, ffn).map(Linear::unbiased);
    GatedMlp { gate, up, down }
}
