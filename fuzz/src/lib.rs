//! Helpers shared by Seam's fuzz targets (`fuzz_targets/`): a small valid
//! bundle and a re-checksumming layout for the bundle targets, structured JSON
//! edits, and a per-process scratch folder for the importers, which read files.

pub mod bundle;
pub mod json;
pub mod scratch;
