//! A bundle loaded on a device, shared by handles.

use std::fmt;
use std::sync::Arc;

use crate::device::{Gpu, GpuBuffer, KernelPipeline};
use crate::entry::Entry;
use crate::error::Error;
use crate::experts::{ExpertOffload, HostExperts};
use crate::session::Session;
use seam_bundle::Manifest;

/// What loading a bundle put on the device; shared by a [`Model`]'s clones,
/// its [`Entry`] handles and its sessions.
pub(crate) struct LoadedModel {
    pub(crate) gpu: Arc<Gpu>,
    pub(crate) manifest: Manifest,
    pub(crate) pipelines: Vec<KernelPipeline>,
    pub(crate) weights: Vec<GpuBuffer>,
    /// The experts kept in host memory, when loaded with [`ModelOptions::experts`].
    pub(crate) offload: Option<HostExperts>,
}

/// How [`crate::Runtime::load_bundle_with`] loads a bundle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// Keep only some experts of each MoE layer on the device (`None`: all).
    pub experts: Option<ExpertOffload>,
    /// Refuse to load a bundle whose weights would take more than this many
    /// bytes of device memory (the device's share for this model): one too
    /// large is kept partly in host memory ([`ModelOptions::experts`]) or
    /// sharded over several devices (a shard set).
    pub weight_budget: Option<u64>,
}

impl LoadedModel {
    /// The index of entry point `name`, or an error listing those there are.
    pub(crate) fn entry_index(&self, name: &str) -> Result<usize, Error> {
        let entries = &self.manifest.entry_points;
        entries
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| Error::UnknownEntry {
                name: name.to_string(),
                available: entries
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The bound (largest size) of symbolic dim `name`.
    pub(crate) fn dim_bound(&self, name: &str) -> Option<u64> {
        self.manifest
            .dims
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.max)
    }
}

/// A bundle loaded on a device: its compiled kernels and its weights.
/// [`Model::entry`] looks an entry point up, [`Model::session`] creates a
/// session that runs them.
///
/// A cheap handle: cloning it shares the loaded bundle (the weights stay on
/// the device until the last clone, entry point and session are dropped).
/// Thread safety: `Send + Sync`; share one model between threads and give each
/// thread its own [`Session`].
#[derive(Clone)]
pub struct Model {
    pub(crate) loaded: Arc<LoadedModel>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("model", &self.loaded.manifest.model)
            .field("adapter", self.loaded.gpu.adapter())
            .finish()
    }
}

impl Model {
    pub(crate) fn new(loaded: LoadedModel) -> Model {
        Model {
            loaded: Arc::new(loaded),
        }
    }

    /// The bundle's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.loaded.manifest
    }

    /// Entry point `name` (`forward`, `prefill`, `decode`), looked up once and
    /// then run with [`Session::run`] on any session of this model.
    pub fn entry(&self, name: &str) -> Result<Entry, Error> {
        let index = self.loaded.entry_index(name)?;
        Ok(Entry::new(self.clone(), index))
    }

    /// A new session: the model's session states (KV caches), zeroed, and
    /// room for activation buffers, allocated at the symbolic dims' bounds
    /// when an entry point that uses them first runs.
    pub fn session(&self) -> Result<Session, Error> {
        Session::new(self.clone())
    }

    /// The experts this model keeps on the device, when it keeps only some.
    pub fn expert_offload(&self) -> Option<ExpertOffload> {
        self.loaded.offload.as_ref().map(|h| h.layout.options)
    }

    /// Whether `other` is a handle to the same loaded bundle.
    pub(crate) fn same_as(&self, other: &Model) -> bool {
        Arc::ptr_eq(&self.loaded, &other.loaded)
    }
}
