//! Opening a device and loading bundles onto it: verify, compile pipelines,
//! upload weights.

use std::path::Path;
use std::sync::Arc;

use crate::device::{AdapterSummary, DeviceOptions, Gpu};
use crate::error::Error;
use crate::experts::{HostExperts, OffloadLayout};
use crate::model::{LoadedModel, Model, ModelOptions};
use seam_bundle::{Bundle, BundleReader, LoadOptions};

/// A device ready to load bundles.
///
/// Thread safety: `Send + Sync`; bundles may be loaded from several threads
/// at once.
#[derive(Debug)]
pub struct Runtime {
    gpu: Arc<Gpu>,
}

impl Runtime {
    /// Opens a device.
    pub fn new(options: &DeviceOptions) -> Result<Runtime, Error> {
        Ok(Runtime {
            gpu: Arc::new(Gpu::new(options)?),
        })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        self.gpu.adapter()
    }

    /// The device, for tools that need its limits or run kernels themselves.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Reads, verifies and loads a bundle file (external weight files must
    /// lie inside its folder tree).
    pub fn load(&self, path: &Path) -> Result<Model, Error> {
        self.load_with(path, &LoadOptions::default())
    }

    /// [`Runtime::load`] whose external weight files may also lie inside the
    /// folders `options` allows.
    pub fn load_with(&self, path: &Path, options: &LoadOptions) -> Result<Model, Error> {
        self.load_bundle(BundleReader::open_with(path, options)?)
    }

    /// Verifies and loads a bundle from memory (one without external weights;
    /// for those, `load_bundle(BundleReader::from_bytes_in_with(bytes, folder, options))`).
    pub fn load_bytes(&self, bytes: Vec<u8>) -> Result<Model, Error> {
        self.load_bundle(BundleReader::from_bytes(bytes)?)
    }

    /// Loads a verified bundle: compiles every kernel once and uploads the weights.
    pub fn load_bundle(&self, bundle: Bundle) -> Result<Model, Error> {
        self.load_bundle_with(bundle, &ModelOptions::default())
    }

    /// [`Runtime::load_bundle`] as `options` ask: with
    /// [`ModelOptions::experts`], the expert stacks of the MoE layers with more
    /// experts than the device keeps stay in host memory (in the bundle as
    /// read) and each session uploads experts into its slots as runs need them.
    pub fn load_bundle_with(&self, bundle: Bundle, options: &ModelOptions) -> Result<Model, Error> {
        let gpu = &self.gpu;
        let manifest = bundle.manifest();
        let layout = options
            .experts
            .map(|o| OffloadLayout::new(manifest, o))
            .transpose()?
            .flatten();
        let on_host = |w: usize| layout.as_ref().is_some_and(|l| l.stack_of[w].is_some());
        let needed: u64 = (0..manifest.weights.len())
            .filter(|&w| !on_host(w))
            .map(|w| manifest.weights[w].bytes)
            .sum();
        if let Some(budget) = options.weight_budget.filter(|&b| needed > b) {
            return Err(Error::WeightBudget { needed, budget });
        }
        let pipelines = manifest
            .kernels
            .iter()
            .enumerate()
            .map(|(i, k)| gpu.pipeline(&k.with_source(bundle.kernel_source(i))))
            .collect::<Result<Vec<_>, _>>()?;
        let weights = manifest
            .weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // A stack kept on the host is never bound: a word stands in.
                let bytes = if on_host(i) {
                    &[0u8; 4][..]
                } else {
                    bundle.weight_bytes(i)
                };
                gpu.upload(&w.name, bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        gpu.wait()?;
        tracing::info!(
            model = %manifest.model,
            kernels = pipelines.len(),
            weights = weights.len(),
            "bundle loaded"
        );
        let manifest = manifest.clone();
        let offload = layout.map(|layout| HostExperts { layout, bundle });
        Ok(Model::new(LoadedModel {
            gpu: Arc::clone(&self.gpu),
            manifest,
            pipelines,
            weights,
            offload,
        }))
    }
}
