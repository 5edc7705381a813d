//! A DiT block with adaLN-Zero modulation: non-causal self-attention and a
//! GELU MLP, each on a layer-normed input shifted and scaled by the condition,
//! its output scaled by a gate from the condition before the residual add.

use seam_ir::{Dim, ParamId, ValueId};

use super::{Built, Linear};
use crate::builder::{BuildError, FunctionBuilder};

/// The parameters of one block; `d` below is the model width.
#[derive(Copy, Clone, Debug)]
pub(crate) struct AdaLnBlock {
    /// Attention heads (each `d / heads` wide).
    pub heads: u64,
    /// Modulation `[d, 6d]` with bias `[6d]`: shift, scale and gate of the
    /// attention, then of the MLP.
    pub modulation: Linear,
    /// LayerNorm weight and bias `[d]` before the attention.
    pub attn_norm: (ParamId, ParamId),
    /// q, k, v and output projections `[d, d]`.
    pub qkvo: [Linear; 4],
    /// LayerNorm weight and bias `[d]` before the MLP.
    pub mlp_norm: (ParamId, ParamId),
    /// MLP up `[d, f]` and down `[f, d]`, with biases.
    pub mlp: [Linear; 2],
}

/// LayerNorm epsilon of every block.
pub(crate) const ADA_LN_EPS: f32 = 1e-6;

/// `x·(1 + scale) + shift`, written `x + x·scale + shift`.
pub(crate) fn modulate(
    f: &mut FunctionBuilder<'_>,
    name: &str,
    x: ValueId,
    shift: ValueId,
    scale: ValueId,
) -> Built {
    let scaled = f.mul(&format!("{name}.scaled"), x, scale)?;
    let x = f.add(&format!("{name}.plus"), x, scaled)?;
    f.add(name, x, shift)
}

/// The `n` chunks of width `d` of `m[rows, n·d]`, in order.
pub(crate) fn chunks(
    f: &mut FunctionBuilder<'_>,
    name: &str,
    m: ValueId,
    d: u64,
    names: &[&str],
) -> Result<Vec<ValueId>, BuildError> {
    names
        .iter()
        .enumerate()
        .map(|(i, part)| {
            f.slice(
                &format!("{name}.{part}"),
                m,
                1,
                i as u64 * d,
                (i as u64 + 1) * d,
            )
        })
        .collect()
}

impl AdaLnBlock {
    /// Emits the block on `x[T, d]` under condition `c` (`[1, d]` shared by
    /// every token, or `[T, d]` per token); values named `{p}.…`.
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        p: &str,
        x: ValueId,
        c: ValueId,
        tokens: u64,
        d: u64,
    ) -> Built {
        let act = f.silu(&format!("{p}.cond"), c)?;
        let m = self.modulation.emit(f, &format!("{p}.mod"), act)?;
        let names = [
            "shift_a", "scale_a", "gate_a", "shift_m", "scale_m", "gate_m",
        ];
        let parts = chunks(f, p, m, d, &names)?;
        let n = |s: &str| format!("{p}.{s}");

        let (w, b) = self.attn_norm;
        let h = f.layer_norm(&n("attn_norm"), x, w, b, ADA_LN_EPS)?;
        let h = modulate(f, &n("attn_in"), h, parts[0], parts[1])?;
        let heads = [
            Dim::Static(tokens),
            Dim::Static(self.heads),
            Dim::Static(d / self.heads),
        ];
        let mut qkv = Vec::new();
        for (proj, s) in self.qkvo[..3].iter().zip(["q", "k", "v"]) {
            let y = proj.emit(f, &n(s), h)?;
            qkv.push(
                f.reshape(&n(&format!("{s}.heads")), y, heads.to_vec())?
                    .into(),
            );
        }
        let qkv: [_; 3] = qkv.try_into().expect("three projections");
        let a = f.attention(&n("attn"), qkv, false, None)?;
        let a = f.reshape(
            &n("attn.flat"),
            a,
            vec![Dim::Static(tokens), Dim::Static(d)],
        )?;
        let a = self.qkvo[3].emit(f, &n("o"), a)?;
        let a = f.mul(&n("attn.gated"), a, parts[2])?;
        let x = f.add(&n("attn.res"), x, a)?;

        let (w, b) = self.mlp_norm;
        let h = f.layer_norm(&n("mlp_norm"), x, w, b, ADA_LN_EPS)?;
        let h = modulate(f, &n("mlp_in"), h, parts[3], parts[4])?;
        let h = self.mlp[0].emit(f, &n("up"), h)?;
        let h = f.gelu(&n("act"), h)?;
        let h = self.mlp[1].emit(f, &n("down"), h)?;
        let h = f.mul(&n("mlp.gated"), h, parts[5])?;
        f.add(&n("mlp.res"), x, h)
    }
}
