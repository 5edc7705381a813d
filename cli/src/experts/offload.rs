//! `--resident-experts`, `--cache-policy` and `--prefetch-window` on the
//! commands that run a bundle, and the line reporting what the expert slots did.

use clap::Args;
use seam_runtime::bundle::Bundle;
use seam_runtime::experts::{ExpertOffload, ExpertStats, Lookahead, PolicyKind};
use seam_runtime::{Model, ModelOptions, Runtime};

use crate::CliError;

/// How many experts of each MoE layer stay on the device.
#[derive(Debug, Args, Clone)]
pub struct ExpertArgs {
    /// Keep at most N experts of each MoE layer on the device; the full expert
    /// weights stay in host memory and the experts a step's routing needs are
    /// uploaded into slots (outputs are bit for bit the all-resident ones).
    /// A pre-gating router's routing is known for every layer before the
    /// first one runs, so the cache sees the step's future; an in-layer router
    /// only its own layer's. Default: every expert resident.
    #[arg(long, value_name = "N")]
    pub resident_experts: Option<u32>,
    /// Which resident expert a load evicts (with --resident-experts): `lru`;
    /// `belady`, the one whose next use in the known routing is farthest;
    /// `lookahead`, belady plus prefetch of the known routing's experts.
    #[arg(long, value_name = "POLICY", default_value = "lookahead")]
    pub cache_policy: PolicyKind,
    /// How many upcoming expert accesses `lookahead` prefetches from.
    #[arg(long, value_name = "N", default_value_t = Lookahead::DEFAULT_WINDOW)]
    pub prefetch_window: usize,
}

impl ExpertArgs {
    /// The offload asked for, if any.
    pub fn offload(&self) -> Option<ExpertOffload> {
        self.resident_experts.map(|resident| ExpertOffload {
            resident,
            policy: self.cache_policy,
            prefetch_window: self.prefetch_window,
        })
    }

    /// Loads `bundle` on `rt` keeping the experts asked for on the device,
    /// its weights within `weight_budget` bytes of device memory.
    pub fn load(
        &self,
        rt: &Runtime,
        bundle: Bundle,
        weight_budget: Option<u64>,
    ) -> Result<Model, CliError> {
        let options = ModelOptions {
            experts: self.offload(),
            weight_budget,
        };
        Ok(rt.load_bundle_with(bundle, &options)?)
    }
}

/// One line on what the expert slots did between `before` and `after`, for
/// `tokens` tokens, or `None` when the model keeps every expert resident.
pub fn expert_report(
    model: &Model,
    before: Option<ExpertStats>,
    after: Option<ExpertStats>,
    tokens: usize,
) -> Option<String> {
    let offload = model.expert_offload()?;
    let (b, a) = (before.unwrap_or_default(), after?);
    let accesses = a.counters.accesses - b.counters.accesses;
    let hits = a.counters.hits - b.counters.hits;
    let bytes = a.bytes_uploaded - b.bytes_uploaded;
    let ratio = if accesses == 0 {
        0.0
    } else {
        hits as f64 / accesses as f64
    };
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    Some(format!(
        "experts: {} resident per layer, policy {}: accesses={accesses} hits={hits} \
         misses={} prefetches={} hit_ratio={ratio:.3} uploaded={:.2} MiB ({:.1} KiB/token) \
         stall={:.1} ms (routing reads {:.1} ms, demand uploads {:.1} ms) prefetch uploads {:.1} ms",
        offload.resident,
        offload.policy,
        a.counters.misses - b.counters.misses,
        a.counters.prefetches - b.counters.prefetches,
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / 1024.0 / tokens.max(1) as f64,
        ms(a.stall() - b.stall()),
        ms(a.routing_wait - b.routing_wait),
        ms(a.demand_upload - b.demand_upload),
        ms(a.prefetch_upload - b.prefetch_upload),
    ))
}
