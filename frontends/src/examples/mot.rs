//! Mixture-of-Transformers (Liang et al.): a decoder-only transformer whose
//! every non-embedding parameter — the attention's q/k/v/o projections, the
//! SwiGLU FFN, the norms and the output head — exists once per modality, each
//! token using its own modality's (given as `modality: i32[tokens]`), while
//! self-attention is global: causal over the whole interleaved sequence.
//!
//! The modality mask is known before the layers run, like a pre-gating
//! router's top-1 decision with weight 1, so a per-modality projection is one
//! `grouped_matmul` for all modalities ([`MotForm::Grouped`]). The naive form
//! ([`MotForm::Masked`]) computes every modality's dense projection for all
//! tokens and selects with 0/1 masks; the optimizer's `masked-to-grouped` rule
//! turns it into the grouped one. [`MotForm::Dense`] is the ordinary dense
//! transformer of the same width (one set of weights; `modality` unread), the
//! baseline the paper compares against.

use seam_ir::{DType, Model, ParamId, TensorType, ValueId};

use super::params::f32_param;
use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};
use crate::nn::{
    add_residual, Attention, AttentionShape, GatedMlp, Linear, ModalityLinear, ModalityNorm,
    ModalitySelect, Project, RmsNorm, Tokens,
};

/// How the per-modality weights are written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MotForm {
    /// Each projection one `grouped_matmul` over the stacked `[E, in, out]`
    /// weights, by the tokens' modality ids.
    Grouped,
    /// The naive form: each modality's projection computed densely for every
    /// token from its slice of the stack, multiplied by its 0/1 mask
    /// `cast(eq(modality, e))`, and summed.
    Masked,
    /// The dense transformer of the same width: one `[in, out]` matrix per
    /// projection and one norm weight, shared by all tokens.
    Dense,
}

/// Shape of a Mixture-of-Transformers model.
#[derive(Clone, Debug, PartialEq)]
pub struct MotConfig {
    /// Model name.
    pub name: String,
    /// Number of layers.
    pub layers: usize,
    /// Hidden size.
    pub d_model: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: u64,
    /// SwiGLU hidden size.
    pub ffn: u64,
    /// The modalities, in id order (id `e` is `modalities[e]`).
    pub modalities: Vec<String>,
    /// Vocabulary size (one vocabulary shared by all modalities).
    pub vocab: u64,
    /// Upper bound of the `tokens` dim.
    pub max_tokens: u64,
    /// RoPE base.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// How the per-modality weights are written.
    pub form: MotForm,
}

/// The example (`examples/mot.seam`): 2 layers, d=256, 4 query / 2 kv heads,
/// SwiGLU of 512, vocab 1024, two modalities (text = 0, image = 1), grouped.
pub fn mot() -> MotConfig {
    MotConfig {
        name: "mot".into(),
        layers: 2,
        d_model: 256,
        heads: 4,
        kv_heads: 2,
        ffn: 512,
        modalities: vec!["text".into(), "image".into()],
        vocab: 1024,
        max_tokens: 2048,
        rope_theta: 10000.0,
        eps: 1e-5,
        form: MotForm::Grouped,
    }
}

/// The same model in the naive masked form (`examples/mot_masked.seam`).
pub fn mot_masked() -> MotConfig {
    MotConfig {
        name: "mot_masked".into(),
        form: MotForm::Masked,
        ..mot()
    }
}

/// The dense transformer of the same width (`examples/mot_dense.seam`).
pub fn mot_dense() -> MotConfig {
    MotConfig {
        name: "mot_dense".into(),
        form: MotForm::Dense,
        ..mot()
    }
}

/// One layer's weights: `[in, out]` matrices and `[d_model]` norms, each with
/// a leading modality axis unless dense.
#[derive(Copy, Clone, Debug)]
struct MotLayer {
    attn_norm: ParamId,
    wq: ParamId,
    wk: ParamId,
    wv: ParamId,
    wo: ParamId,
    mlp_norm: ParamId,
    w_gate: ParamId,
    w_up: ParamId,
    w_down: ParamId,
}

