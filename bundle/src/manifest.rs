//! The manifest: what a bundle holds and how to run it, as serde data.

use serde::{Deserialize, Serialize};

use seam_core::{DType, Kernel, SizeExpr, WeightFormat};

use crate::BundleError;

/// A symbolic dim and its upper bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimBound {
    /// Name (`tokens`).
    pub name: String,
    /// Largest size at run time.
    pub max: u64,
}

/// A weight blob: in the weights section, or a byte range of an external file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightEntry {
    /// Parameter name.
    pub name: String,
    /// Element type as stored.
    pub dtype: DType,
    /// Shape as stored (after any repacking by the compiler).
    pub shape: Vec<u64>,
    /// Byte offset within the weights section (a multiple of 64), or within
    /// the external file `file` when that is set.
    pub offset: u64,
    /// Length in bytes.
    pub bytes: u64,
    /// The external file holding the bytes (an index into
    /// [`Manifest::external_files`]); `None` for the weights section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<u32>,
}

/// A file outside the bundle that external weights are read from (a
/// checkpoint's safetensors file, IREE-style parameters), pinned by length and
/// checksum so that a changed checkpoint is refused at load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalFile {
    /// The file's path relative to the bundle's folder, `/`-separated; `..`
    /// components are allowed, absolute paths are not (see
    /// [`crate::external`]).
    pub path: String,
    /// The file's length in bytes.
    pub bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
}

/// A compute kernel: its launch description (the same [`Kernel`] the
/// generators return, its WGSL source left out) and the byte range of that
/// source in the shaders section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelEntry {
    /// How to bind and launch the kernel; `wgsl` is empty here.
    #[serde(flatten)]
    pub kernel: Kernel,
    /// Byte offset of the source within the shaders section.
    pub source_offset: u64,
    /// Source length in bytes.
    pub source_len: u64,
}

impl KernelEntry {
    /// The kernel with its WGSL source (read from the shaders section).
    pub fn with_source(&self, wgsl: &str) -> Kernel {
        Kernel {
            wgsl: wgsl.to_string(),
            ..self.kernel.clone()
        }
    }
}

/// What a device buffer holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferRole {
    /// A weight, uploaded once at load.
    Weight(u32),
    /// Activations: inputs, outputs and intermediates (possibly shared by values
    /// whose lifetimes do not overlap).
    Activation,
    /// A session state ([`StateEntry`]): zeroed when a session starts or resets,
    /// kept between runs, shared by the entry points of a session.
    State,
    /// A cache's kept value ([`CacheEntry`]): written by the runs that compute
    /// it, read by those that reuse it, shared by the entry points of a session.
    Cache,
}

/// A device buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferEntry {
    /// Name (for logs).
    pub name: String,
    /// Size in bytes as a function of the symbolic dims; allocated at their bounds.
    pub bytes: SizeExpr,
    /// What it holds.
    pub role: BufferRole,
}

/// A buffer range bound to one storage binding of a dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferRange {
    /// Buffer index.
    pub buffer: u32,
    /// Byte offset into the buffer.
    pub offset: u64,
    /// Bytes bound; `None` binds to the end of the buffer.
    pub size: Option<u64>,
}

/// One kernel dispatch of an entry point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Kernel index.
    pub kernel: u32,
    /// One range per storage binding of the kernel, in binding order.
    pub buffers: Vec<BufferRange>,
    /// Every dynamic size of the kernel, as a function of the symbolic dims.
    pub sizes: Vec<(String, SizeExpr)>,
    /// The cache (index into [`Manifest::caches`]) whose producer alone needs
    /// this dispatch: a run reusing that cache skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<u32>,
}

/// An input or output of an entry point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoEntry {
    /// Name (the IR value's name).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape; dims may be symbolic.
    pub shape: Vec<SizeExpr>,
    /// Buffer holding it.
    pub buffer: u32,
}

/// A session state: a tensor of rows along its leading (length) dim, grown by
/// each run of an entry point that uses it, allocated at the length dim's bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    /// Name (the IR state input's name, e.g. `l0.k_cache`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape: the length dim, then static dims.
    pub shape: Vec<SizeExpr>,
    /// The buffer holding it (role [`BufferRole::State`]).
    pub buffer: u32,
}

