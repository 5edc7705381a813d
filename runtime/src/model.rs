//! Loading a bundle onto a device: verify, compile pipelines, upload weights.

use std::path::Path;
use std::sync::Arc;

use crate::device::{DeviceOptions, Gpu};
use crate::pipeline::KernelPipeline;
use crate::run_error::RunError;
use crate::session::Session;
use crate::GpuBuffer;
use seam_bundle::{Bundle, BundleReader, Manifest};

/// A device ready to load bundles.
pub struct Runtime {
    gpu: Arc<Gpu>,
}

impl Runtime {
    /// Opens a device.
    pub fn new(options: &DeviceOptions) -> Result<Runtime, RunError> {
        Ok(Runtime {
            gpu: Arc::new(Gpu::new(options)?),
        })
    }

    /// The device.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Reads, verifies and loads a bundle file.
    pub fn load(&self, path: &Path) -> Result<Model, RunError> {
        self.load_bundle(BundleReader::open(path)?)
    }

    /// Verifies and loads a bundle from memory (one without external weights;
    /// for those, `load_bundle(BundleReader::from_bytes_in(bytes, folder))`).
    pub fn load_bytes(&self, bytes: Vec<u8>) -> Result<Model, RunError> {
        self.load_bundle(BundleReader::from_bytes(bytes)?)
    }

    /// Loads a verified bundle: compiles every kernel once and uploads the weights.
    pub fn load_bundle(&self, bundle: Bundle) -> Result<Model, RunError> {
        let gpu = &self.gpu;
        let manifest = bundle.manifest();
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
            .map(|(i, w)| gpu.upload(&w.name, bundle.weight_bytes(i)))
            .collect::<Result<Vec<_>, _>>()?;
        gpu.wait()?;
        tracing::info!(
            model = %manifest.model,
            kernels = pipelines.len(),
            weights = weights.len(),
            "bundle loaded"
        );
        Ok(Model {
            gpu: Arc::clone(&self.gpu),
            manifest: manifest.clone(),
            pipelines,
            weights,
        })
    }
}

/// A bundle loaded on a device. Sessions run it.
pub struct Model {
    pub(crate) gpu: Arc<Gpu>,
    pub(crate) manifest: Manifest,
    pub(crate) pipelines: Vec<KernelPipeline>,
    pub(crate) weights: Vec<GpuBuffer>,
}

impl Model {
    /// The bundle's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The device it is loaded on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// A session for the named entry point (`forward`), with its buffers
    /// allocated once at the symbolic dims' bounds.
    pub fn session(&self, entry: &str) -> Result<Session<'_>, RunError> {
        Session::new(self, entry)
    }
}
