//! What every command that runs a bundle takes — the folders its external
//! weights may lie in, the device, the experts kept on it — and loading the
//! bundle with them.

use clap::Args;
use seam_runtime::bundle::Bundle;
use seam_runtime::{Model, Runtime};

use super::device::DeviceArgs;
use super::experts::offload::ExpertArgs;
use super::weight_dirs::WeightDirArgs;
use super::CliError;

/// Where a bundle's weights may lie and where and how it runs.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Folders external weight files may lie in.
    #[command(flatten)]
    pub weights: WeightDirArgs,
    /// The device.
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Experts kept on the device.
    #[command(flatten)]
    pub experts: ExpertArgs,
}

impl ModelArgs {
    /// Loads `bundle` on `rt` keeping the experts asked for on the device,
    /// its weights within the device's `--memory-budget`.
    pub fn load(&self, rt: &Runtime, bundle: Bundle) -> Result<Model, CliError> {
        self.experts.load(rt, bundle, self.device.memory_budget)
    }
}
