//! From lowered functions to a bundle: pack weights, plan activation buffers,
//! validate every kernel with naga, and fill the manifest.

use std::collections::{HashMap, HashSet};

use seam_bundle::{
    BufferEntry, BufferRange, BufferRole, BundleWriter, CacheEntry, Collective, DimBound, Dispatch,
    EntryPoint, ExpertLayer, IoEntry, Manifest, Packing, ParamEntry, PlanStats, StateEntry,
    StateLength,
};
use seam_core::quant::{pack_rows, QuantError};
use seam_core::SizeExpr;
use seam_ir::{text, DType, EncodedWeight, Model, ParamId, Tensor, TensorType, Weights};
use thiserror::Error;

use crate::external::{ExternalError, ExternalWeights};
use crate::lower::{dims_of, Lowered, LoweredExperts, Source, TensorId};
use crate::plan::{plan_buffers, TensorUse};

/// Why a bundle could not be assembled.
#[derive(Debug, Error)]
pub enum EmitError {
    /// A generated kernel failed naga validation (a compiler bug).
    #[error("kernel failed validation: {0}")]
    Invalid(#[from] seam_shaders::ShaderError),
    /// A weight is missing, has the wrong type, or lacks the encoding its
    /// packing needs.
    #[error("weight `{0}` is missing, not f32, or not encoded in the format its kernel reads")]
    Weight(String),
    /// Repacking a weight's blocks into row planes failed.
    #[error("weight `{name}`: {source}")]
    Pack {
        /// The param.
        name: String,
        /// What failed.
        source: QuantError,
    },
    /// An external weight could not be referenced.
    #[error(transparent)]
    External(#[from] ExternalError),
    /// A size is not computable at the dims' bounds.
    #[error("size of `{name}` cannot be computed at the bounds: {reason}")]
    Size {
        /// The tensor.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Swaps the last two dims of a row-major `[.., rows, cols]` tensor's values.
pub fn transpose_last2(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for (b, chunk) in values.chunks(rows * cols).enumerate() {
        for i in 0..rows {
            for j in 0..cols {
                out[b * rows * cols + j * rows + i] = chunk[i * cols + j];
            }
        }
    }
    out
}

/// The little-endian bytes of a parameter packed as asked, with the dtype and
/// shape they are stored as: f32 values as they are or transposed, or the
/// param's encoded blocks repacked into row planes (`u32[rows, row_words]`).
fn pack(
    name: &str,
    tensor: &Tensor,
    encoding: Option<&EncodedWeight>,
    ty: &TensorType,
    packing: Packing,
) -> Result<(Vec<u8>, DType, Vec<u64>), EmitError> {
    let mut shape = ty.shape.static_sizes().unwrap_or_default();
    let values = match packing {
        Packing::AsIs => tensor.to_f32_vec(),
        Packing::TransposedLast2 => {
            let r = tensor.shape.len();
            shape.swap(r - 1, r - 2);
            transpose_last2(
                &tensor.to_f32_vec(),
                tensor.shape[r - 2],
                tensor.shape[r - 1],
            )
        }
        Packing::Rows(format) => {
            let e = encoding
                .filter(|e| e.format == format)
                .ok_or_else(|| EmitError::Weight(name.into()))?;
            let words =
                pack_rows(format, &e.bytes, e.rows, e.k).map_err(|source| EmitError::Pack {
                    name: name.into(),
                    source,
                })?;
            let row_words = format.row_words(e.k).unwrap_or(0);
            let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            return Ok((bytes, DType::U32, vec![e.rows, row_words]));
        }
    };
    let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    Ok((bytes, DType::F32, shape))
}

/// Assembles a bundle from a model, its lowered functions and its weights;
/// with `external`, weights found byte for byte in a checkpoint file are
/// referenced rather than copied.
pub fn build_bundle(
    model: &Model,
    lowered: &[Lowered],
    weights: &Weights,
    opt_level: u8,
    external: Option<&mut ExternalWeights>,
) -> Result<BundleWriter, EmitError> {
    let manifest = Manifest {
        dims: model
            .dims
            .iter()
            .map(|d| DimBound {
                name: d.name.clone(),
                max: d.max,
            })
            .collect(),
        stats: PlanStats {
            opt_level,
            ..PlanStats::default()
        },
        source_ir: Some(text::print(model)),
        ..Manifest::new(model.name.clone(), env!("CARGO_PKG_VERSION"))
    };
    let mut assembler = Assembler {
        model,
        weights,
        external,
        w: BundleWriter::new(manifest),
        weight_buffers: HashMap::new(),
        buffer_of_weight: HashMap::new(),
        validated: HashSet::new(),
    };
    let mut peak = 0;
    for l in lowered {
        peak += assembler.add_entry_point(l)?;
    }
    let mut w = assembler.w;
    w.manifest.stats.peak_activation_bytes = peak;
    w.manifest.stats.weight_bytes = w.manifest.weights.iter().map(|x| x.bytes).sum();
    Ok(w)
}

/// The bundle under construction and what its entry points share.
struct Assembler<'a> {
    model: &'a Model,
    weights: &'a Weights,
    external: Option<&'a mut ExternalWeights>,
    w: BundleWriter,
    /// One buffer per packed param, shared by every entry point.
    weight_buffers: HashMap<(ParamId, Packing), u32>,
    /// The buffer holding each weight: params whose packed bytes are identical
    /// share one weight, and so one device buffer.
    buffer_of_weight: HashMap<u32, u32>,
    /// Kernel sources already validated by naga.
    validated: HashSet<String>,
}

impl Assembler<'_> {
    fn size_at_bounds(&self, e: &SizeExpr, name: &str) -> Result<u64, EmitError> {
        e.eval(&|d| self.model.dim(d).map(|b| b.max))
            .map_err(|e| EmitError::Size {
                name: name.to_string(),
                reason: e.to_string(),
            })
    }

    /// Adds one lowered function; returns its peak activation bytes.
    fn add_entry_point(&mut self, l: &Lowered) -> Result<u64, EmitError> {
        let mut buffer_of: HashMap<TensorId, u32> = HashMap::new();
        for (i, t) in l.tensors.iter().enumerate() {
            if let Source::Param(p, packing) = &t.source {
                buffer_of.insert(TensorId(i), self.weight_buffer(*p, *packing)?);
            }
        }
        let states = self.state_buffers(l, &mut buffer_of)?;
        let caches = self.cache_buffers(l, &mut buffer_of)?;
        let peak = self.activation_buffers(l, &mut buffer_of)?;
        let dispatches = self.dispatches(l, &buffer_of, &caches)?;
        let expert_layers = l
            .expert_layers
            .iter()
            .map(|x| self.expert_layer(x, &buffer_of))
            .collect();
        let io = |(t, ty): &(TensorId, TensorType)| IoEntry {
            name: l.tensors[t.0].name.clone(),
            dtype: ty.dtype,
            shape: dims_of(ty),
            buffer: buffer_of[t],
        };
        self.w.manifest.entry_points.push(EntryPoint {
            name: l.name.clone(),
            inputs: l.inputs.iter().map(io).collect(),
            outputs: l.outputs.iter().map(io).collect(),
            dispatches,
            states,
            state_length: l.state_use.as_ref().map(|(dim, advance)| StateLength {
                dim: dim.clone(),
                advance: advance.clone(),
            }),
            expert_layers,
            collectives: l
                .collectives
                .iter()
                .map(|c| Collective {
                    name: c.name.clone(),
                    buffer: buffer_of[&c.tensor],
                    elements: c.elements.clone(),
                    start: c.start as u32,
                    wait: c.wait.unwrap_or(l.steps.len()) as u32,
                })
                .collect(),
        });
        Ok(peak)
    }

    /// The manifest record of a lowered MoE layer.
    fn expert_layer(&self, x: &LoweredExperts, buffer_of: &HashMap<TensorId, u32>) -> ExpertLayer {
        let weight_of = |t: &TensorId| match self.w.manifest.buffers[buffer_of[t] as usize].role {
            BufferRole::Weight(w) => Some(w),
            _ => None,
        };
        ExpertLayer {
            name: x.name.clone(),
            experts: x.experts,
            block_rows: x.block_rows,
            ids: buffer_of[&x.ids],
            pairs: x.pairs.clone(),
            ids_ready: x.ids_ready.map(|s| s as u32),
            plan: x.plan as u32,
            block_expert: buffer_of[&x.block_expert],
            blocks: x.blocks.clone(),
            experts_end: x.experts_end as u32,
            stacks: x.stacks.iter().filter_map(weight_of).collect(),
        }
    }

    /// The buffer of param `p` packed as `packing`, added with its weight on
    /// first use (referenced in a checkpoint file where `external` allows).
    fn weight_buffer(&mut self, p: ParamId, packing: Packing) -> Result<u32, EmitError> {
        if let Some(&b) = self.weight_buffers.get(&(p, packing)) {
            return Ok(b);
        }
        let decl = self.model.param(p);
        let tensor = self
            .weights
            .get(p)
            .filter(|t| t.dtype == DType::F32)
            .ok_or_else(|| EmitError::Weight(decl.name.clone()))?;
        let (bytes, dtype, shape) = pack(
            &decl.name,
            tensor,
            self.weights.encoding(p),
            &decl.ty,
            packing,
        )?;
        let w = &mut self.w;
        let linked = match self.external.as_deref_mut() {
            Some(x) => x.link(w, &decl.name, dtype, shape.clone(), packing, &bytes)?,
            None => None,
        };
        let wi = match linked {
            Some(wi) => wi,
            None => w.add_weight(&decl.name, dtype, shape, &bytes),
        };
        w.manifest.params.push(ParamEntry {
            name: decl.name.clone(),
            weight: wi,
            packing,
        });
        let b = match self.buffer_of_weight.get(&wi) {
            Some(&b) => b,
            None => {
                w.manifest.buffers.push(BufferEntry {
                    name: decl.name.clone(),
                    bytes: SizeExpr::Const(bytes.len() as u64),
                    role: BufferRole::Weight(wi),
                });
                let b = w.manifest.buffers.len() as u32 - 1;
                self.buffer_of_weight.insert(wi, b);
                b
            }
        };
        self.weight_buffers.insert((p, packing), b);
        Ok(b)
    }

    /// One buffer per state name, shared by every entry point naming it;
    /// returns the entry point's state indices.
    fn state_buffers(
        &mut self,
        l: &Lowered,
        buffer_of: &mut HashMap<TensorId, u32>,
    ) -> Result<Vec<u32>, EmitError> {
        let mut entry_states = Vec::new();
        for (name, t, ty) in &l.states {
            let existing = self.w.manifest.states.iter().position(|s| s.name == *name);
            let si = match existing {
                Some(si) => si,
                None => {
                    let bytes = self.size_at_bounds(&l.tensors[t.0].bytes(), name)?;
                    let m = &mut self.w.manifest;
                    m.buffers.push(BufferEntry {
                        name: name.clone(),
                        bytes: SizeExpr::Const(bytes),
                        role: BufferRole::State,
                    });
                    m.states.push(StateEntry {
                        name: name.clone(),
                        dtype: ty.dtype,
                        shape: dims_of(ty),
                        buffer: m.buffers.len() as u32 - 1,
                    });
                    m.states.len() - 1
                }
            };
            buffer_of.insert(*t, self.w.manifest.states[si].buffer);
            entry_states.push(si as u32);
        }
        Ok(entry_states)
    }

    /// One buffer per cache key, shared by every entry point naming it;
    /// returns the manifest cache of each of the function's caches.
    fn cache_buffers(
        &mut self,
        l: &Lowered,
        buffer_of: &mut HashMap<TensorId, u32>,
    ) -> Result<Vec<u32>, EmitError> {
        let mut indices = Vec::new();
        for c in &l.caches {
            let existing = self.w.manifest.caches.iter().position(|e| e.key == c.key);
            let ci = match existing {
                Some(ci) => ci,
                None => {
                    let bytes = self.size_at_bounds(&l.tensors[c.tensor.0].bytes(), &c.key)?;
                    let m = &mut self.w.manifest;
                    m.buffers.push(BufferEntry {
                        name: format!("cache.{}", c.key),
                        bytes: SizeExpr::Const(bytes),
                        role: BufferRole::Cache,
                    });
                    m.caches.push(CacheEntry {
                        key: c.key.clone(),
                        dtype: c.ty.dtype,
                        shape: dims_of(&c.ty),
                        buffer: m.buffers.len() as u32 - 1,
                        refresh: c.refresh,
                    });
                    m.caches.len() - 1
                }
            };
            buffer_of.insert(c.tensor, self.w.manifest.caches[ci].buffer);
            indices.push(ci as u32);
        }
        Ok(indices)
    }

    /// Plans the activations (everything not a param or a state) into shared
    /// buffers by lifetime; returns the plan's total bytes.
    fn activation_buffers(
        &mut self,
        l: &Lowered,
        buffer_of: &mut HashMap<TensorId, u32>,
    ) -> Result<u64, EmitError> {
        let activations: Vec<usize> = (0..l.tensors.len())
            .filter(|&i| {
                !matches!(l.tensors[i].source, Source::Param(..))
                    && !buffer_of.contains_key(&TensorId(i))
            })
            .collect();
        let uses = activations
            .iter()
            .map(|&i| self.tensor_use(l, TensorId(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = plan_buffers(&uses, l.steps.len());
        let base = self.w.manifest.buffers.len() as u32;
        for (b, bytes) in plan.buffer_bytes.iter().enumerate() {
            self.w.manifest.buffers.push(BufferEntry {
                name: format!("{}.act{b}", l.name),
                bytes: SizeExpr::Const(*bytes),
                role: BufferRole::Activation,
            });
        }
        for (k, &i) in activations.iter().enumerate() {
            buffer_of.insert(TensorId(i), base + plan.buffer_of[k] as u32);
        }
        Ok(plan.total_bytes())
    }

    /// When activation `id` is first written and last read, and its size.
    fn tensor_use(&self, l: &Lowered, id: TensorId) -> Result<TensorUse, EmitError> {
        let t = &l.tensors[id.0];
        let bytes = self.size_at_bounds(&t.bytes(), &t.name)?;
        let first_write = l.steps.iter().position(|s| s.writes.contains(&id));
        let last_read = l
            .steps
            .iter()
            .rposition(|s| s.args.iter().any(|a| a.tensor == id) && !s.writes.contains(&id));
        let mut last_read = match (first_write, last_read) {
            (Some(fw), Some(lr)) => Some(lr.max(fw)),
            (_, lr) => lr,
        };
        // A runtime may run an MoE layer's expert steps again (one pass per
        // group of resident experts): whatever they use stays alive across
        // all of them, so no step among them overwrites another's input.
        for x in &l.expert_layers {
            let steps = &l.steps[x.plan + 1..x.experts_end];
            if steps.iter().any(|s| s.args.iter().any(|a| a.tensor == id)) {
                last_read = last_read.max(Some(x.experts_end - 1));
            }
        }
        Ok(TensorUse {
            bytes,
            first_write,
            last_read,
            is_output: l.outputs.iter().any(|(o, _)| *o == id),
        })
    }

    /// Every step as a dispatch of its (naga-validated, deduplicated) kernel.
    fn dispatches(
        &mut self,
        l: &Lowered,
        buffer_of: &HashMap<TensorId, u32>,
        caches: &[u32],
    ) -> Result<Vec<Dispatch>, EmitError> {
        let mut dispatches = Vec::new();
        for s in &l.steps {
            if self.validated.insert(s.kernel.wgsl.clone()) {
                seam_shaders::validate(&s.kernel)?;
            }
            dispatches.push(Dispatch {
                kernel: self.w.add_kernel(&s.kernel),
                buffers: s
                    .args
                    .iter()
                    .map(|a| BufferRange {
                        buffer: buffer_of[&a.tensor],
                        offset: a.offset,
                        size: a.size,
                    })
                    .collect(),
                sizes: s.sizes.clone(),
                cache: s.cache.map(|c| caches[c]),
            });
        }
        Ok(dispatches)
    }
}
