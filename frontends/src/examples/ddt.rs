//! A small Decoupled Diffusion Transformer (DDT, Wang et al.): a DiT-style
//! condition encoder computes the self-condition `z` from the noisy latent,
//! the timestep and the class; a lighter velocity decoder predicts the flow
//! velocity from the latent, modulated token by token by `z` plus the
//! timestep/class condition. `z` goes through `cache`, so a sampler can share
//! it between adjacent denoising steps and skip the encoder.
//!
//! `forward(x: f32[C, H, W], t: f32[1], label: i32[1]) -> v: f32[C, H, W]`:
//! patchify is a reshape, a transpose and a matmul (`p×p` patches), the
//! timestep embedding an MLP of `t`, every block adaLN-Zero modulated
//! ([`crate::nn::AdaLnBlock`]).

use seam_ir::{DType, Dim, Model, ParamId, TensorType, ValueId};

use super::params::f32_param;
use crate::builder::{BuildError, FunctionBuilder, ModelBuilder};
use crate::nn::{chunks, modulate, AdaLnBlock, Linear, ADA_LN_EPS};

/// Shape of a DDT model.
#[derive(Clone, Debug, PartialEq)]
pub struct DdtConfig {
    /// Model name.
    pub name: String,
    /// Latent channels.
    pub channels: u64,
    /// Latent height and width.
    pub size: u64,
    /// Patch side.
    pub patch: u64,
    /// Width.
    pub d_model: u64,
    /// Attention heads.
    pub heads: u64,
    /// MLP hidden size.
    pub mlp: u64,
    /// Condition-encoder blocks.
    pub encoder_layers: usize,
    /// Velocity-decoder blocks.
    pub decoder_layers: usize,
    /// Class labels.
    pub classes: u64,
    /// The default sharing period written on the `cache` op.
    pub share_every: u32,
}

/// The `examples/ddt.seam` model: a 4×8×8 latent in 2×2 patches (16 tokens),
/// width 64, 4 heads, 4 encoder and 2 decoder blocks, 10 classes.
pub fn ddt_tiny() -> DdtConfig {
    DdtConfig {
        name: "ddt".into(),
        channels: 4,
        size: 8,
        patch: 2,
        d_model: 64,
        heads: 4,
        mlp: 256,
        encoder_layers: 4,
        decoder_layers: 2,
        classes: 10,
        share_every: 2,
    }
}

/// `[a, b, …]` as static dims.
fn dims(d: &[u64]) -> Vec<Dim> {
    d.iter().map(|&n| Dim::Static(n)).collect()
}

/// A biased linear `{p}.w [i, o]`, `{p}.b [o]`.
fn linear(m: &mut ModelBuilder, p: &str, i: u64, o: u64) -> Linear {
    Linear {
        weight: f32_param(m, &format!("{p}.w"), &[i, o]),
        bias: Some(f32_param(m, &format!("{p}.b"), &[o])),
    }
}

/// LayerNorm weight and bias `{p}.w`, `{p}.b` of width `d`.
fn norm(m: &mut ModelBuilder, p: &str, d: u64) -> (ParamId, ParamId) {
    (
        f32_param(m, &format!("{p}.w"), &[d]),
        f32_param(m, &format!("{p}.b"), &[d]),
    )
}

/// The params of one stack: patch embedding, positions and blocks.
struct Stack {
    embed: Linear,
    pos: ParamId,
    blocks: Vec<AdaLnBlock>,
}

impl DdtConfig {
    fn tokens(&self) -> u64 {
        (self.size / self.patch).pow(2)
    }

    fn patch_dim(&self) -> u64 {
        self.channels * self.patch * self.patch
    }

    fn declare_stack(&self, m: &mut ModelBuilder, p: &str, layers: usize) -> Stack {
        let d = self.d_model;
        let blocks = (0..layers)
            .map(|i| {
                let b = format!("{p}.{i}");
                let sq = |m: &mut ModelBuilder, s: &str| linear(m, &format!("{b}.{s}"), d, d);
                AdaLnBlock {
                    heads: self.heads,
                    modulation: linear(m, &format!("{b}.mod"), d, 6 * d),
                    attn_norm: norm(m, &format!("{b}.attn_norm"), d),
                    qkvo: [sq(m, "q"), sq(m, "k"), sq(m, "v"), sq(m, "o")],
                    mlp_norm: norm(m, &format!("{b}.mlp_norm"), d),
                    mlp: [
                        linear(m, &format!("{b}.up"), d, self.mlp),
                        linear(m, &format!("{b}.down"), self.mlp, d),
                    ],
                }
            })
            .collect();
        Stack {
            embed: linear(m, &format!("{p}.patch"), self.patch_dim(), d),
            pos: f32_param(m, &format!("{p}.pos"), &[self.tokens(), d]),
            blocks,
        }
    }