impl MotConfig {
    /// Builds the model: `forward(%ids: i32[tokens], %modality: i32[tokens])
    /// -> f32[tokens, vocab]`, each token's modality id in `0..modalities`.
    pub fn build(&self) -> Result<Model, BuildError> {
        if self.modalities.is_empty() {
            return Err(BuildError::NoModalities);
        }
        let mut m = ModelBuilder::new(&self.name);
        let tokens = m.dim("tokens", self.max_tokens);
        let d = self.d_model;
        let kv = self.kv_heads * (d / self.heads);
        let embed = f32_param(&mut m, "embed", &[self.vocab, d]);
        let layers: Vec<MotLayer> = (0..self.layers)
            .map(|l| {
                let mut p = |name: &str, dims: &[u64]| {
                    self.param(&mut m, &format!("layers.{l}.{name}"), dims)
                };
                MotLayer {
                    attn_norm: p("attn_norm", &[d]),
                    wq: p("wq", &[d, d]),
                    wk: p("wk", &[d, kv]),
                    wv: p("wv", &[d, kv]),
                    wo: p("wo", &[d, d]),
                    mlp_norm: p("mlp_norm", &[d]),
                    w_gate: p("mlp.w_gate", &[d, self.ffn]),
                    w_up: p("mlp.w_up", &[d, self.ffn]),
                    w_down: p("mlp.w_down", &[self.ffn, d]),
                }
            })
            .collect();
        let final_norm = self.param(&mut m, "norm", &[d]);
        let lm_head = self.param(&mut m, "lm_head", &[d, self.vocab]);

        let mut f = m.function("forward");
        let per_token = || TensorType::new(DType::I32, [tokens.clone()]);
        let ids = f.input("ids", per_token());
        let modality = f.input("modality", per_token());
        let pos = f.iota("pos", 0, per_token())?;
        let tokens = Tokens { rows: &tokens, pos };
        let mut x = f.gather("x", embed, ids)?;
        let logits = if self.form == MotForm::Dense {
            let eps = self.eps;
            let norm = |f: &mut FunctionBuilder<'_>, name: &str, x, weight| {
                RmsNorm { weight, eps }.emit(f, name, x)
            };
            for (l, layer) in layers.iter().enumerate() {
                x = self.layer(&mut f, l, tokens, x, layer, Linear::unbiased, norm)?;
            }
            let h = norm(&mut f, "final_norm", x, final_norm)?;
            Linear::unbiased(lm_head).project(&mut f, "logits", h)?
        } else {
            let select = ModalitySelect::emit(
                &mut f,
                modality,
                tokens.rows,
                d,
                self.modalities.len() as u64,
                self.form == MotForm::Masked,
            )?;
            let select = &select;
            let eps = self.eps;
            let norm = |f: &mut FunctionBuilder<'_>, name: &str, x, weight| {
                ModalityNorm { weight, eps }.emit(f, name, x, select)
            };
            let proj = |weight| ModalityLinear { weight, select };
            for (l, layer) in layers.iter().enumerate() {
                x = self.layer(&mut f, l, tokens, x, layer, proj, norm)?;
            }
            let h = norm(&mut f, "final_norm", x, final_norm)?;
            proj(lm_head).project(&mut f, "logits", h)?
        };
        f.finish(&[logits]);
        m.finish()
    }

    /// Declares param `name` of `dims`, with a leading modality axis unless dense.
    fn param(&self, m: &mut ModelBuilder, name: &str, dims: &[u64]) -> ParamId {
        match self.form {
            MotForm::Dense => f32_param(m, name, dims),
            MotForm::Grouped | MotForm::Masked => {
                let stacked: Vec<u64> = std::iter::once(self.modalities.len() as u64)
                    .chain(dims.iter().copied())
                    .collect();
                f32_param(m, name, &stacked)
            }
        }
    }

    /// Emits layer `l` on the residual stream `x` (values named `l{l}.*`):
    /// pre-norm causal attention over all tokens and a pre-norm SwiGLU FFN,
    /// each added back; `proj` makes the projection of a weight, `norm(f,
    /// name, x, weight)` emits a norm.
    #[allow(clippy::too_many_arguments)]
    fn layer<P: Project>(
        &self,
        f: &mut FunctionBuilder<'_>,
        l: usize,
        tokens: Tokens<'_>,
        x: ValueId,
        w: &MotLayer,
        proj: impl Fn(ParamId) -> P,
        norm: impl Fn(&mut FunctionBuilder<'_>, &str, ValueId, ParamId) -> Result<ValueId, BuildError>,
    ) -> Result<ValueId, BuildError> {
        let prefix = format!("l{l}");
        let attn = Attention {
            shape: AttentionShape {
                heads: self.heads,
                kv_heads: self.kv_heads,
                head_dim: self.d_model / self.heads,
                rope_theta: self.rope_theta,
                scale: None,
            },
            q: proj(w.wq),
            k: proj(w.wk),
            v: proj(w.wv),
            o: proj(w.wo),
            qk_norm: None,
        };
        let h = norm(f, &format!("{prefix}.attn_in"), x, w.attn_norm)?;
        let a = attn.emit(f, &prefix, tokens, h, None)?;
        let x = add_residual(f, &prefix, "attn", x, a)?;
        let mlp = GatedMlp {
            gate: proj(w.w_gate),
            up: proj(w.w_up),
            down: proj(w.w_down),
        };
        let h = norm(f, &format!("{prefix}.mlp_in"), x, w.mlp_norm)?;
        let y = mlp.emit(f, &format!("{prefix}.mlp"), h)?;
        add_residual(f, &prefix, "mlp", x, y)
    }
}