/// A value kept between the runs of a session (the IR's `cache` op): a run
/// computes it, or reuses the kept value and skips the dispatches marked with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The cache's key (`enc`).
    pub key: String,
    /// Element type.
    pub dtype: DType,
    /// Shape; dims may be symbolic.
    pub shape: Vec<SizeExpr>,
    /// The buffer holding it (role [`BufferRole::Cache`]).
    pub buffer: u32,
    /// The model's default sharing period: recompute every `refresh` runs.
    pub refresh: u32,
}

/// How a run of an entry point with states binds their length dim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateLength {
    /// The states' length dim (`kv_len`), bound to the stored length plus `advance`.
    pub dim: String,
    /// Rows one run appends, over dims bound by the inputs (`tokens`, or 1).
    pub advance: SizeExpr,
}

/// A function of the model, lowered to a list of dispatches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPoint {
    /// Function name (`forward`).
    pub name: String,
    /// Inputs in signature order.
    pub inputs: Vec<IoEntry>,
    /// Outputs in order.
    pub outputs: Vec<IoEntry>,
    /// Dispatches in execution order (one compute pass, one submit).
    pub dispatches: Vec<Dispatch>,
    /// The states it reads and appends to (indices into [`Manifest::states`]).
    #[serde(default)]
    pub states: Vec<u32>,
    /// How its runs bind the states' length dim (with `states` only).
    #[serde(default)]
    pub state_length: Option<StateLength>,
    /// Its MoE layers, in dispatch order, for a runtime that keeps experts in
    /// host memory (empty for a model without MoE, and in bundles older than
    /// the field: such a bundle runs with every expert on the device).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expert_layers: Vec<ExpertLayer>,
    /// Its reductions across tensor-parallel ranks, in dispatch order (the
    /// identity on one device, where a runtime ignores them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collectives: Vec<Collective>,
}

/// A sum across tensor-parallel ranks of a tensor the dispatches hold in a
/// buffer (the IR's `all_reduce`, or its split `all_reduce_start` /
/// `all_reduce_wait`): once dispatches `0..start` have run, the buffer holds
/// this rank's partial; dispatches from `wait` on read the sum of every
/// rank's partial in its place. Dispatches `start..wait` neither read nor
/// write it, so the reduction may overlap them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collective {
    /// The reduced value's IR name, for messages.
    pub name: String,
    /// The buffer holding it (`elements` f32 from offset 0).
    pub buffer: u32,
    /// Its f32 elements.
    pub elements: SizeExpr,
    /// The first dispatch that may run before the reduction starts.
    pub start: u32,
    /// The first dispatch that reads the reduced value.
    pub wait: u32,
}

/// One MoE layer of an entry point: where its routing is, which dispatches
/// read its expert weights, and the plan that groups its tokens into blocks.
/// A runtime that keeps only some experts on the device reads the routing
/// back, loads the experts into slots of smaller stacks and rewrites the
/// plan's block table from expert ids to slots before those dispatches run;
/// a runtime that keeps every expert ignores it.
///
/// The plan groups the `pairs` (token, choice) ids by expert in expert order,
/// each expert's pairs padded to whole blocks of `block_rows`: block `b` of
/// expert `e` is one of `ceil(count(e) / block_rows)` consecutive blocks
/// after those of experts `0..e`; `block_expert[b]` names the expert (the
/// slot, once rewritten) of block `b`, `0xffffffff` past the last block, for
/// `blocks` blocks; ids outside `0..experts` are dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpertLayer {
    /// The layer's name (the MoE result's IR name), for messages.
    pub name: String,
    /// Experts `E` of the layer.
    pub experts: u32,
    /// Rows (pairs) per block of the plan.
    pub block_rows: u32,
    /// The buffer holding the routing: `pairs` i32 expert ids from offset 0.
    pub ids: u32,
    /// The number of ids (tokens × choices per token).
    pub pairs: SizeExpr,
    /// The dispatch after which `ids` holds this run's routing; `None` when
    /// the ids are an input of the entry point.
    pub ids_ready: Option<u32>,
    /// The plan dispatch (it reads `ids` and writes `block_expert`).
    pub plan: u32,
    /// The buffer of the plan's block table (`blocks` u32 from offset 0).
    pub block_expert: u32,
    /// The number of blocks the plan and the expert dispatches cover.
    pub blocks: SizeExpr,
    /// One past the last dispatch that reads the expert weights: dispatches
    /// `plan + 1 .. experts_end` read them through `block_expert`. Every
    /// buffer they use stays theirs until the last of them, so a runtime may
    /// run them again (each block computed by one of the runs).
    pub experts_end: u32,
    /// The weights holding the layer's expert stacks (gate, up, down), each
    /// with the experts' bytes contiguous and in expert order.
    pub stacks: Vec<u32>,
}