    /// The latent `x[C, H, W]` as `[T, C·p·p]` patch rows.
    fn patchify(&self, f: &mut FunctionBuilder<'_>, x: ValueId) -> Result<ValueId, BuildError> {
        let (c, p, g) = (self.channels, self.patch, self.size / self.patch);
        let x = f.reshape("patches.split", x, dims(&[c, g, p, g, p]))?;
        let x = f.transpose("patches.grid", x, vec![1, 3, 0, 2, 4])?;
        f.reshape("patches", x, dims(&[self.tokens(), self.patch_dim()]))
    }

    /// `[T, C·p·p]` patch rows back to the latent `[C, H, W]`.
    fn unpatchify(&self, f: &mut FunctionBuilder<'_>, y: ValueId) -> Result<ValueId, BuildError> {
        let (c, p, g) = (self.channels, self.patch, self.size / self.patch);
        let y = f.reshape("v.grid", y, dims(&[g, g, c, p, p]))?;
        let y = f.transpose("v.split", y, vec![2, 0, 3, 1, 4])?;
        f.reshape("v", y, dims(&[c, self.size, self.size]))
    }

    /// Embeds the patches and runs the stack's blocks under condition `c`.
    fn run_stack(
        &self,
        f: &mut FunctionBuilder<'_>,
        p: &str,
        s: &Stack,
        patches: ValueId,
        c: ValueId,
    ) -> Result<ValueId, BuildError> {
        let h = s.embed.emit(f, &format!("{p}.embed"), patches)?;
        let mut h = f.add(&format!("{p}.h"), h, s.pos)?;
        for (i, block) in s.blocks.iter().enumerate() {
            h = block.emit(f, &format!("{p}.{i}"), h, c, self.tokens(), self.d_model)?;
        }
        Ok(h)
    }

    /// Builds the model (parameters declared in a fixed order, so the same
    /// config always gives the same model).
    pub fn build(&self) -> Result<Model, BuildError> {
        let d = self.d_model;
        let mut m = ModelBuilder::new(self.name.clone());
        let t_mlp = [
            linear(&mut m, "t_embed.0", 1, d),
            linear(&mut m, "t_embed.1", d, d),
        ];
        let classes = f32_param(&mut m, "class_embed", &[self.classes, d]);
        let encoder = self.declare_stack(&mut m, "enc", self.encoder_layers);
        let decoder = self.declare_stack(&mut m, "dec", self.decoder_layers);
        let final_mod = linear(&mut m, "final.mod", d, 2 * d);
        let final_norm = norm(&mut m, "final.norm", d);
        let out = linear(&mut m, "final.out", d, self.patch_dim());

        let mut f = m.function("forward");
        let x = f.input(
            "x",
            TensorType::new(DType::F32, [self.channels, self.size, self.size]),
        );
        let t = f.input("t", TensorType::new(DType::F32, [1u64]));
        let label = f.input("label", TensorType::new(DType::I32, [1u64]));
        let patches = self.patchify(&mut f, x)?;

        let t = f.reshape("t.col", t, dims(&[1, 1]))?;
        let te = t_mlp[0].emit(&mut f, "t_embed.0", t)?;
        let te = f.silu("t_embed.act", te)?;
        let te = t_mlp[1].emit(&mut f, "t_embed", te)?;
        let ce = f.gather("class_embed", classes, label)?;
        let c = f.add("cond", te, ce)?;

        let z = self.run_stack(&mut f, "enc", &encoder, patches, c)?;
        let z = f.cache("z", z, "enc", self.share_every)?;
        let zc = f.add("dec.cond", z, c)?;
        let h = self.run_stack(&mut f, "dec", &decoder, patches, zc)?;

        let act = f.silu("final.cond", zc)?;
        let fm = final_mod.emit(&mut f, "final.mod", act)?;
        let parts = chunks(&mut f, "final", fm, d, &["shift", "scale"])?;
        let h = f.layer_norm("final.norm", h, final_norm.0, final_norm.1, ADA_LN_EPS)?;
        let h = modulate(&mut f, "final.in", h, parts[0], parts[1])?;
        let y = out.emit(&mut f, "final.out", h)?;
        let v = self.unpatchify(&mut f, y)?;
        f.finish(&[v]);
        m.finish()
    }
}
