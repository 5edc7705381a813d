//! # seam-bundle
//!
//! The bundle: one versioned binary file holding everything a model needs to run.
//! The compiler writes it ([`BundleWriter`]) and the runtime reads it
//! ([`BundleReader`]); this crate needs neither side, and no GPU stack, so a
//! build script or tool can write bundles without linking wgpu.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  magic  b"SEAMBNDL"
//!      8     4  format version (1; 2 with external weights; 3 with caches; 4 for a shard set's rank)
//!     12     4  section count
//!     16     8  total file length in bytes
//!     24     4  CRC-32 of bytes 0..24 and of the section table
//!     28     4  reserved, zero
//!     32  32·n  section table: kind u32, reserved u32, offset u64, length u64, CRC-32 u32, reserved u32
//!      …        sections, each starting at a multiple of 64 bytes
//! ```
//!
//! Sections: the manifest (JSON, [`Manifest`]), the shaders (WGSL sources, UTF-8,
//! referenced by byte range), the weights (blobs, each 64-byte aligned in the
//! file), optionally a tokenizer (a Hugging Face `tokenizer.json`, opaque
//! bytes to the runtime: text in and out is the caller's business), and
//! optionally generation metadata ([`GenerationMeta`]: EOS ids, chat template).
//! [`BundleReader`] verifies the header, every checksum and the manifest's
//! internal consistency before anything touches a GPU.
//!
//! A weight may instead be a byte range of a file outside the bundle
//! ([`ExternalFile`], see [`external`]): such bundles are written as version 2
//! and loaded from a path (or with [`BundleReader::from_bytes_in`]); every
//! external file must lie inside the bundle's folder tree or a folder allowed
//! by [`LoadOptions`] ([`weight_dirs`]), and its length and CRC-32 are checked
//! at load too.

#![warn(missing_docs)]

mod disjoint;
mod error;
pub mod external;
pub mod files;
mod format;
mod generation;
mod manifest;
mod reader;
mod validate;
pub mod weight_dirs;
mod writer;

pub use error::BundleError;
pub use format::{
    SectionKind, BASE_FORMAT_VERSION, CACHE_FORMAT_VERSION, EXTERNAL_FORMAT_VERSION,
    FORMAT_VERSION, MAGIC,
};
pub use generation::{
    GenerationMeta, MAX_CHAT_TEMPLATE_BYTES, MAX_EOS_IDS, MAX_GENERATION_BYTES,
    MAX_MODEL_NAME_BYTES,
};
pub use manifest::{
    BufferEntry, BufferRange, BufferRole, CacheEntry, Collective, DimBound, Dispatch, EntryPoint,
    ExpertLayer, ExternalFile, IoEntry, KernelEntry, Manifest, Packing, ParamEntry, PlanStats,
    ShardEntry, StateEntry, StateLength, WeightEntry,
};
pub use reader::{Bundle, BundleReader};
pub use validate::MAX_DISPATCHES_PER_ENTRY;
pub use weight_dirs::LoadOptions;
pub use writer::BundleWriter;