/// Figures recorded by the compiler, shown by `seam inspect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStats {
    /// Optimization level the bundle was compiled at.
    pub opt_level: u8,
    /// Peak activation memory at the dims' bounds, in bytes.
    pub peak_activation_bytes: u64,
    /// Total weight bytes.
    pub weight_bytes: u64,
}

/// How a weight blob was derived from a model parameter.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Packing {
    /// The parameter's elements as they are.
    AsIs,
    /// The last two dims swapped (`[.., K, N]` stored as `[.., N, K]`).
    TransposedLast2,
    /// `[.., K, N]` stored as `rows = (leading dims) · N` rows of `K` weights in
    /// the format's row-plane layout ([`seam_core::quant`]); the weight entry
    /// is `u32[rows, row_words(K)]`.
    Rows(WeightFormat),
}

/// Where a model parameter lives in the bundle (for tools that re-run the
/// model on the CPU, such as `seam run --check-reference`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamEntry {
    /// Parameter name.
    pub name: String,
    /// The weight holding it.
    pub weight: u32,
    /// How the weight was packed from it.
    pub packing: Packing,
}

/// Everything about a bundle except the shader and weight bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Model name.
    pub model: String,
    /// Version of the compiler that wrote it.
    pub compiler_version: String,
    /// Symbolic dims with bounds.
    pub dims: Vec<DimBound>,
    /// Weights in the weights section.
    pub weights: Vec<WeightEntry>,
    /// Kernels in the shaders section.
    pub kernels: Vec<KernelEntry>,
    /// Device buffers.
    pub buffers: Vec<BufferEntry>,
    /// Entry points.
    pub entry_points: Vec<EntryPoint>,
    /// Compiler figures.
    pub stats: PlanStats,
    /// The model in Seam's text format, for reference checks (not needed to run).
    pub source_ir: Option<String>,
    /// Where each parameter lives, for reference checks.
    pub params: Vec<ParamEntry>,
    /// Session states, shared by the entry points that name them.
    #[serde(default)]
    pub states: Vec<StateEntry>,
    /// Files outside the bundle holding external weights (absent in bundles
    /// without any, which stay readable by format-1 runtimes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_files: Vec<ExternalFile>,
    /// Values kept between runs (absent in bundles without any, which stay
    /// readable by older runtimes; format version 3 otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<CacheEntry>,
    /// Which rank of which shard set this bundle is (absent in a bundle for
    /// one device; format version 4 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardEntry>,
}

/// A rank's bundle of a shard set (`seam compile --tensor-parallel N`): its
/// weights are this rank's slices, and its reductions
/// ([`EntryPoint::collectives`]) must sum across the set's ranks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// This bundle's rank, `0..ranks`.
    pub rank: u32,
    /// The ranks of the set.
    pub ranks: u32,
    /// The set's identity, the same in every rank's bundle (a checksum of
    /// the rank model and of every rank's weights): ranks of different
    /// compiles disagree on it.
    pub set: u32,
}

impl Manifest {
    /// A manifest for model `model` written by `compiler_version`, with nothing
    /// in it yet (no dims, kernels, weights, buffers or entry points).
    pub fn new(model: impl Into<String>, compiler_version: impl Into<String>) -> Self {
        Manifest {
            model: model.into(),
            compiler_version: compiler_version.into(),
            dims: Vec::new(),
            weights: Vec::new(),
            kernels: Vec::new(),
            buffers: Vec::new(),
            entry_points: Vec::new(),
            stats: PlanStats::default(),
            source_ir: None,
            params: Vec::new(),
            states: Vec::new(),
            external_files: Vec::new(),
            caches: Vec::new(),
            shard: None,
        }
    }

    /// Checks internal consistency against the sizes of the shader and weight
    /// sections: every index in range, every byte range inside its section,
    /// every size computable at the dims' bounds.
    pub fn validate(&self, shaders_len: u64, weights_len: u64) -> Result<(), BundleError> {
        crate::validate::Validator {
            m: self,
            shaders_len,
            weights_len,
        }
        .run()
    }
}
