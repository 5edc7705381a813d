//! [`WeightPolicy`]: which format each kind of product weight is stored in.

use seam_core::WeightFormat;
use seam_shaders::chunk_elems;

use super::roles::ParamRole;

/// The storage format asked for each role of product weight. `None` keeps a
/// weight as it came: in the format of its encoded blocks (a GGUF file's
/// tensors), else `f32`.
///
/// Defaults follow llama.cpp's mixes: with a 4-bit format the LM head is kept
/// at `q8_0` (llama.cpp keeps it at 6 bits), and routers stay `f32` (they are
/// small and make discrete choices). Embedding tables, norms and biases are
/// never product weights and stay `f32`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightPolicy {
    /// Every other product weight (attention and FFN projections).
    pub linear: Option<WeightFormat>,
    /// The LM head.
    pub lm_head: Option<WeightFormat>,
    /// Router (gate) weights.
    pub router: Option<WeightFormat>,
    /// The expert stacks of `moe` ops (the three stacks of one `moe` share a
    /// format: see [`expert_format`]).
    pub expert: Option<WeightFormat>,
}

impl WeightPolicy {
    /// The policy for `seam compile --weights FORMAT` with the default LM head
    /// and router formats.
    pub fn uniform(format: WeightFormat) -> Self {
        let lm_head = match format {
            WeightFormat::Q4_0 | WeightFormat::Q4_1 | WeightFormat::Q4K => WeightFormat::Q8_0,
            f => f,
        };
        WeightPolicy {
            linear: Some(format),
            lm_head: Some(lm_head),
            router: Some(WeightFormat::F32),
            expert: Some(format),
        }
    }

    /// The format asked for a weight of `role` (`None`: keep it as it came).
    pub fn asked(&self, role: ParamRole) -> Option<WeightFormat> {
        match role {
            ParamRole::Linear => self.linear,
            ParamRole::LmHead => self.lm_head,
            ParamRole::Router => self.router,
            ParamRole::Expert => self.expert,
            ParamRole::Grouped => self.linear,
            ParamRole::Other => Some(WeightFormat::F32),
        }
    }
}

/// The format a `[K, N]` weight is stored in when `asked` does not fit its
/// `K` (not a multiple of the block, or for the half formats of the 8 weights
/// the kernels decode at once): `q4_k` falls back to `q4_1` (llama.cpp falls
/// back to 5-bit blocks of 32), the 32-blocks to `f16`, `f16`/`bf16` to `f32`.
pub fn fallback(asked: WeightFormat, k: u64) -> WeightFormat {
    let fits = |f: WeightFormat| f.fits(k) && k % chunk_elems(f) as u64 == 0;
    if asked == WeightFormat::F32 || fits(asked) {
        return asked;
    }
    match asked {
        WeightFormat::Q4K if fits(WeightFormat::Q4_1) => WeightFormat::Q4_1,
        WeightFormat::Bf16 | WeightFormat::F16 => WeightFormat::F32,
        _ if fits(WeightFormat::F16) => WeightFormat::F16,
        _ => WeightFormat::F32,
    }
}

/// The format the expert stacks of `moe` ops are stored in when `asked`
/// for them: each stack's own [`fallback`] over the `K` of every stack it is
/// stored alongside (`ks`: gate and up have `K = D`, down `K = F`), so that
/// the stacks of one `moe` share a format. Later formats of the fallback
/// chain fit every `K` an earlier one fits, so one pass suffices.
pub fn expert_format(asked: WeightFormat, ks: &[u64]) -> WeightFormat {
    ks.iter().fold(asked, |f, &k| fallback(f, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_bit_keeps_the_head_at_eight_and_routers_at_f32() {
        let p = WeightPolicy::uniform(WeightFormat::Q4_0);
        assert_eq!(p.asked(ParamRole::Linear), Some(WeightFormat::Q4_0));
        assert_eq!(p.asked(ParamRole::LmHead), Some(WeightFormat::Q8_0));
        assert_eq!(p.asked(ParamRole::Router), Some(WeightFormat::F32));
        assert_eq!(p.asked(ParamRole::Expert), Some(WeightFormat::Q4_0));
        assert_eq!(
            WeightPolicy::uniform(WeightFormat::F16).lm_head,
            Some(WeightFormat::F16)
        );
        assert_eq!(WeightPolicy::default().asked(ParamRole::Linear), None);
    }

    #[test]
    fn blocks_that_do_not_fit_fall_back() {
        assert_eq!(fallback(WeightFormat::Q4K, 576), WeightFormat::Q4_1);
        assert_eq!(fallback(WeightFormat::Q4K, 512), WeightFormat::Q4K);
        assert_eq!(fallback(WeightFormat::Q4_0, 48), WeightFormat::F16);
        assert_eq!(fallback(WeightFormat::Q8_0, 24), WeightFormat::F16);
        assert_eq!(fallback(WeightFormat::Q8_0, 7), WeightFormat::F32);
        assert_eq!(fallback(WeightFormat::F16, 12), WeightFormat::F32);
    }

    #[test]
    fn the_stacks_of_one_moe_share_the_format_every_k_fits() {
        assert_eq!(
            expert_format(WeightFormat::Q4K, &[512, 768]),
            WeightFormat::Q4K
        );
        assert_eq!(
            expert_format(WeightFormat::Q4K, &[512, 96]),
            WeightFormat::Q4_1
        );
        assert_eq!(
            expert_format(WeightFormat::Q4K, &[96, 512]),
            WeightFormat::Q4_1
        );
        assert_eq!(
            expert_format(WeightFormat::Q4_0, &[64, 40]),
            WeightFormat::F16
        );
        assert_eq!(
            expert_format(WeightFormat::Q8_0, &[64, 12]),
            WeightFormat::F32
        );
    }
}
