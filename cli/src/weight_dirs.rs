//! `--allow-weights-from`: the folders besides a bundle's own folder tree that
//! its external weight files may lie in, shared by every command that loads a
//! bundle.

use std::path::{Path, PathBuf};

use clap::Args;
use seam_bundle::{Bundle, BundleReader, LoadOptions};

/// Where a bundle's external weight files may be read from.
#[derive(Debug, Args)]
pub struct WeightDirArgs {
    /// A folder (with everything under it) that external weight files may lie
    /// in, besides the bundle's own folder tree; repeatable.
    #[arg(long = "allow-weights-from", value_name = "DIR")]
    pub allow_weights_from: Vec<PathBuf>,
}

impl WeightDirArgs {
    /// The loader options these flags give.
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            allowed_weight_dirs: self.allow_weights_from.clone(),
        }
    }

    /// Reads and verifies the bundle at `path` under these options.
    pub fn open(&self, path: &Path) -> Result<Bundle, seam_runtime::Error> {
        Ok(BundleReader::open_with(path, &self.options())?)
    }
}
