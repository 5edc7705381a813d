//! One pre-norm decoder layer: attention, then the MLP, each on the normalised
//! residual stream and added back to it.

use seam_ir::ValueId;

use super::{add_residual, pre_norm, Attention, Built, Decision, KvCache, Mlp, RmsNorm, Tokens};
use crate::builder::FunctionBuilder;

/// The parameters of one decoder layer and the names it emits under.
#[derive(Clone, Debug)]
pub(crate) struct DecoderLayer {
    /// The prefix of its values and cache states (`l{index}`, or `router`).
    pub prefix: String,
    /// Its index in the stack (reported when its routing decision is missing).
    pub index: usize,
    /// The norm before attention.
    pub attn_norm: RmsNorm,
    /// The attention block.
    pub attn: Attention,
    /// The norm before the MLP.
    pub mlp_norm: RmsNorm,
    /// The MLP.
    pub mlp: Mlp,
}

impl DecoderLayer {
    /// Emits `x += attn(norm(x)); x += mlp(norm(x))`: `decision` feeds a
    /// pre-gated MLP, `cache` the attention.
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        tokens: Tokens<'_>,
        x: ValueId,
        decision: Option<Decision>,
        cache: Option<KvCache>,
    ) -> Built {
        let p = &self.prefix;
        let a = pre_norm(f, p, "attn", &self.attn_norm, x, |f, h| {
            self.attn.emit(f, p, tokens, h, cache)
        })?;
        let x = add_residual(f, p, "attn", x, a)?;
        let y = pre_norm(f, p, "mlp", &self.mlp_norm, x, |f, h| {
            self.mlp.emit(f, p, self.index, h, decision)
        })?;
        add_residual(f, p, "mlp", x, y)
    }
}
