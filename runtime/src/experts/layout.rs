//! [`OffloadLayout`]: which weights of a bundle are expert stacks kept in host
//! memory, grouped into the cache's layers, checked against every dispatch
//! that binds them.

use seam_bundle::{BufferRole, Bundle, Manifest};

use super::ExpertOffload;
use crate::error::Error;

/// One expert stack kept in host memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostStack {
    /// Its weight (index into the manifest's weights).
    pub weight: usize,
    /// The bytes of one expert (the stack's bytes over its experts).
    pub expert_bytes: u64,
}

/// One cache layer: an MoE layer's stacks, shared by every entry point that
/// runs the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OffloadedLayer {
    /// The layer's name (its first record's).
    pub name: String,
    /// Its experts.
    pub experts: u32,
    /// Its stacks.
    pub stacks: Vec<HostStack>,
}

/// A model's offloaded experts: the layout and the bundle whose bytes hold
/// the stacks (kept as read: the experts are never copied on the host).
pub(crate) struct HostExperts {
    /// Which stacks are offloaded, in which cache layers.
    pub layout: OffloadLayout,
    /// The bundle the stacks' bytes are read from.
    pub bundle: Bundle,
}

/// The expert stacks a model keeps in host memory and the cache layers they
/// form; a layer with no more experts than the device keeps is not offloaded.
#[derive(Clone, Debug)]
pub(crate) struct OffloadLayout {
    /// The options asked for.
    pub options: ExpertOffload,
    /// The cache layers, in order of first appearance.
    pub layers: Vec<OffloadedLayer>,
    /// Per entry point, per expert record: its cache layer (`None`: kept whole
    /// on the device).
    pub layer_of: Vec<Vec<Option<usize>>>,
    /// Per weight: the cache layer and stack holding it, if offloaded.
    pub stack_of: Vec<Option<(usize, usize)>>,
}

impl OffloadLayout {
    /// The layout of `manifest`'s expert records under `options`, `None` when
    /// no MoE layer has more experts than the device keeps (all stay
    /// resident); refuses a bundle without MoE layers and one whose stacks
    /// cannot be offloaded (read outside their layer's expert dispatches, or
    /// bound in parts).
    pub(crate) fn new(manifest: &Manifest, options: ExpertOffload) -> Result<Option<Self>, Error> {
        if options.resident == 0 {
            return Err(Error::Experts(
                "at least 1 expert per layer must stay resident".into(),
            ));
        }
        let mut layout = OffloadLayout {
            options,
            layers: Vec::new(),
            layer_of: Vec::new(),
            stack_of: vec![None; manifest.weights.len()],
        };
        for ep in &manifest.entry_points {
            let mut of_entry = Vec::new();
            for record in &ep.expert_layers {
                of_entry.push(layout.add(manifest, record)?);
            }
            layout.layer_of.push(of_entry);
        }
        if manifest
            .entry_points
            .iter()
            .all(|e| e.expert_layers.is_empty())
        {
            return Err(Error::Experts(format!(
                "model `{}` has no MoE layer (a bundle compiled before MoE layers were \
                 recorded must be recompiled)",
                manifest.model
            )));
        }
        if layout.layers.is_empty() {
            tracing::info!(
                resident = options.resident,
                "no MoE layer has more experts than stay resident: all on the device"
            );
            return Ok(None);
        }
        layout.check_bindings(manifest)?;
        Ok(Some(layout))
    }

    /// The cache layer of `record`, added on first sight.
    fn add(
        &mut self,
        manifest: &Manifest,
        record: &seam_bundle::ExpertLayer,
    ) -> Result<Option<usize>, Error> {
        if record.experts <= self.options.resident {
            return Ok(None);
        }
        let weights: Vec<usize> = record.stacks.iter().map(|&w| w as usize).collect();
        if let Some(i) = self.layers.iter().position(|l| {
            l.stacks
                .iter()
                .map(|s| s.weight)
                .eq(weights.iter().copied())
        }) {
            return Ok(Some(i));
        }
        let layer = self.layers.len();
        let mut stacks = Vec::new();
        for (k, &w) in weights.iter().enumerate() {
            if self.stack_of[w].is_some() {
                return Err(Error::Experts(format!(
                    "weight `{}` is an expert stack of two MoE layers",
                    manifest.weights[w].name
                )));
            }
            let expert_bytes = manifest.weights[w].bytes / u64::from(record.experts);
            if expert_bytes % 4 != 0 {
                return Err(Error::Experts(format!(
                    "an expert of stack `{}` is {expert_bytes} bytes, not whole 32-bit words",
                    manifest.weights[w].name
                )));
            }
            self.stack_of[w] = Some((layer, k));
            stacks.push(HostStack {
                weight: w,
                expert_bytes,
            });
        }
        self.layers.push(OffloadedLayer {
            name: record.name.clone(),
            experts: record.experts,
            stacks,
        });
        Ok(Some(layer))
    }

    /// Checks that every dispatch binding an offloaded stack is one of the
    /// expert dispatches of a record of its layer and binds it whole.
    fn check_bindings(&self, manifest: &Manifest) -> Result<(), Error> {
        for (e, ep) in manifest.entry_points.iter().enumerate() {
            for (di, d) in ep.dispatches.iter().enumerate() {
                for r in &d.buffers {
                    let BufferRole::Weight(w) = manifest.buffers[r.buffer as usize].role else {
                        continue;
                    };
                    let Some((layer, _)) = self.stack_of[w as usize] else {
                        continue;
                    };
                    let name = &manifest.weights[w as usize].name;
                    let inside = ep
                        .expert_layers
                        .iter()
                        .zip(&self.layer_of[e])
                        .any(|(x, l)| {
                            *l == Some(layer)
                                && (x.plan as usize) < di
                                && di < x.experts_end as usize
                        });
                    if !inside {
                        return Err(Error::Experts(format!(
                            "`{}` dispatch {di} reads expert stack `{name}` outside its MoE layer",
                            ep.name
                        )));
                    }
                    let whole = r.offset == 0
                        && r.size
                            .is_none_or(|s| s == manifest.weights[w as usize].bytes);
                    if !whole {
                        return Err(Error::Experts(format!(
                            "expert stack `{name}` is bound in parts (it exceeds one storage binding); \
                             keeping only some experts resident needs stacks bound whole"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Slots per offloaded layer.
    pub(crate) fn slots(&self) -> usize {
        self.options.resident as usize
    }
}
